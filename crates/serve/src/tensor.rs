//! Tensors on the wire: the KServe v2 datatypes, a model input's elements from JSON values or
//! raw bytes (little-endian, row-major, as the protocol's binary extension and gRPC's
//! `raw_input_contents` carry them), and what a model answers.

use crate::error::{bad, Result};
use bytes::Bytes;
use tensorcv_imgproc::tensor::DType;

// The tensors' bytes are the machine's own: every target tensorcv ships (x86_64, aarch64,
// wasm32) is little-endian, as the protocol's binary data is.
#[cfg(target_endian = "big")]
compile_error!("tensorcv-serve copies tensor bytes as they are: little-endian targets only");

/// A tensor datatype of the KServe v2 protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    /// `BOOL`
    Bool,
    /// `UINT8`
    Uint8,
    /// `UINT16`
    Uint16,
    /// `UINT32`
    Uint32,
    /// `UINT64`
    Uint64,
    /// `INT8`
    Int8,
    /// `INT16`
    Int16,
    /// `INT32`
    Int32,
    /// `INT64`
    Int64,
    /// `FP16`
    Fp16,
    /// `FP32`
    Fp32,
    /// `FP64`
    Fp64,
    /// `BYTES`: each element a byte string (binary: a 4-byte little-endian length first)
    Bytes,
    /// `BF16`
    Bf16,
}

impl DataType {
    const ALL: [DataType; 14] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp16,
        DataType::Fp32,
        DataType::Fp64,
        DataType::Bytes,
        DataType::Bf16,
    ];

    /// The protocol's name (`FP32`, `UINT8`, …).
    pub const fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
            DataType::Bf16 => "BF16",
        }
    }

    /// The datatype called `name` (the protocol's spelling).
    pub fn parse(name: &str) -> Option<DataType> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element (`None` for `BYTES`).
    pub const fn size(self) -> Option<usize> {
        match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => Some(1),
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 | DataType::Bf16 => Some(2),
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => Some(4),
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => Some(8),
            DataType::Bytes => None,
        }
    }

    /// TensorFlow's name of the type (TF Serving's metadata).
    pub const fn tf_name(self) -> &'static str {
        match self {
            DataType::Bool => "DT_BOOL",
            DataType::Uint8 => "DT_UINT8",
            DataType::Uint16 => "DT_UINT16",
            DataType::Uint32 => "DT_UINT32",
            DataType::Uint64 => "DT_UINT64",
            DataType::Int8 => "DT_INT8",
            DataType::Int16 => "DT_INT16",
            DataType::Int32 => "DT_INT32",
            DataType::Int64 => "DT_INT64",
            DataType::Fp16 => "DT_HALF",
            DataType::Fp32 => "DT_FLOAT",
            DataType::Fp64 => "DT_DOUBLE",
            DataType::Bytes => "DT_STRING",
            DataType::Bf16 => "DT_BFLOAT16",
        }
    }

    /// Triton's model-configuration name (`TYPE_FP32`, …).
    pub fn config_name(self) -> String {
        match self {
            DataType::Bytes => "TYPE_STRING".into(),
            d => format!("TYPE_{}", d.name()),
        }
    }

    /// The datatype of a model input's elements.
    pub const fn of(dtype: DType) -> DataType {
        match dtype {
            DType::F32 => DataType::Fp32,
            DType::U8 => DataType::Uint8,
            DType::I8 => DataType::Int8,
        }
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A model input or output as the protocols describe it: name, datatype, shape (`-1` where
/// the size is free: the batch, a size the data decides).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorMeta {
    /// the name in the model file
    pub name: String,
    /// the element type
    pub datatype: DataType,
    /// the dimensions, `-1` where free
    pub shape: Vec<i64>,
}

/// One output of a request: its rows of the model's output, as `f32` (quantized outputs
/// dequantized).
#[derive(Clone, Debug, PartialEq)]
pub struct OutputTensor {
    /// the output's name
    pub name: String,
    /// its shape (the request's batch first, for models with a batch dimension)
    pub shape: Vec<usize>,
    /// the elements, row-major
    pub data: Vec<f32>,
}

impl OutputTensor {
    /// The elements as little-endian bytes (the binary extension, gRPC's raw contents).
    pub fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.data)
    }
}

/// Writes the elements of one input into the model's element type, counting them.
pub(crate) struct Elements {
    dtype: DataType,
    bytes: Vec<u8>,
    count: usize,
    limit: usize,
}

impl Elements {
    /// For `limit` elements of `dtype` (one of the model input types: FP32, UINT8, INT8).
    pub fn new(dtype: DataType, limit: usize) -> Self {
        Elements {
            dtype,
            bytes: Vec::with_capacity(limit.min(1 << 24) * dtype.size().unwrap_or(1)),
            count: 0,
            limit,
        }
    }

    /// The bytes written, once exactly `expected` elements were.
    pub fn finish(self, name: &str) -> Result<Bytes> {
        if self.count != self.limit {
            return Err(bad(format!(
                "input '{name}' has {} elements, its shape needs {}",
                self.count, self.limit
            )));
        }
        Ok(Bytes::from(self.bytes))
    }

    /// One number.
    pub fn push(&mut self, name: &str, v: f64) -> Result<()> {
        if self.count == self.limit {
            return Err(bad(format!(
                "input '{name}' has more elements than its shape needs ({})",
                self.limit
            )));
        }
        let out_of_range = || {
            bad(format!(
                "input '{name}': {v} is not a {} value",
                self.dtype.name()
            ))
        };
        match self.dtype {
            DataType::Fp32 => {
                if v.is_nan() || (v.is_finite() && v.abs() > f32::MAX as f64) {
                    return Err(out_of_range());
                }
                self.bytes.extend_from_slice(&(v as f32).to_le_bytes());
            }
            DataType::Uint8 => {
                if v.fract() != 0.0 || !(0.0..=255.0).contains(&v) {
                    return Err(out_of_range());
                }
                self.bytes.push(v as u8);
            }
            DataType::Int8 => {
                if v.fract() != 0.0 || !(-128.0..=127.0).contains(&v) {
                    return Err(out_of_range());
                }
                self.bytes.push(v as i8 as u8);
            }
            other => {
                return Err(bad(format!(
                    "input '{name}': the model takes {}, not {other}",
                    self.dtype
                )))
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Numbers read from JSON ([`crate::json::Flat`]).
    pub fn push_all(&mut self, name: &str, values: &[f32]) -> Result<()> {
        values.iter().try_for_each(|&v| self.push(name, v as f64))
    }

    /// Raw little-endian bytes of the model's type (the binary extension, gRPC raw contents):
    /// exactly the elements the shape needs, none NaN. The bytes are kept as they came (no
    /// copy).
    pub fn from_raw(dtype: DataType, limit: usize, name: &str, raw: Bytes) -> Result<Bytes> {
        let size = dtype.size().unwrap_or(1);
        if raw.len() != limit * size {
            return Err(bad(format!(
                "input '{name}' has {} bytes of data, its shape and datatype {} need {}",
                raw.len(),
                dtype,
                limit * size
            )));
        }
        if dtype == DataType::Fp32
            && raw
                .chunks_exact(4)
                .any(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_nan())
        {
            return Err(bad(format!("input '{name}' holds NaN")));
        }
        Ok(raw)
    }
}

/// The element count of `shape`, checked: every dimension non-negative, the product at most
/// `max`.
pub(crate) fn element_count(name: &str, shape: &[i64], max: usize) -> Result<usize> {
    let mut n = 1usize;
    for &d in shape {
        let d = usize::try_from(d).map_err(|_| {
            bad(format!(
                "input '{name}': shape {shape:?} has a negative dimension"
            ))
        })?;
        n = n
            .checked_mul(d)
            .filter(|&n| n <= max)
            .ok_or_else(|| bad(format!("input '{name}': shape {shape:?} is too large")))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatypes_round_trip_their_names() {
        for d in DataType::ALL {
            assert_eq!(DataType::parse(d.name()), Some(d));
        }
        assert_eq!(DataType::parse("FLOAT32"), None);
        assert_eq!(DataType::Fp32.config_name(), "TYPE_FP32");
        assert_eq!(DataType::Bytes.config_name(), "TYPE_STRING");
    }

    #[test]
    fn numbers_are_checked_against_the_type_and_count() {
        let mut e = Elements::new(DataType::Uint8, 4);
        e.push_all("x", &[0.0, 255.0, 1.0, 7.0]).unwrap();
        assert_eq!(e.finish("x").unwrap()[..], [0, 255, 1, 7]);
        let mut e = Elements::new(DataType::Uint8, 1);
        assert!(e.push_all("x", &[256.0]).is_err());
        let mut e = Elements::new(DataType::Uint8, 1);
        assert!(e.push_all("x", &[1.5]).is_err());
        let mut e = Elements::new(DataType::Int8, 2);
        e.push_all("x", &[-128.0, 127.0]).unwrap();
        assert_eq!(e.finish("x").unwrap()[..], [128, 127]);
        let mut e = Elements::new(DataType::Fp32, 2);
        e.push_all("x", &[1.5]).unwrap();
        let err = e.finish("x").unwrap_err().to_string();
        assert!(
            err.contains("1 elements") && err.contains("needs 2"),
            "{err}"
        );
        let mut e = Elements::new(DataType::Fp32, 1);
        let err = e.push_all("x", &[1.0, 2.0]).unwrap_err().to_string();
        assert!(err.contains("more elements"), "{err}");
        let mut e = Elements::new(DataType::Fp32, 1);
        assert!(e.push("x", 1e300).is_err());
    }

    #[test]
    fn raw_bytes_must_fill_the_shape_exactly() {
        let ok = Elements::from_raw(DataType::Fp32, 2, "x", Bytes::from(vec![0; 8])).unwrap();
        assert_eq!(ok.len(), 8);
        let err = Elements::from_raw(DataType::Fp32, 2, "x", Bytes::from(vec![0; 7]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("7 bytes") && err.contains("need 8"), "{err}");
        let nan = f32::NAN.to_le_bytes();
        assert!(Elements::from_raw(DataType::Fp32, 1, "x", Bytes::copy_from_slice(&nan)).is_err());
    }

    #[test]
    fn shapes_are_counted_without_overflow() {
        assert_eq!(element_count("x", &[2, 3, 4], 100).unwrap(), 24);
        assert!(element_count("x", &[-1, 3], 100).is_err());
        assert!(element_count("x", &[i64::MAX, i64::MAX], usize::MAX).is_err());
        assert!(element_count("x", &[11, 10], 100).is_err());
    }

    #[test]
    fn outputs_are_little_endian_bytes() {
        let t = OutputTensor {
            name: "y".into(),
            shape: vec![2],
            data: vec![1.0, -2.5],
        };
        let mut want = 1f32.to_le_bytes().to_vec();
        want.extend((-2.5f32).to_le_bytes());
        assert_eq!(t.bytes(), &want[..]);
    }
}
