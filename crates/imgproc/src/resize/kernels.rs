//! Row loops of the resizer, in OpenCV's 8-bit fixed point.
//!
//! The horizontal pass turns one source row into `i32` sums scaled by 2^11
//! (`INTER_RESIZE_COEF_SCALE`); the vertical pass combines 2, 4 or 8 such rows and rounds the
//! way OpenCV's 128-bit universal-intrinsic loops do for the bulk of a row, and the way its
//! scalar code does for the tail, so results agree with `cv2.resize` pixel for pixel in
//! practice (the parity tests allow 1).

pub(crate) const COEF_BITS: u32 = 11;
pub(crate) const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// `saturate_cast<short>(v * 2048)`: round half to even, as `cvRound` does.
#[inline]
pub(crate) fn fixed(v: f32) -> i16 {
    (v * COEF_SCALE)
        .round_ties_even()
        .clamp(i16::MIN as f32, i16::MAX as f32) as i16
}

/// Horizontal pass: `out[dx*cn + c] = sum_k src[idx[dx*K + k] + c] * alpha[dx*K + k]`, where
/// `idx` holds byte offsets of already clamped taps.
pub(crate) fn hpass<const K: usize>(
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

/// How far OpenCV's vectorised vertical loop reaches in a row of `width` values, given its
/// main step and its secondary step (`x <= width - main`, then `x < width - second`).
fn simd_reach(width: usize, main: usize, second: usize) -> usize {
    let mut x = 0;
    while x + main <= width {
        x += main;
    }
    if second > 0 {
        while x + second < width {
            x += second;
        }
    }
    x
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

/// Vertical pass of linear interpolation (two rows).
pub(crate) fn vlinear(s0: &[i32], s1: &[i32], b: &[i16], out: &mut [u8]) {
    let (b0, b1) = (b[0], b[1]);
    let n = simd_reach(out.len(), 16, 8).min(out.len());
    // v_mul_hi(v_pack(S >> 4), b): 16-bit products keeping the high half, then a rounding
    // shift by 2 with unsigned saturation.
    let mulhi = |s: i32, b: i16| -> i16 {
        let a = (s >> 4).clamp(i16::MIN as i32, i16::MAX as i32);
        ((a * b as i32) >> 16) as i16
    };
    for x in 0..n {
        let v = mulhi(s0[x], b0).saturating_add(mulhi(s1[x], b1)) as i32;
        out[x] = ((v + 2) >> 2).clamp(0, 255) as u8;
    }
    for x in n..out.len() {
        out[x] = cast22(s0[x] as i64 * b0 as i64 + s1[x] as i64 * b1 as i64);
    }
}

/// Vertical pass of cubic interpolation (four rows).
pub(crate) fn vcubic(rows: [&[i32]; 4], b: &[i16], out: &mut [u8]) {
    let scale = 1.0f32 / (COEF_SCALE * COEF_SCALE);
    let bf = [
        b[0] as f32 * scale,
        b[1] as f32 * scale,
        b[2] as f32 * scale,
        b[3] as f32 * scale,
    ];
    let n = simd_reach(out.len(), 8, 0).min(out.len());
    for x in 0..n {
        let t3 = rows[3][x] as f32 * bf[3];
        let t2 = rows[2][x] as f32 * bf[2] + t3;
        let t1 = rows[1][x] as f32 * bf[1] + t2;
        let t0 = rows[0][x] as f32 * bf[0] + t1;
        let r = t0.round_ties_even().clamp(i16::MIN as f32, i16::MAX as f32);
        out[x] = (r as i32).clamp(0, 255) as u8;
    }
    for x in n..out.len() {
        let sum: i64 = (0..4).map(|k| rows[k][x] as i64 * b[k] as i64).sum();
        out[x] = cast22(sum);
    }
}

/// Vertical pass of Lanczos-4 interpolation (eight rows), scalar in OpenCV too.
pub(crate) fn vlanczos(rows: [&[i32]; 8], b: &[i16], out: &mut [u8]) {
    for (x, o) in out.iter_mut().enumerate() {
        let sum: i64 = (0..8).map(|k| rows[k][x] as i64 * b[k] as i64).sum();
        *o = cast22(sum);
    }
}

/// One output row of nearest-neighbour: gather whole pixels.
pub(crate) fn gather(src: &[u8], cn: usize, xofs: &[u32], out: &mut [u8]) {
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

/// Integer-factor box average over `sy` rows (`rows`) for one output row; 2×2 rounds like
/// OpenCV's vector code (`(a+b+c+d+2) >> 2`), other factors like its scalar code
/// (`cvRound(sum / area)`).
pub(crate) fn area_fast_row(rows: &[&[u8]], cn: usize, fx: usize, out: &mut [u8]) {
    let area = (fx * rows.len()) as f32;
    let inv = 1.0f32 / area;
    let two_by_two = fx == 2 && rows.len() == 2;
    for (dx, o) in out.chunks_exact_mut(cn).enumerate() {
        for c in 0..cn {
            let mut sum = 0u32;
            for r in rows {
                for k in 0..fx {
                    sum += r[(dx * fx + k) * cn + c] as u32;
                }
            }
            o[c] = if two_by_two {
                ((sum + 2) >> 2) as u8
            } else {
                (sum as f32 * inv).round_ties_even().min(255.0) as u8
            };
        }
    }
}

/// One entry of an area table: destination index, source index, weight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AreaTap {
    pub d: u32,
    pub s: u32,
    pub w: f32,
}

/// Horizontal part of the general area resampler: `buf[d*cn+c] += src[s*cn+c] * w`.
pub(crate) fn area_hpass(src: &[u8], cn: usize, tab: &[AreaTap], buf: &mut [f32]) {
    buf.fill(0.0);
    for t in tab {
        let (d, s) = (t.d as usize * cn, t.s as usize * cn);
        for c in 0..cn {
            buf[d + c] += src[s + c] as f32 * t.w;
        }
    }
}
