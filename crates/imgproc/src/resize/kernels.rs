//! Row loops of the resizer.
//!
//! Linear and Lanczos-4 follow OpenCV's 8-bit fixed point: the horizontal pass turns one
//! source row into `i32` sums scaled by 2^11 (`INTER_RESIZE_COEF_SCALE`); the vertical pass
//! combines 2 or 8 such rows and rounds the way OpenCV's 128-bit universal-intrinsic loops do
//! for the bulk of a row and its scalar code for the tail. Cubic runs in `f32`, as the Intel
//! IPP resize that OpenCV's `INTER_CUBIC` calls for 8-bit images does. Area has its own loops.

use crate::simd::multiversion;

pub(crate) const COEF_BITS: u32 = 11;
pub(crate) const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// `saturate_cast<short>(v * 2048)`: round half to even, as `cvRound` does.
#[inline]
pub(crate) fn fixed(v: f32) -> i16 {
    (v * COEF_SCALE)
        .round_ties_even()
        .clamp(i16::MIN as f32, i16::MAX as f32) as i16
}

multiversion! {
    /// Horizontal pass: `out[dx*cn + c] = sum_k src[idx[dx*K + k] + c] * alpha[dx*K + k]`, where
    /// `idx` holds byte offsets of already clamped taps; the first `wide` output pixels may
    /// read and write whole 4-byte words (see [`wide_pixels`]).
    fn hpass<const K: usize>(
        src: &[u8],
        cn: usize,
        idx: &[u32],
        alpha: &[i16],
        wide: usize,
        out: &mut [i32],
    ) {
        hpass_from::<K, i32>(src, cn, idx, alpha, wide, 0, out)
    }
    avx2: super::avx2::hpass
}

multiversion! {
    /// [`hpass`] of two source rows (the same taps and weights) into two outputs: with AVX2
    /// the taps and weights are loaded once for both.
    fn hpass2<const K: usize>(
        src: [&[u8]; 2],
        cn: usize,
        idx: &[u32],
        alpha: &[i16],
        wide: usize,
        out: [&mut [i32]; 2],
    ) {
        let [o0, o1] = out;
        hpass_from::<K, i32>(src[0], cn, idx, alpha, wide, 0, o0);
        hpass_from::<K, i32>(src[1], cn, idx, alpha, wide, 0, o1);
    }
    avx2: super::avx2::hpass2
}

/// The horizontal pass of output pixels `from..`, in portable code (the fixed-point and the
/// `f32` sums alike).
#[inline(always)]
pub(crate) fn hpass_from<const K: usize, A: Acc>(
    src: &[u8],
    cn: usize,
    idx: &[u32],
    alpha: &[A::W],
    wide: usize,
    from: usize,
    out: &mut [A],
) {
    let (idx, alpha) = (&idx[from * K..], &alpha[from * K..]);
    let (out, wide) = (&mut out[from * cn..], wide.saturating_sub(from));
    match cn {
        1 => hpass_cn::<K, 1, A>(src, idx, alpha, out),
        2 => hpass_cn::<K, 2, A>(src, idx, alpha, out),
        3 => hpass_wide::<K, 3, A>(src, idx, alpha, wide, out),
        _ => hpass_wide::<K, 4, A>(src, idx, alpha, wide, out),
    }
}

/// How many leading output pixels of a row can take the 4-lane path of the horizontal passes:
/// every tap of theirs has 4 bytes in the source row (`row_len` bytes) and their 4-lane store
/// fits in the output row (`out_len` values). Computed once per plan.
pub(crate) fn wide_pixels(
    idx: &[u32],
    taps: usize,
    cn: usize,
    row_len: usize,
    out_len: usize,
) -> usize {
    if cn < 3 || taps == 0 {
        return 0;
    }
    idx.chunks_exact(taps)
        .enumerate()
        .take_while(|(dx, ix)| {
            dx * cn + 4 <= out_len && ix.iter().all(|&b| b as usize + 4 <= row_len)
        })
        .count()
}

/// A sum type of the horizontal passes: `i32` with `i16` weights (fixed point), `f32` with
/// `f32` weights (cubic).
pub(crate) trait Acc: Copy + Default + std::ops::AddAssign {
    type W: Copy;
    fn madd(p: u8, w: Self::W) -> Self;
}
impl Acc for i32 {
    type W = i16;
    #[inline(always)]
    fn madd(p: u8, w: i16) -> i32 {
        p as i32 * w as i32
    }
}
impl Acc for f32 {
    type W = f32;
    #[inline(always)]
    fn madd(p: u8, w: f32) -> f32 {
        p as f32 * w
    }
}

/// The horizontal pass for 3 and 4 channels: a tap reads a whole 4-byte word, so a pixel's
/// channels are one 4-lane vector (with 3 channels the fourth lane is the next pixel's first
/// byte, computed and then overwritten by that pixel's store). The first `wide` pixels
/// ([`wide_pixels`]) take that path, the rest the scalar one; offsets are clamped to the row
/// so the compiler can drop the bounds checks (for a correct `wide` the clamps change
/// nothing). Sums run tap by tap from zero in both paths, so the results are the scalar
/// loop's exactly.
#[inline(always)]
fn hpass_wide<const K: usize, const CN: usize, A: Acc>(
    src: &[u8],
    idx: &[u32],
    alpha: &[A::W],
    wide: usize,
    out: &mut [A],
) {
    let n = out.len() / CN;
    let wide = if src.len() >= 4 && out.len() >= 4 {
        wide.min(n)
    } else {
        0
    };
    if wide > 0 {
        let (lim, olim) = (src.len() - 4, out.len() - 4);
        for (dx, (ix, a)) in idx
            .chunks_exact(K)
            .zip(alpha.chunks_exact(K))
            .take(wide)
            .enumerate()
        {
            let mut acc = [A::default(); 4];
            for k in 0..K {
                let b = (ix[k] as usize).min(lim);
                let px = &src[b..b + 4];
                for c in 0..4 {
                    acc[c] += A::madd(px[c], a[k]);
                }
            }
            let o = (dx * CN).min(olim);
            out[o..o + 4].copy_from_slice(&acc);
        }
    }
    for dx in wide..n {
        let (ix, a) = (&idx[dx * K..][..K], &alpha[dx * K..][..K]);
        hpass_px::<K, CN, A>(src, ix, a, &mut out[dx * CN..][..CN]);
    }
}

/// One output pixel of a horizontal pass, tap by tap.
#[inline(always)]
fn hpass_px<const K: usize, const CN: usize, A: Acc>(
    src: &[u8],
    ix: &[u32],
    a: &[A::W],
    out: &mut [A],
) {
    let mut acc = [A::default(); CN];
    for k in 0..K {
        let base = ix[k] as usize;
        let px = &src[base..base + CN];
        for c in 0..CN {
            acc[c] += A::madd(px[c], a[k]);
        }
    }
    out.copy_from_slice(&acc);
}

#[inline(always)]
fn hpass_cn<const K: usize, const CN: usize, A: Acc>(
    src: &[u8],
    idx: &[u32],
    alpha: &[A::W],
    out: &mut [A],
) {
    for ((o, ix), a) in out
        .chunks_exact_mut(CN)
        .zip(idx.chunks_exact(K))
        .zip(alpha.chunks_exact(K))
    {
        hpass_px::<K, CN, A>(src, ix, a, o);
    }
}

/// A whole number in `0.0..=255.0` as a byte, by the float's bits (`v + 2^23` holds `v` in its
/// low mantissa bits): vectorises, where `as u8`'s saturating conversion is scalar. Equal to
/// `v as u8` on that range (and 0 for NaN, as `as u8`).
#[inline(always)]
pub(crate) fn to_u8(v: f32) -> u8 {
    (v + 8_388_608.0).to_bits() as u8
}

#[inline(always)]
fn sat_u8(v: i64) -> u8 {
    v.clamp(0, 255) as u8
}

/// Scalar fixed-point rounding of OpenCV's `FixedPtCast<int, uchar, 22>`.
#[inline(always)]
fn cast22(sum: i64) -> u8 {
    sat_u8((sum + (1 << 21)) >> 22)
}

/// One value of the linear vertical pass: OpenCV's `v_mul_hi` of the 16-bit-saturated sums
/// (scaled down by 16) with each row weight, a saturating add, then a rounding shift by 2.
#[inline(always)]
pub(crate) fn vlinear_px(a: i32, c: i32, b0: i16, b1: i16) -> u8 {
    let mulhi = |s: i32, b: i16| -> i16 {
        let a = (s >> 4).clamp(i16::MIN as i32, i16::MAX as i32);
        ((a * b as i32) >> 16) as i16
    };
    let v = mulhi(a, b0).saturating_add(mulhi(c, b1)) as i32;
    ((v + 2) >> 2).clamp(0, 255) as u8
}

multiversion! {
    /// Vertical pass of linear interpolation (two rows), with the rounding of OpenCV's vector
    /// loop (`v_mul_hi` of 16-bit values, then a rounding shift by 2), which the parity data shows
    /// is applied to whole rows, tails included.
    fn vlinear(s0: &[i32], s1: &[i32], b: &[i16], out: &mut [u8]) {
        for ((o, &a), &c) in out.iter_mut().zip(s0).zip(s1) {
            *o = vlinear_px(a, c, b[0], b[1]);
        }
    }
    avx2: super::avx2::vlinear
}

multiversion! {
    /// Horizontal pass in `f32` (the cubic path): `out[dx*cn + c] = sum_k src[..] * w[dx*K + k]`,
    /// accumulated tap by tap from zero, as Intel IPP's resize (which OpenCV's `INTER_CUBIC`
    /// calls for 8-bit images) does.
    fn hpass_f32<const K: usize>(
        src: &[u8],
        cn: usize,
        idx: &[u32],
        w: &[f32],
        wide: usize,
        out: &mut [f32],
    ) {
        hpass_from::<K, f32>(src, cn, idx, w, wide, 0, out)
    }
    avx2: super::avx2::hpass_f32
}

multiversion! {
    /// Vertical pass in `f32` over `K` rows, rounded half to even and saturated.
    fn vpass_f32<const K: usize>(rows: [&[f32]; K], w: &[f32], out: &mut [u8]) {
        // rows cut to the output's length, so the loop has no bounds checks and vectorises
        let n = out.len();
        let rows: [&[f32]; K] = std::array::from_fn(|k| &rows[k][..n]);
        for (x, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            for k in 0..K {
                acc += rows[k][x] * w[k];
            }
            *o = to_u8(acc.round_ties_even().clamp(0.0, 255.0));
        }
    }
}

/// Vertical pass of Lanczos-4 interpolation (eight rows), scalar in OpenCV too.
pub(crate) fn vlanczos(rows: [&[i32]; 8], b: &[i16], out: &mut [u8]) {
    for (x, o) in out.iter_mut().enumerate() {
        let sum: i64 = (0..8).map(|k| rows[k][x] as i64 * b[k] as i64).sum();
        *o = cast22(sum);
    }
}

multiversion! {
    /// One output row of nearest-neighbour: gather whole pixels.
    fn gather(src: &[u8], cn: usize, xofs: &[u32], out: &mut [u8]) {
        match cn {
            1 => {
                for (o, &x) in out.iter_mut().zip(xofs) {
                    *o = src[x as usize];
                }
            }
            3 => {
                for (o, &x) in out.chunks_exact_mut(3).zip(xofs) {
                    let x = x as usize;
                    o.copy_from_slice(&src[x..x + 3]);
                }
            }
            4 => {
                for (o, &x) in out.chunks_exact_mut(4).zip(xofs) {
                    let x = x as usize;
                    o.copy_from_slice(&src[x..x + 4]);
                }
            }
            _ => {
                for (o, &x) in out.chunks_exact_mut(cn).zip(xofs) {
                    let x = x as usize;
                    o.copy_from_slice(&src[x..x + cn]);
                }
            }
        }
    }
}

/// Integer-factor box average of `fy` source rows starting at `sy0` for one output row; 2×2
/// rounds like OpenCV's vector code (`(a+b+c+d+2) >> 2`), other factors like its scalar code
/// (`cvRound(sum / area)`).
pub(crate) fn area_fast_row(
    src: &crate::image::ImageView<'_>,
    sy0: usize,
    fy: usize,
    cn: usize,
    fx: usize,
    out: &mut [u8],
) {
    let inv = 1.0f32 / (fx * fy) as f32;
    let two_by_two = fx == 2 && fy == 2;
    for (dx, o) in out.chunks_exact_mut(cn).enumerate() {
        for (c, v) in o.iter_mut().enumerate() {
            let mut sum = 0u32;
            for r in sy0..sy0 + fy {
                let row = src.row(r);
                for k in 0..fx {
                    sum += row[(dx * fx + k) * cn + c] as u32;
                }
            }
            *v = if two_by_two {
                ((sum + 2) >> 2) as u8
            } else {
                (sum as f32 * inv).round_ties_even().min(255.0) as u8
            };
        }
    }
}

/// One entry of an area table: destination index, source index, weight (OpenCV's
/// `DecimateAlpha`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AreaTap {
    pub d: u32,
    pub s: u32,
    pub w: f32,
}

/// The horizontal area taps regrouped per output pixel: taps of one output pixel are
/// consecutive source pixels, so each output sums a contiguous run, in the same order (and so
/// with the same float rounding) as OpenCV's scatter over its table.
#[derive(Clone, Debug, Default)]
pub(crate) struct AreaSpans {
    /// first source pixel and number of taps, per output pixel
    pub spans: Vec<(u32, u32)>,
    /// the weights, output after output
    pub weights: Vec<f32>,
}

impl AreaSpans {
    pub(crate) fn new(tab: &[AreaTap], dsize: usize) -> Self {
        let mut spans = vec![(0u32, 0u32); dsize];
        let mut weights = Vec::with_capacity(tab.len());
        for t in tab {
            let span = &mut spans[t.d as usize];
            if span.1 == 0 {
                span.0 = t.s;
            }
            debug_assert_eq!(span.0 + span.1, t.s, "area taps are consecutive");
            span.1 += 1;
            weights.push(t.w);
        }
        AreaSpans { spans, weights }
    }
}

/// Horizontal part of the general area resampler.
pub(crate) fn area_hpass(src: &[u8], cn: usize, x: &AreaSpans, buf: &mut [f32]) {
    match cn {
        1 => area_hpass_cn::<1>(src, x, buf),
        2 => area_hpass_cn::<2>(src, x, buf),
        3 => area_hpass_cn::<3>(src, x, buf),
        _ => area_hpass_cn::<4>(src, x, buf),
    }
}

multiversion! {
    fn area_hpass_cn<const CN: usize>(src: &[u8], x: &AreaSpans, buf: &mut [f32]) {
        let mut w = x.weights.as_slice();
        for (&(start, n), out) in x.spans.iter().zip(buf.chunks_exact_mut(CN)) {
            let (wk, rest) = w.split_at(n as usize);
            w = rest;
            let px = &src[start as usize * CN..(start + n) as usize * CN];
            let mut acc = [0f32; CN];
            for (p, &a) in px.chunks_exact(CN).zip(wk) {
                for c in 0..CN {
                    acc[c] += p[c] as f32 * a;
                }
            }
            out.copy_from_slice(&acc);
        }
    }
}

multiversion! {
    /// `sum = w * buf` (first source row of an output row) or `sum += w * buf`.
    fn area_accumulate(sum: &mut [f32], buf: &[f32], w: f32, first: bool) {
        if first {
            for (s, b) in sum.iter_mut().zip(buf) {
                *s = w * *b;
            }
        } else {
            for (s, b) in sum.iter_mut().zip(buf) {
                *s += w * *b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn to_u8_is_as_u8_on_whole_numbers_in_range() {
        for v in 0..=255u8 {
            assert_eq!(super::to_u8(v as f32), v);
        }
        assert_eq!(super::to_u8(-0.0), 0);
        assert_eq!(super::to_u8(f32::NAN), 0, "as `f32::NAN as u8`");
    }
}
