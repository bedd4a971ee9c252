//! Hand-written AVX2 copies of the horizontal passes for 3- and 4-channel pixels, the gathers
//! the compiler does not vectorise well: two output pixels per step, each tap one 4-byte word
//! (see `kernels::wide_pixels`). Linear sums in OpenCV's 16-bit products (`vpmaddwd` on
//! interleaved tap pairs, as its `HResizeLinearVec` does), cubic in `f32` with a multiply then
//! an add per tap from zero — the portable loops' arithmetic exactly, so results are identical
//! (the parity tests run both). Other channel counts and tap counts go to the portable code,
//! compiled here with AVX2. No unsafe code: loads are bounds-checked slices (clamped so the
//! checks fold away) and vectors leave through `bytemuck`.

use super::kernels::{hpass_from, vlinear_px};
use std::arch::x86_64::*;

/// The 4 bytes at `b` (clamped to the last whole word) in the low lane.
#[inline]
#[target_feature(enable = "avx2")]
fn word(src: &[u8], b: u32, lim: usize) -> __m128i {
    let b = (b as usize).min(lim);
    let w: [u8; 4] = src[b..b + 4].try_into().unwrap_or([0; 4]);
    _mm_cvtsi32_si128(i32::from_le_bytes(w))
}

/// Store a pixel's 4 lanes at `o` (clamped so the store fits).
#[inline]
#[target_feature(enable = "avx2")]
fn put<T: bytemuck::Pod>(out: &mut [T], o: usize, v: __m128i) {
    let lanes: [T; 4] = bytemuck::cast(v);
    let o = o.min(out.len() - 4);
    out[o..o + 4].copy_from_slice(&lanes);
}

/// Where the 2-pixel loops may run: the source has a word, the output a 4-lane store.
#[inline]
fn room(src: &[u8], out_len: usize, cn: usize, wide: usize) -> Option<(usize, usize)> {
    (src.len() >= 4 && out_len >= 4).then(|| (src.len() - 4, wide.min(out_len / cn)))
}

#[target_feature(enable = "avx2")]
pub(super) fn hpass<const K: usize>(
    src: &[u8],
    cn: usize,
    idx: &[u32],
    alpha: &[i16],
    wide: usize,
    out: &mut [i32],
) {
    hpass_rows::<K, 1>([src], cn, idx, alpha, wide, [out])
}

#[target_feature(enable = "avx2")]
pub(super) fn hpass2<const K: usize>(
    src: [&[u8]; 2],
    cn: usize,
    idx: &[u32],
    alpha: &[i16],
    wide: usize,
    out: [&mut [i32]; 2],
) {
    hpass_rows::<K, 2>(src, cn, idx, alpha, wide, out)
}

/// The fixed-point horizontal pass of `R` rows sharing taps and weights: the 2-tap 3- and
/// 4-channel pixels vectorised, the rest portable.
#[inline]
#[target_feature(enable = "avx2")]
fn hpass_rows<const K: usize, const R: usize>(
    src: [&[u8]; R],
    cn: usize,
    idx: &[u32],
    alpha: &[i16],
    wide: usize,
    mut out: [&mut [i32]; R],
) {
    let done = match (K, cn) {
        (2, 3) => linear::<3, R>(src, idx, alpha, wide, out.each_mut().map(|o| &mut **o)),
        (2, 4) => linear::<4, R>(src, idx, alpha, wide, out.each_mut().map(|o| &mut **o)),
        _ => 0,
    };
    for (s, o) in src.into_iter().zip(out) {
        hpass_from::<K, i32>(s, cn, idx, alpha, wide, done, o);
    }
}

#[target_feature(enable = "avx2")]
pub(super) fn hpass_f32<const K: usize>(
    src: &[u8],
    cn: usize,
    idx: &[u32],
    w: &[f32],
    wide: usize,
    out: &mut [f32],
) {
    let done = match (K, cn) {
        (4, 3) => cubic::<3>(src, idx, w, wide, out),
        (4, 4) => cubic::<4>(src, idx, w, wide, out),
        _ => 0,
    };
    hpass_from::<K, f32>(src, cn, idx, w, wide, done, out)
}

/// Two taps, for `R` source rows at once (their taps and weights loaded once): the pixels'
/// words interleaved byte by byte and widened, times the weight pair. Returns how many leading
/// pixels it wrote.
#[inline]
#[target_feature(enable = "avx2")]
fn linear<const CN: usize, const R: usize>(
    src: [&[u8]; R],
    idx: &[u32],
    alpha: &[i16],
    wide: usize,
    mut out: [&mut [i32]; R],
) -> usize {
    // the rows of one image have one length; the shortest bounds the loads, the shortest
    // output the stores
    let slen = src.iter().map(|s| s.len()).min().unwrap_or(0);
    let olen = out.iter().map(|o| o.len()).min().unwrap_or(0);
    let Some((lim, n)) = room(&src[0][..slen], olen, CN, wide) else {
        return 0;
    };
    let pair = |a: &[i16]| (a[1] as i32) << 16 | (a[0] as u16 as i32);
    let mut dx = 0;
    while dx + 2 <= n {
        let (i, a) = (&idx[dx * 2..dx * 2 + 4], &alpha[dx * 2..dx * 2 + 4]);
        let (wp, wq) = (pair(&a[..2]), pair(&a[2..]));
        let w = _mm256_set_epi32(wq, wq, wq, wq, wp, wp, wp, wp);
        for (s, o) in src.iter().zip(out.iter_mut()) {
            let p = _mm_unpacklo_epi8(word(s, i[0], lim), word(s, i[1], lim));
            let q = _mm_unpacklo_epi8(word(s, i[2], lim), word(s, i[3], lim));
            let px = _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(p, q));
            let r = _mm256_madd_epi16(px, w);
            put(o, dx * CN, _mm256_castsi256_si128(r));
            put(o, (dx + 1) * CN, _mm256_extracti128_si256::<1>(r));
        }
        dx += 2;
    }
    dx
}

/// Four taps in `f32`: per tap, both pixels' words widened to 8 floats, times the weights
/// (one per pixel), added to the sums.
#[inline]
#[target_feature(enable = "avx2")]
fn cubic<const CN: usize>(
    src: &[u8],
    idx: &[u32],
    w: &[f32],
    wide: usize,
    out: &mut [f32],
) -> usize {
    let Some((lim, n)) = room(src, out.len(), CN, wide) else {
        return 0;
    };
    let mut dx = 0;
    while dx + 2 <= n {
        let (i, wk) = (&idx[dx * 4..dx * 4 + 8], &w[dx * 4..dx * 4 + 8]);
        let mut acc = _mm256_setzero_ps();
        for k in 0..4 {
            let pq = _mm_unpacklo_epi32(word(src, i[k], lim), word(src, i[4 + k], lim));
            let px = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(pq));
            let wv = _mm256_set_m128(_mm_set1_ps(wk[4 + k]), _mm_set1_ps(wk[k]));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(px, wv));
        }
        put(
            out,
            dx * CN,
            _mm256_castsi256_si128(_mm256_castps_si256(acc)),
        );
        put(
            out,
            (dx + 1) * CN,
            _mm256_extracti128_si256::<1>(_mm256_castps_si256(acc)),
        );
        dx += 2;
    }
    dx
}

/// Eight `i32` values from `s` at `o`.
#[inline]
#[target_feature(enable = "avx2")]
fn load8(s: &[i32], o: usize) -> __m256i {
    let v: [i32; 8] = s[o..o + 8].try_into().unwrap_or([0; 8]);
    bytemuck::cast(v)
}

/// The linear vertical pass, 16 values per step in 16-bit lanes as OpenCV's vector loop:
/// saturating pack of `sum >> 4`, `vpmulhw` by each weight, saturating add, rounding shift by 2
/// (OpenCV's `v_rshr_pack_u`, a saturating add of 2: equal to the scalar `(v + 2) >> 2` after
/// the final saturation to `u8`).
#[target_feature(enable = "avx2")]
pub(super) fn vlinear(s0: &[i32], s1: &[i32], b: &[i16], out: &mut [u8]) {
    let n = out.len().min(s0.len()).min(s1.len());
    let (b0, b1) = (_mm256_set1_epi16(b[0]), _mm256_set1_epi16(b[1]));
    let two = _mm256_set1_epi16(2);
    // packs work per 128-bit lane: 32-bit groups 0, 4, 1, 5 hold values 0..16 in order
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let mut x = 0;
    while x + 16 <= n {
        let row = |s: &[i32]| {
            let lo = _mm256_srai_epi32::<4>(load8(s, x));
            let hi = _mm256_srai_epi32::<4>(load8(s, x + 8));
            _mm256_packs_epi32(lo, hi)
        };
        let (a, c) = (row(s0), row(s1));
        let v = _mm256_adds_epi16(_mm256_mulhi_epi16(a, b0), _mm256_mulhi_epi16(c, b1));
        let r = _mm256_srai_epi16::<2>(_mm256_adds_epi16(v, two));
        let p = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(r, r), order);
        let bytes: [u8; 16] = bytemuck::cast(_mm256_castsi256_si128(p));
        out[x..x + 16].copy_from_slice(&bytes);
        x += 16;
    }
    for ((o, &a), &c) in out[x..n].iter_mut().zip(&s0[x..n]).zip(&s1[x..n]) {
        *o = vlinear_px(a, c, b[0], b[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::kernels::{hpass_from, vlinear_px, wide_pixels};

    /// A small deterministic generator (tests need no `rand`).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }
    }

    /// Plan-like taps: per output pixel `k` consecutive source pixels from a random start,
    /// clamped to the row, as byte offsets.
    fn taps(rng: &mut Lcg, sw: usize, dw: usize, k: usize, cn: usize) -> Vec<u32> {
        let mut idx = Vec::new();
        for dx in 0..dw {
            let first = (dx * sw / dw) as i64 - 1 + (rng.next() % 3) as i64 - 1;
            for t in 0..k {
                idx.push(((first + t as i64).clamp(0, sw as i64 - 1) as usize * cn) as u32);
            }
        }
        idx
    }

    #[test]
    fn avx2_horizontal_passes_equal_the_portable_ones() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut rng = Lcg(7);
        for cn in 1..=4 {
            for (sw, dw) in [
                (1, 1),
                (1, 7),
                (2, 3),
                (5, 2),
                (17, 9),
                (64, 224),
                (1920, 224),
                (33, 33),
            ] {
                let src: Vec<u8> = (0..sw * cn).map(|_| rng.next() as u8).collect();
                for k in [2usize, 4, 8] {
                    let idx = taps(&mut rng, sw, dw, k, cn);
                    let wide = wide_pixels(&idx, k, cn, src.len(), dw * cn);
                    let wi: Vec<i16> = (0..dw * k).map(|_| rng.next() as i16 >> 3).collect();
                    let wf: Vec<f32> = (0..dw * k)
                        .map(|_| rng.next() as f32 / u32::MAX as f32 - 0.3)
                        .collect();
                    let (mut a, mut b) = (vec![0i32; dw * cn], vec![0i32; dw * cn]);
                    let (mut fa, mut fb) = (vec![0f32; dw * cn], vec![0f32; dw * cn]);
                    match k {
                        2 => {
                            hpass_from::<2, i32>(&src, cn, &idx, &wi, wide, 0, &mut a);
                            // SAFETY: AVX2 confirmed above.
                            #[allow(unsafe_code)]
                            unsafe {
                                super::hpass::<2>(&src, cn, &idx, &wi, wide, &mut b)
                            };
                        }
                        4 => {
                            hpass_from::<4, f32>(&src, cn, &idx, &wf, wide, 0, &mut fa);
                            // SAFETY: AVX2 confirmed above.
                            #[allow(unsafe_code)]
                            unsafe {
                                super::hpass_f32::<4>(&src, cn, &idx, &wf, wide, &mut fb)
                            };
                        }
                        _ => {
                            hpass_from::<8, i32>(&src, cn, &idx, &wi, wide, 0, &mut a);
                            // SAFETY: AVX2 confirmed above.
                            #[allow(unsafe_code)]
                            unsafe {
                                super::hpass::<8>(&src, cn, &idx, &wi, wide, &mut b)
                            };
                        }
                    }
                    assert_eq!(a, b, "cn {cn}, {sw} -> {dw}, {k} taps");
                    if k == 2 {
                        // two rows at once: each as the portable pass gives it
                        let other: Vec<u8> = src.iter().map(|&v| v ^ 0x5a).collect();
                        let mut c = vec![0i32; dw * cn];
                        hpass_from::<2, i32>(&other, cn, &idx, &wi, wide, 0, &mut c);
                        let (mut b0, mut b1) = (vec![0i32; dw * cn], vec![0i32; dw * cn]);
                        // SAFETY: AVX2 confirmed above.
                        #[allow(unsafe_code)]
                        unsafe {
                            super::hpass2::<2>(
                                [&src, &other],
                                cn,
                                &idx,
                                &wi,
                                wide,
                                [&mut b0, &mut b1],
                            )
                        };
                        assert_eq!((&a, &c), (&b0, &b1), "two rows: cn {cn}, {sw} -> {dw}");
                    }
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&fa),
                        bits(&fb),
                        "cn {cn}, {sw} -> {dw}, {k} taps (f32)"
                    );
                    if dw >= 9 && cn >= 3 && sw >= 2 {
                        assert!(wide > 0, "the 4-lane path runs");
                    }
                }
            }
        }
    }

    #[test]
    fn avx2_linear_vertical_pass_equals_the_portable_one() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut rng = Lcg(11);
        for n in [0usize, 1, 15, 16, 17, 47, 672] {
            // sums over the whole i32 range, so the 16-bit saturations are exercised
            let row = |rng: &mut Lcg| -> Vec<i32> {
                (0..n)
                    .map(|i| match i % 3 {
                        0 => rng.next() as i32,
                        1 => (rng.next() % (255 << 11)) as i32,
                        _ => (rng.next() % (600 << 11)) as i32 - (100 << 11),
                    })
                    .collect()
            };
            for b in [[2048i16, 0], [1024, 1024], [-300, 2348], [2047, 1]] {
                let (s0, s1) = (row(&mut rng), row(&mut rng));
                let want: Vec<u8> = s0
                    .iter()
                    .zip(&s1)
                    .map(|(&a, &c)| vlinear_px(a, c, b[0], b[1]))
                    .collect();
                let mut got = vec![0u8; n];
                // SAFETY: AVX2 confirmed above.
                #[allow(unsafe_code)]
                unsafe {
                    super::vlinear(&s0, &s1, &b, &mut got)
                };
                assert_eq!(got, want, "{n} values, weights {b:?}");
            }
        }
    }
}
