//! Helpers shared by the integration tests: the reference data directory, its manifest, and a
//! small `.npy` reader (the references are written by `tools/make_imgproc_refs.py`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use tensorcv_imgproc::io::{imread, DecodeOptions, ImreadMode};
use tensorcv_imgproc::Image;

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/imgproc")
}

pub fn manifest() -> serde_json::Value {
    let path = data_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("manifest.json is valid JSON")
}

/// An image as OpenCV's `IMREAD_UNCHANGED` gives it (gray, BGR or BGRA).
pub fn load(name: &str) -> Image {
    imread(
        data_dir().join(name),
        &DecodeOptions::new(ImreadMode::Unchanged),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub struct Npy {
    pub shape: Vec<usize>,
    pub descr: String,
    pub data: Vec<u8>,
}

impl Npy {
    pub fn f32s(&self) -> Vec<f32> {
        assert_eq!(self.descr, "<f4");
        self.data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// The values as f32, whatever the element type (f4, i1 or u1).
    pub fn values_f32(&self) -> Vec<f32> {
        match self.descr.as_str() {
            "<f4" => self.f32s(),
            "|i1" => self.data.iter().map(|&b| b as i8 as f32).collect(),
            "|u1" => self.data.iter().map(|&b| b as f32).collect(),
            other => panic!("unsupported npy type {other}"),
        }
    }
}

/// Read a C-ordered `.npy` file of the imgproc references (format versions 1 to 3).
pub fn load_npy(name: &str) -> Npy {
    read_npy(&data_dir().join(name))
}

/// Read any C-ordered `.npy` file (format versions 1 to 3).
pub fn read_npy(path: &Path) -> Npy {
    let name = path.display();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{name} is not .npy");
    let (len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let descr = header
        .split("'descr': '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    let shape_txt = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    Npy {
        shape,
        descr: descr.to_string(),
        data: bytes[start + len..].to_vec(),
    }
}

/// Largest absolute difference and the number of differing bytes.
pub fn diff_u8(a: &[u8], b: &[u8]) -> (u8, usize) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let mut max = 0;
    let mut n = 0;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        if d > 0 {
            n += 1;
            max = max.max(d);
        }
    }
    (max, n)
}
