//! Row loops of the Gaussian blur, in OpenCV's 8-bit fixed point. Each loop runs one kernel
//! tap over a whole row, so the compiler vectorises it.

use crate::simd::multiversion;

multiversion! {
    /// Horizontal pass: `out[i] = sum_j k[j] * padded[i + j*cn]` with 8 fraction bits. The
    /// kernel sums to 256, so a sum never exceeds 255 * 256 and `u16` holds it exactly.
    fn hpass(padded: &[u8], cn: usize, k: &[u16], out: &mut [u16]) {
        out.fill(0);
        let n = out.len();
        for (j, &kj) in k.iter().enumerate() {
            if kj == 0 {
                continue;
            }
            for (o, &p) in out.iter_mut().zip(&padded[j * cn..j * cn + n]) {
                *o = o.wrapping_add(kj.wrapping_mul(p as u16));
            }
        }
    }
}

multiversion! {
    /// Vertical pass, one tap: `acc[i] += k * row[i]` (16 fraction bits).
    fn vtap(acc: &mut [u32], row: &[u16], k: u16) {
        let k = k as u32;
        for (a, &r) in acc.iter_mut().zip(row) {
            *a = a.wrapping_add(k * r as u32);
        }
    }
}

multiversion! {
    /// `ufixedpoint32` to `u8`: round half up, saturate.
    fn round_row(acc: &[u32], out: &mut [u8]) {
        for (o, &a) in out.iter_mut().zip(acc) {
            *o = ((a + (1 << 15)) >> 16).min(255) as u8;
        }
    }
}
