//! Hand-written AVX2 gray conversion for 3-channel pixels, in OpenCV's 16-bit products: each
//! pixel's first two bytes become one `i16` pair and its third byte a pair with 1, so two
//! `vpmaddwd` give `b·B + g·G` and `r·R + 2^14` (for RGB the weights of the first and third
//! byte swap). The sums are the portable `luma`'s exactly (all below 2^31). 4-channel pixels
//! take the portable loop compiled with AVX2. No unsafe code: bounds-checked loads, and
//! vectors leave through `bytemuck`.

use super::kernels::{to_gray_px, B2Y, G2Y, R2Y};
use std::arch::x86_64::*;

/// 16 bytes of `src` at `o`.
#[inline]
#[target_feature(enable = "avx2")]
fn load16(src: &[u8], o: usize) -> __m128i {
    let v: [u8; 16] = src[o..o + 16].try_into().unwrap_or([0; 16]);
    bytemuck::cast(v)
}

/// Pixels `8g..8g + 8` of the 24-byte group at `o`: bytes `o..o+16` in the low lane, `o+8..`
/// in the high one, so each lane's shuffle reaches its four pixels (0-3 at bytes 0-11 of the
/// low lane, 4-7 at bytes 4-15 of the high lane).
#[inline]
#[target_feature(enable = "avx2")]
fn sums8(
    src: &[u8],
    o: usize,
    pairs: __m256i,
    thirds: __m256i,
    w01: __m256i,
    w2: __m256i,
) -> __m256i {
    let v = _mm256_set_m128i(load16(src, o + 8), load16(src, o));
    let first_two = _mm256_shuffle_epi8(v, pairs);
    // the third byte as the low half of a pair whose high half is 1 (times 2^14: the rounding)
    let third = _mm256_or_si256(_mm256_shuffle_epi8(v, thirds), _mm256_set1_epi32(1 << 16));
    let sum = _mm256_add_epi32(
        _mm256_madd_epi16(first_two, w01),
        _mm256_madd_epi16(third, w2),
    );
    _mm256_srli_epi32::<15>(sum)
}

#[target_feature(enable = "avx2")]
pub(super) fn to_gray<const SC: usize, const RI: usize, const BI: usize>(
    src: &[u8],
    dst: &mut [u8],
) {
    let n = dst.len().min(src.len() / SC);
    let mut x = 0;
    if SC == 3 {
        const Z: i8 = -128;
        #[rustfmt::skip]
        let pairs = _mm256_setr_epi8(
            0, Z, 1, Z, 3, Z, 4, Z, 6, Z, 7, Z, 9, Z, 10, Z,
            4, Z, 5, Z, 7, Z, 8, Z, 10, Z, 11, Z, 13, Z, 14, Z,
        );
        #[rustfmt::skip]
        let thirds = _mm256_setr_epi8(
            2, Z, Z, Z, 5, Z, Z, Z, 8, Z, Z, Z, 11, Z, Z, Z,
            6, Z, Z, Z, 9, Z, Z, Z, 12, Z, Z, Z, 15, Z, Z, Z,
        );
        // weights of the first, second and third byte of a pixel
        let (w0, w2) = if RI == 0 { (R2Y, B2Y) } else { (B2Y, R2Y) };
        let w01 = _mm256_set1_epi32((G2Y << 16 | w0) as i32);
        let w2 = _mm256_set1_epi32((1 << 30 | w2) as i32);
        // pixel groups 0-3, 8-11 | 4-7, 12-15 after the packs: 32-bit groups 0, 4, 1, 5 in order
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        while x + 16 <= n {
            let o = x * 3;
            let a = sums8(src, o, pairs, thirds, w01, w2);
            let b = sums8(src, o + 24, pairs, thirds, w01, w2);
            let words = _mm256_packus_epi32(a, b);
            let bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(words, words), order);
            let out: [u8; 16] = bytemuck::cast(_mm256_castsi256_si128(bytes));
            dst[x..x + 16].copy_from_slice(&out);
            x += 16;
        }
    }
    to_gray_px::<SC, RI, BI>(&src[x * SC..], &mut dst[x..n]);
}

#[cfg(test)]
mod tests {
    use super::super::kernels::to_gray_px;

    #[test]
    fn avx2_gray_equals_the_portable_loop() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        // every byte value in every channel position, rows of awkward lengths
        let src: Vec<u8> = (0..3 * 1000)
            .map(|i| (i * 131 % 256) as u8 ^ (i / 7) as u8)
            .collect();
        for n in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 1000] {
            let s = &src[..n * 3];
            let (mut want, mut got) = (vec![0u8; n], vec![0u8; n]);
            to_gray_px::<3, 2, 0>(s, &mut want);
            // SAFETY: AVX2 confirmed above.
            #[allow(unsafe_code)]
            unsafe {
                super::to_gray::<3, 2, 0>(s, &mut got)
            };
            assert_eq!(got, want, "BGR, {n} pixels");
            to_gray_px::<3, 0, 2>(s, &mut want);
            // SAFETY: AVX2 confirmed above.
            #[allow(unsafe_code)]
            unsafe {
                super::to_gray::<3, 0, 2>(s, &mut got)
            };
            assert_eq!(got, want, "RGB, {n} pixels");
        }
    }
}
