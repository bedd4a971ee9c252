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
    /// `idx` holds byte offsets of already clamped taps.
    fn hpass<const K: usize>(
        src: &[u8],
        cn: usize,
        idx: &[u32],
        alpha: &[i16],
        out: &mut [i32],
    ) {
        match cn {
            1 => hpass_cn::<K, 1>(src, idx, alpha, out),
            2 => hpass_cn::<K, 2>(src, idx, alpha, out),
            3 => hpass_cn::<K, 3>(src, idx, alpha, out),
            _ => hpass_cn::<K, 4>(src, idx, alpha, out),
        }
    }
}

#[inline(always)]
fn hpass_cn<const K: usize, const CN: usize>(
    src: &[u8],
    idx: &[u32],
    alpha: &[i16],
    out: &mut [i32],
) {
    for ((o, ix), a) in out
        .chunks_exact_mut(CN)
        .zip(idx.chunks_exact(K))
        .zip(alpha.chunks_exact(K))
    {
        let mut acc = [0i32; CN];
        for k in 0..K {
            let base = ix[k] as usize;
            let w = a[k] as i32;
            let px = &src[base..base + CN];
            for c in 0..CN {
                acc[c] += px[c] as i32 * w;
            }
        }
        o.copy_from_slice(&acc);
    }
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

multiversion! {
    /// Vertical pass of linear interpolation (two rows), with the rounding of OpenCV's vector
    /// loop (`v_mul_hi` of 16-bit values, then a rounding shift by 2), which the parity data shows
    /// is applied to whole rows, tails included.
    fn vlinear(s0: &[i32], s1: &[i32], b: &[i16], out: &mut [u8]) {
        let (b0, b1) = (b[0] as i32, b[1] as i32);
        let mulhi = |s: i32, b: i32| -> i16 {
            let a = (s >> 4).clamp(i16::MIN as i32, i16::MAX as i32);
            ((a * b) >> 16) as i16
        };
        for ((o, &a), &c) in out.iter_mut().zip(s0).zip(s1) {
            let v = mulhi(a, b0).saturating_add(mulhi(c, b1)) as i32;
            *o = ((v + 2) >> 2).clamp(0, 255) as u8;
        }
    }
}

/// Horizontal pass in `f32` (the cubic path): `out[dx*cn + c] = sum_k src[..] * w[dx*K + k]`,
/// accumulated tap by tap from zero, as Intel IPP's resize (which OpenCV's `INTER_CUBIC` calls
/// for 8-bit images) does.
pub(crate) fn hpass_f32<const K: usize>(
    src: &[u8],
    cn: usize,
    idx: &[u32],
    w: &[f32],
    out: &mut [f32],
) {
    match cn {
        1 => hpass_f32_cn::<K, 1>(src, idx, w, out),
        2 => hpass_f32_cn::<K, 2>(src, idx, w, out),
        3 => hpass_f32_cn::<K, 3>(src, idx, w, out),
        _ => hpass_f32_cn::<K, 4>(src, idx, w, out),
    }
}

multiversion! {
    fn hpass_f32_cn<const K: usize, const CN: usize>(src: &[u8], idx: &[u32], w: &[f32], out: &mut [f32]) {
        for ((o, ix), wk) in out
            .chunks_exact_mut(CN)
            .zip(idx.chunks_exact(K))
            .zip(w.chunks_exact(K))
        {
            let mut acc = [0f32; CN];
            for k in 0..K {
                let base = ix[k] as usize;
                let px = &src[base..base + CN];
                for c in 0..CN {
                    acc[c] += px[c] as f32 * wk[k];
                }
            }
            o.copy_from_slice(&acc);
        }
    }
}

multiversion! {
    /// Vertical pass in `f32` over `K` rows, rounded half to even and saturated.
    fn vpass_f32<const K: usize>(rows: [&[f32]; K], w: &[f32], out: &mut [u8]) {
        for (x, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            for k in 0..K {
                acc += rows[k][x] * w[k];
            }
            *o = acc.round_ties_even().clamp(0.0, 255.0) as u8;
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
