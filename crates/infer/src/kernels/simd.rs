//! The depthwise convolution's inner loops, one body for every instruction set.
//!
//! A plane is computed from a *phase buffer* (see [`super::depthwise`]): the zero-padded input
//! rows split by column phase, so that every tap of every output point is a contiguous read at a
//! fixed offset from the output row's base. The loop below is then the same for every kernel
//! size, stride and padding: for a few output vectors at a time, one fused multiply-add per tap.
//!
//! [`Lanes`] abstracts the vector: AVX-512 (16 lanes), AVX2 + FMA (8), WebAssembly SIMD128 (4,
//! when the crate is compiled with `+simd128`) and a portable 8-lane array the compiler
//! vectorises for the baseline target. The x86 copies are chosen at run time.

use super::depthwise::Geometry;
use std::mem::MaybeUninit;

/// Most taps a kernel may have here (7×7); larger ones stay with tract's own op.
pub(crate) const MAX_TAPS: usize = 49;

/// One vector of `N` floats.
pub(crate) trait Lanes: Copy {
    const N: usize;
    /// # Safety
    /// The CPU must support the instruction set of the implementing type (as for all methods).
    unsafe fn splat(x: f32) -> Self;
    /// # Safety
    /// `p..p + N` readable.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p..p + N` writable.
    unsafe fn store(self, p: *mut f32);
    /// `acc + self * w`
    unsafe fn mul_add(self, w: Self, acc: Self) -> Self;
    /// `min(max(self, lo), hi)`
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self;
    /// lane-wise maximum
    unsafe fn max(self, other: Self) -> Self;
    /// Store the first `n < N` lanes.
    ///
    /// # Safety
    /// `p..p + n` writable.
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        let mut tmp = [0f32; 16];
        unsafe {
            self.store(tmp.as_mut_ptr());
            std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, n);
        }
    }
}

/// What a plane needs besides its data: tap offsets into the phase buffer (relative to an output
/// row's base), weights, bias and the optional clamp (a fused ReLU / ReLU6 / clip).
pub(crate) struct PlaneArgs<'a> {
    /// the maximum over the taps instead of the weighted sum (max pooling: weights, bias and
    /// clamp unused)
    pub max: bool,
    pub offsets: &'a [usize],
    pub weights: &'a [f32],
    pub bias: f32,
    pub clamp: Option<(f32, f32)>,
    /// output rows and columns
    pub out_h: usize,
    pub out_w: usize,
    /// distance in the phase buffer between the bases of two consecutive output rows
    pub row_stride: usize,
}

/// Output vectors computed together: independent accumulator chains keep the FMA units busy
/// (one chain would wait on each multiply-add's latency).
const GROUP: usize = 4;

/// Compute one plane. `src` is the phase buffer, which must hold, for every output row `y`,
/// `y * row_stride + offset + round_up(out_w, L::N)` floats for every offset; `out` holds
/// `out_h * out_w` floats.
///
/// # Safety
/// The CPU must support `L`'s instruction set; `src` and `out` sized as above.
#[inline(always)]
unsafe fn plane<L: Lanes, const CLAMP: bool, const MAX: bool>(
    src: &[f32],
    out: &mut [f32],
    a: &PlaneArgs,
) {
    let taps = a.offsets.len();
    debug_assert!(taps <= MAX_TAPS && (MAX || taps == a.weights.len()));
    let per_row = a.out_w.div_ceil(L::N);
    debug_assert!(out.len() >= a.out_h * a.out_w);
    debug_assert!(
        a.out_h == 0
            || src.len()
                >= (a.out_h - 1) * a.row_stride
                    + a.offsets.iter().max().copied().unwrap_or(0)
                    + per_row * L::N
    );
    unsafe {
        let mut w = [MaybeUninit::<L>::uninit(); MAX_TAPS];
        for (t, slot) in w[..taps].iter_mut().enumerate() {
            slot.write(L::splat(if MAX { 0.0 } else { a.weights[t] }));
        }
        let w = &*(&w[..taps] as *const [MaybeUninit<L>] as *const [L]);
        let bias = L::splat(if MAX { f32::NEG_INFINITY } else { a.bias });
        let (lo, hi) = a.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let (lo, hi) = (L::splat(lo), L::splat(hi));
        let src = src.as_ptr();
        let out = out.as_mut_ptr();
        let total = a.out_h * per_row;
        // where block `b` reads, where it writes, how many lanes it keeps
        let at = |b: usize| {
            let (y, xb) = (b / per_row, b % per_row);
            let x = xb * L::N;
            (
                y * a.row_stride + x,
                y * a.out_w + x,
                (a.out_w - x).min(L::N),
            )
        };
        let finish = |acc: L, o: usize, n: usize| {
            let acc = if CLAMP { acc.clamp(lo, hi) } else { acc };
            if n == L::N {
                acc.store(out.add(o));
            } else {
                acc.store_first(out.add(o), n);
            }
        };
        let mut b = 0;
        while b + GROUP <= total {
            let blocks: [(usize, usize, usize); GROUP] = std::array::from_fn(|i| at(b + i));
            let mut acc = [bias; GROUP];
            for (&off, &wt) in a.offsets.iter().zip(w) {
                for g in 0..GROUP {
                    let x = L::load(src.add(blocks[g].0 + off));
                    acc[g] = if MAX {
                        acc[g].max(x)
                    } else {
                        x.mul_add(wt, acc[g])
                    };
                }
            }
            for g in 0..GROUP {
                finish(acc[g], blocks[g].1, blocks[g].2);
            }
            b += GROUP;
        }
        while b < total {
            let (s, o, n) = at(b);
            let mut acc = bias;
            for (&off, &wt) in a.offsets.iter().zip(w) {
                let x = L::load(src.add(s + off));
                acc = if MAX { acc.max(x) } else { x.mul_add(wt, acc) };
            }
            finish(acc, o, n);
            b += 1;
        }
    }
}

#[inline(always)]
unsafe fn plane_any<L: Lanes>(src: &[f32], out: &mut [f32], a: &PlaneArgs) {
    unsafe {
        match (a.max, a.clamp.is_some()) {
            (true, _) => plane::<L, false, true>(src, out, a),
            (false, true) => plane::<L, true, false>(src, out, a),
            (false, false) => plane::<L, false, false>(src, out, a),
        }
    }
}

/// One channels-last (`[H, W, C]`) image of a depthwise convolution: every output pixel is
/// `C` consecutive floats, computed a vector of channels at a time over the taps that fall
/// inside the image (no padding copy: borders just have fewer taps).
pub(crate) struct ChannelsLast<'a> {
    pub geo: &'a Geometry,
    /// `[kh * kw][C]`
    pub weights: &'a [f32],
    /// `[C]`
    pub bias: &'a [f32],
    pub clamp: Option<(f32, f32)>,
}

impl ChannelsLast<'_> {
    /// The taps of output coordinate `o` that fall inside an axis of `len` (range of k).
    fn taps(o: usize, stride: usize, pad: usize, k: usize, len: usize) -> (usize, usize) {
        let start = (o * stride) as isize - pad as isize;
        let first = (-start).max(0) as usize;
        let last = (len as isize - start).clamp(0, k as isize) as usize;
        (first.min(last), last)
    }
}

#[inline(always)]
unsafe fn channels_last<L: Lanes, const CLAMP: bool>(
    input: &[f32],
    out: &mut [f32],
    a: &ChannelsLast,
) {
    let c = a.geo.channels;
    let (lo, hi) = a.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    unsafe {
        let (lo_v, hi_v) = (L::splat(lo), L::splat(hi));
        let (src, w, b) = (input.as_ptr(), a.weights.as_ptr(), a.bias.as_ptr());
        let full = c / L::N * L::N;
        for oy in 0..a.geo.out_h {
            let (ky0, ky1) =
                ChannelsLast::taps(oy, a.geo.stride_h, a.geo.pad_top, a.geo.kh, a.geo.in_h);
            let iy0 = oy * a.geo.stride_h + ky0 - a.geo.pad_top;
            for ox in 0..a.geo.out_w {
                let (kx0, kx1) =
                    ChannelsLast::taps(ox, a.geo.stride_w, a.geo.pad_left, a.geo.kw, a.geo.in_w);
                let ix0 = ox * a.geo.stride_w + kx0 - a.geo.pad_left;
                let dst = out.as_mut_ptr().add((oy * a.geo.out_w + ox) * c);
                let mut ch = 0;
                while ch < full {
                    let mut acc = L::load(b.add(ch));
                    for ky in ky0..ky1 {
                        let row = src.add(((iy0 + ky - ky0) * a.geo.in_w + ix0) * c + ch);
                        let wrow = w.add((ky * a.geo.kw + kx0) * c + ch);
                        for k in 0..kx1 - kx0 {
                            acc = L::load(row.add(k * c)).mul_add(L::load(wrow.add(k * c)), acc);
                        }
                    }
                    if CLAMP {
                        acc = acc.clamp(lo_v, hi_v);
                    }
                    acc.store(dst.add(ch));
                    ch += L::N;
                }
                // the channels after the last whole vector
                for ch in full..c {
                    let mut acc = *b.add(ch);
                    for ky in ky0..ky1 {
                        for kx in kx0..kx1 {
                            let x =
                                *src.add(((iy0 + ky - ky0) * a.geo.in_w + ix0 + kx - kx0) * c + ch);
                            acc += x * *w.add((ky * a.geo.kw + kx) * c + ch);
                        }
                    }
                    if CLAMP {
                        acc = acc.max(lo).min(hi);
                    }
                    *dst.add(ch) = acc;
                }
            }
        }
    }
}

#[inline(always)]
unsafe fn channels_last_any<L: Lanes>(input: &[f32], out: &mut [f32], a: &ChannelsLast) {
    unsafe {
        if a.clamp.is_some() {
            channels_last::<L, true>(input, out, a)
        } else {
            channels_last::<L, false>(input, out, a)
        }
    }
}

/// Compute one channels-last image at `level` (an unavailable level runs the portable code).
pub(crate) fn run_channels_last(level: Level, input: &[f32], out: &mut [f32], a: &ChannelsLast) {
    let taps = a.geo.kh * a.geo.kw;
    assert!(
        input.len() >= a.geo.in_h * a.geo.in_w * a.geo.channels
            && out.len() >= a.geo.out_h * a.geo.out_w * a.geo.channels
            && a.weights.len() == taps * a.geo.channels
            && a.bias.len() == a.geo.channels
            && a.geo.stride_h >= 1
            && a.geo.stride_w >= 1
            // every output pixel sees at least one input pixel
            && (a.geo.out_h == 0 || (a.geo.out_h - 1) * a.geo.stride_h < a.geo.in_h + a.geo.pad_top)
            && (a.geo.out_w == 0 || (a.geo.out_w - 1) * a.geo.stride_w < a.geo.in_w + a.geo.pad_left)
            && a.geo.pad_top < a.geo.kh
            && a.geo.pad_left < a.geo.kw,
        "channels-last depthwise buffers do not fit"
    );
    // SAFETY: sizes checked above (each tap read is inside the image by `taps`); each arm
    // runs only where its instructions exist.
    unsafe {
        match level {
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 if level.available() => x86::channels_last_avx512(input, out, a),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 if level.available() => x86::channels_last_avx2(input, out, a),
            #[cfg(all(target_family = "wasm", target_feature = "simd128"))]
            Level::Simd128 => channels_last_any::<wasm::V128>(input, out, a),
            _ => channels_last_any::<Portable>(input, out, a),
        }
    }
}

/// The instruction set a plane runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// plain Rust, 8 floats at a time (vectorised by the compiler for the build target)
    Portable,
    /// x86-64 AVX2 with FMA, 8 lanes
    Avx2,
    /// x86-64 AVX-512F, 16 lanes
    Avx512,
    /// WebAssembly SIMD128, 4 lanes (builds with `-C target-feature=+simd128`)
    Simd128,
}

impl Level {
    /// Lanes per vector.
    pub fn lanes(self) -> usize {
        match self {
            Level::Portable | Level::Avx2 => 8,
            Level::Avx512 => 16,
            Level::Simd128 => 4,
        }
    }

    /// The best level this machine runs (`TENSORCV_NO_SIMD` set: portable).
    pub fn best() -> Level {
        use std::sync::OnceLock;
        static BEST: OnceLock<Level> = OnceLock::new();
        *BEST.get_or_init(|| {
            if std::env::var_os("TENSORCV_NO_SIMD").is_some() {
                return Level::Portable;
            }
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx512f") {
                    return Level::Avx512;
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    return Level::Avx2;
                }
            }
            #[cfg(all(target_family = "wasm", target_feature = "simd128"))]
            {
                return Level::Simd128;
            }
            #[allow(unreachable_code)]
            Level::Portable
        })
    }

    /// Whether this machine can run `self`.
    pub fn available(self) -> bool {
        match self {
            Level::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => std::is_x86_feature_detected!("avx512f"),
            #[cfg(all(target_family = "wasm", target_feature = "simd128"))]
            Level::Simd128 => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// Compute one plane at `level` (which must be [`Level::available`]; an unavailable level runs
/// the portable code).
pub(crate) fn run_plane(level: Level, src: &[f32], out: &mut [f32], a: &PlaneArgs) {
    let lanes = level.lanes();
    let per_row = a.out_w.div_ceil(lanes);
    let need = match a.out_h {
        0 => 0,
        h => {
            (h - 1) * a.row_stride + a.offsets.iter().max().copied().unwrap_or(0) + per_row * lanes
        }
    };
    assert!(
        src.len() >= need
            && out.len() >= a.out_h * a.out_w
            && (a.max || a.offsets.len() == a.weights.len())
            && a.offsets.len() <= MAX_TAPS,
        "depthwise plane buffers too small"
    );
    // SAFETY: sizes checked above; each arm runs only where its instructions exist.
    unsafe {
        match level {
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 if level.available() => x86::plane_avx512(src, out, a),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 if level.available() => x86::plane_avx2(src, out, a),
            #[cfg(all(target_family = "wasm", target_feature = "simd128"))]
            Level::Simd128 => plane_any::<wasm::V128>(src, out, a),
            _ => plane_any::<Portable>(src, out, a),
        }
    }
}

/// Eight floats as an array: the compiler vectorises the element loops for the build target.
/// Multiply then add (no fused multiply-add, which is a slow library call without FMA).
#[derive(Clone, Copy)]
struct Portable([f32; 8]);

impl Lanes for Portable {
    const N: usize = 8;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Portable([x; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Portable(std::ptr::read_unaligned(p as *const [f32; 8])) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { std::ptr::write_unaligned(p as *mut [f32; 8], self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, w: Self, acc: Self) -> Self {
        Portable(std::array::from_fn(|i| acc.0[i] + self.0[i] * w.0[i]))
    }
    #[inline(always)]
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i].max(lo.0[i]).min(hi.0[i])))
    }
    #[inline(always)]
    unsafe fn max(self, other: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i].max(other.0[i])))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{channels_last_any, plane_any, ChannelsLast, Lanes, PlaneArgs};
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    pub(super) struct Avx512(__m512);

    impl Lanes for Avx512 {
        const N: usize = 16;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            unsafe { Avx512(_mm512_set1_ps(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { Avx512(_mm512_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, w: Self, acc: Self) -> Self {
            unsafe { Avx512(_mm512_fmadd_ps(self.0, w.0, acc.0)) }
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            unsafe { Avx512(_mm512_min_ps(_mm512_max_ps(self.0, lo.0), hi.0)) }
        }
        #[inline(always)]
        unsafe fn max(self, other: Self) -> Self {
            unsafe { Avx512(_mm512_max_ps(self.0, other.0)) }
        }
        #[inline(always)]
        unsafe fn store_first(self, p: *mut f32, n: usize) {
            unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as __mmask16, self.0) }
        }
    }

    #[derive(Clone, Copy)]
    pub(super) struct Avx2(__m256);

    impl Lanes for Avx2 {
        const N: usize = 8;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            unsafe { Avx2(_mm256_set1_ps(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { Avx2(_mm256_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, w: Self, acc: Self) -> Self {
            unsafe { Avx2(_mm256_fmadd_ps(self.0, w.0, acc.0)) }
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            unsafe { Avx2(_mm256_min_ps(_mm256_max_ps(self.0, lo.0), hi.0)) }
        }
        #[inline(always)]
        unsafe fn max(self, other: Self) -> Self {
            unsafe { Avx2(_mm256_max_ps(self.0, other.0)) }
        }
    }

    /// # Safety
    /// AVX-512F present; buffers as [`super::run_plane`] checks.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn plane_avx512(src: &[f32], out: &mut [f32], a: &PlaneArgs) {
        unsafe { plane_any::<Avx512>(src, out, a) }
    }

    /// # Safety
    /// AVX-512F present; buffers as [`super::run_channels_last`] checks.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn channels_last_avx512(input: &[f32], out: &mut [f32], a: &ChannelsLast) {
        unsafe { channels_last_any::<Avx512>(input, out, a) }
    }

    /// # Safety
    /// AVX2 and FMA present; buffers as [`super::run_channels_last`] checks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn channels_last_avx2(input: &[f32], out: &mut [f32], a: &ChannelsLast) {
        unsafe { channels_last_any::<Avx2>(input, out, a) }
    }

    /// # Safety
    /// AVX2 and FMA present; buffers as [`super::run_plane`] checks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn plane_avx2(src: &[f32], out: &mut [f32], a: &PlaneArgs) {
        unsafe { plane_any::<Avx2>(src, out, a) }
    }
}

#[cfg(all(target_family = "wasm", target_feature = "simd128"))]
mod wasm {
    use super::Lanes;
    use std::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub(super) struct V128(v128);

    impl Lanes for V128 {
        const N: usize = 4;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            V128(f32x4_splat(x))
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { V128(v128_load(p as *const v128)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { v128_store(p as *mut v128, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, w: Self, acc: Self) -> Self {
            V128(f32x4_add(acc.0, f32x4_mul(self.0, w.0)))
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            V128(f32x4_pmin(hi.0, f32x4_pmax(lo.0, self.0)))
        }
        #[inline(always)]
        unsafe fn max(self, other: Self) -> Self {
            V128(f32x4_max(self.0, other.0))
        }
    }
}
