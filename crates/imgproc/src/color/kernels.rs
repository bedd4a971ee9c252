//! Per-row loops of the RGB/gray conversions. Plain indexed loops over `chunks_exact` that
//! the compiler vectorises; the public, checked API is in `mod.rs`.

use crate::simd::multiversion;

/// OpenCV's fixed-point BT.601 luma weights for 8-bit `cvtColor(..., COLOR_BGR2GRAY)`:
/// `Y = (R*9798 + G*19235 + B*3735 + 2^14) >> 15`. These 15-bit weights are what OpenCV 4.x
/// runs for `uchar` (its documented 14-bit ones, 4899/9617/1868, differ on near-ties); the
/// parity test checks all 2^24 colors against OpenCV through a checksum.
pub(crate) const R2Y: u32 = 9798;
pub(crate) const G2Y: u32 = 19235;
pub(crate) const B2Y: u32 = 3735;
const SHIFT: u32 = 15;

#[inline(always)]
pub(crate) fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * R2Y + g as u32 * G2Y + b as u32 * B2Y + (1 << (SHIFT - 1))) >> SHIFT) as u8
}

multiversion! {
    /// Gray from a 3- or 4-channel row; `RI`, `BI` are the red and blue offsets in a pixel.
    fn to_gray<const SC: usize, const RI: usize, const BI: usize>(src: &[u8], dst: &mut [u8]) {
        to_gray_px::<SC, RI, BI>(src, dst)
    }
    avx2: super::avx2::to_gray
}

/// The gray conversion pixel by pixel (the portable loop, and the vector kernels' tails).
#[inline(always)]
pub(crate) fn to_gray_px<const SC: usize, const RI: usize, const BI: usize>(
    src: &[u8],
    dst: &mut [u8],
) {
    for (px, d) in src.chunks_exact(SC).zip(dst.iter_mut()) {
        *d = luma(px[RI], px[1], px[BI]);
    }
}

multiversion! {
    /// Gray replicated into 3 or 4 channels (alpha = 255).
    fn from_gray<const DC: usize>(src: &[u8], dst: &mut [u8]) {
        for (&v, px) in src.iter().zip(dst.chunks_exact_mut(DC)) {
            px[0] = v;
            px[1] = v;
            px[2] = v;
            if DC == 4 {
                px[3] = 255;
            }
        }
    }
}

multiversion! {
    /// Swap the first and third channel of 3-channel pixels (BGR <-> RGB).
    fn swap_rb3(src: &[u8], dst: &mut [u8]) {
        for (s, d) in src.chunks_exact(3).zip(dst.chunks_exact_mut(3)) {
            d[0] = s[2];
            d[1] = s[1];
            d[2] = s[0];
        }
    }
}

/// General channel shuffle: `map[k]` is the source channel of destination channel `k`, or
/// `None` for an alpha channel the source lacks (written as 255).
pub(crate) fn shuffle<const SC: usize, const DC: usize>(
    src: &[u8],
    dst: &mut [u8],
    map: [Option<usize>; DC],
) {
    for (s, d) in src.chunks_exact(SC).zip(dst.chunks_exact_mut(DC)) {
        for k in 0..DC {
            d[k] = match map[k] {
                Some(i) => s[i],
                None => 255,
            };
        }
    }
}
