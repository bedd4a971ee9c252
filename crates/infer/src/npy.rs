//! Writing tensors as NumPy `.npy` files (format 1.0, C order), to check outputs against
//! Python with `np.load`.

use tensorcv_imgproc::tensor::{Tensor as ImgTensor, TensorData};

/// The element types written.
pub trait NpyElement: Copy {
    /// NumPy's `descr` for the type
    const DESCR: &'static str;
    /// little-endian bytes
    fn put(self, out: &mut Vec<u8>);
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}
impl NpyElement for u8 {
    const DESCR: &'static str = "|u1";
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}
impl NpyElement for i8 {
    const DESCR: &'static str = "|i1";
    fn put(self, out: &mut Vec<u8>) {
        out.push(self as u8);
    }
}

/// The bytes of a `.npy` file holding `values` (C order) of `shape`.
pub fn to_npy<T: NpyElement>(shape: &[usize], values: impl IntoIterator<Item = T>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        T::DESCR
    );
    // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        v.put(&mut out);
    }
    out
}

/// A preprocessed image tensor as `.npy` bytes (its own element type).
pub fn tensor_to_npy(t: &ImgTensor) -> Vec<u8> {
    let shape = t.shape();
    match t.data() {
        TensorData::F32(v) => to_npy(&shape, v.iter().copied()),
        TensorData::U8(v) => to_npy(&shape, v.iter().copied()),
        TensorData::I8(v) => to_npy(&shape, v.iter().copied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_and_data_follows() {
        let bytes = to_npy(&[2, 3], [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(header.ends_with('\n'));
        assert_eq!(bytes.len(), 10 + len + 24);
        assert_eq!(&bytes[10 + len..10 + len + 4], &1.0f32.to_le_bytes());
        let one = to_npy(&[3], [1u8, 2, 3]);
        let len = u16::from_le_bytes([one[8], one[9]]) as usize;
        assert!(std::str::from_utf8(&one[10..10 + len])
            .unwrap()
            .contains("'shape': (3,)"));
        assert_eq!(&one[10 + len..], &[1, 2, 3]);
    }
}
