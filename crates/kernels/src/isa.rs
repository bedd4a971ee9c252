//! One vector of floats per instruction set, behind one trait, so every kernel is written once
//! and compiled per instruction set: AVX-512 (16 lanes), AVX2 + FMA (8), NEON on aarch64 (4,
//! with fused multiply-add), WebAssembly SIMD128 (4, when the crate is compiled with
//! `+simd128`) and a portable 8-lane array the compiler vectorises for the baseline target.
//! [`Level`] says which one runs; the x86 copies are chosen at run time (NEON is part of every
//! aarch64 CPU, so it needs no check).
//!
//! [`dispatch`] is the one place that turns a [`Level`] into code: a kernel is a value
//! implementing [`Kernel`] (its arguments) whose `run::<L>()` is written once over [`Lanes`];
//! `dispatch` calls it through one `#[target_feature]` trampoline per instruction set, so the
//! whole kernel, inlined into the trampoline, is compiled with those instructions. A level this
//! machine cannot run falls back to the portable copy.

/// One vector of `N` floats.
pub trait Lanes: Copy {
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
    ///
    /// # Safety
    /// The CPU supports the implementing type's instruction set (as for every method).
    unsafe fn mul_add(self, w: Self, acc: Self) -> Self;
    /// `self + other`
    ///
    /// # Safety
    /// The instruction set, as for every method.
    unsafe fn add(self, other: Self) -> Self;
    /// `min(max(self, lo), hi)`
    ///
    /// # Safety
    /// The instruction set, as for every method.
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self;
    /// lane-wise maximum
    ///
    /// # Safety
    /// The instruction set, as for every method.
    unsafe fn max(self, other: Self) -> Self;
    /// Store the first `n < N` lanes.
    ///
    /// # Safety
    /// `p..p + n` writable.
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        let mut tmp = [0f32; 16];
        // SAFETY: the method's contract: the CPU has this type's instruction set (which `dispatch`
        // ensures) and every pointer is valid for the lanes it touches (the temporaries hold 16
        // floats, `N` at most)
        unsafe {
            self.store(tmp.as_mut_ptr());
            std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, n);
        }
    }
    /// Lanes `lo..hi` from `p + lane`, the others `fill`; `p` itself may lie outside the
    /// buffer (only the lanes in range are read).
    ///
    /// # Safety
    /// `p + lo..p + hi` readable.
    #[inline(always)]
    unsafe fn load_range(p: *const f32, lo: usize, hi: usize, fill: f32) -> Self {
        let mut tmp = [fill; 16];
        for (l, t) in tmp.iter_mut().enumerate().take(hi).skip(lo) {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            *t = unsafe { *p.wrapping_add(l) };
        }
        // SAFETY: the instruction set is the caller's contract; `tmp` holds 16 floats, `N` at most
        unsafe { Self::load(tmp.as_ptr()) }
    }
    /// The even lanes of `a` then those of `b` (`a0 a2 .. b0 b2 ..`): a stride-2 read of the
    /// `2N` floats `a` then `b` hold.
    ///
    /// # Safety
    /// The instruction set, as for every method.
    #[inline(always)]
    unsafe fn even(a: Self, b: Self) -> Self {
        let (mut x, mut y, mut z) = ([0f32; 16], [0f32; 16], [0f32; 16]);
        // SAFETY: the method's contract: the CPU has this type's instruction set (which `dispatch`
        // ensures) and every pointer is valid for the lanes it touches (the temporaries hold 16
        // floats, `N` at most)
        unsafe {
            a.store(x.as_mut_ptr());
            b.store(y.as_mut_ptr());
            for l in 0..Self::N / 2 {
                z[l] = x[2 * l];
                z[l + Self::N / 2] = y[2 * l];
            }
            Self::load(z.as_ptr())
        }
    }
    /// The odd lanes of `a` then those of `b` (`a1 a3 .. b1 b3 ..`).
    ///
    /// # Safety
    /// The instruction set, as for every method.
    #[inline(always)]
    unsafe fn odd(a: Self, b: Self) -> Self {
        let (mut x, mut y, mut z) = ([0f32; 16], [0f32; 16], [0f32; 16]);
        // SAFETY: the method's contract: the CPU has this type's instruction set (which `dispatch`
        // ensures) and every pointer is valid for the lanes it touches (the temporaries hold 16
        // floats, `N` at most)
        unsafe {
            a.store(x.as_mut_ptr());
            b.store(y.as_mut_ptr());
            for l in 0..Self::N / 2 {
                z[l] = x[2 * l + 1];
                z[l + Self::N / 2] = y[2 * l + 1];
            }
            Self::load(z.as_ptr())
        }
    }
    /// The `N` floats at `p + K` (`K < N`), given `a` and `b`, the vectors at `p` and `p + N`
    /// (AVX-512 shifts them together in registers; the others load again, unaligned).
    ///
    /// # Safety
    /// `p..p + K + N` readable.
    #[inline(always)]
    unsafe fn shifted<const K: usize>(p: *const f32, a: Self, b: Self) -> Self {
        let _ = (a, b);
        // SAFETY: the method's contract: the CPU has this type's instruction set (which `dispatch`
        // ensures) and every pointer is valid for the lanes it touches (the temporaries hold 16
        // floats, `N` at most)
        unsafe { Self::load(p.add(K)) }
    }
    /// Transpose `N` vectors in place: lane `j` of vector `i` becomes lane `i` of vector `j`.
    ///
    /// # Safety
    /// `v.len() == N`.
    #[inline(always)]
    unsafe fn transpose(v: &mut [Self]) {
        let mut m = [[0f32; 16]; 16];
        // SAFETY: the method's contract: the CPU has this type's instruction set (which `dispatch`
        // ensures) and every pointer is valid for the lanes it touches (the temporaries hold 16
        // floats, `N` at most)
        unsafe {
            for (i, x) in v.iter().enumerate() {
                x.store(m[i].as_mut_ptr());
            }
            for (j, x) in v.iter_mut().enumerate() {
                let col: [f32; 16] = std::array::from_fn(|i| m[i][j]);
                *x = Self::load(col.as_ptr());
            }
        }
    }
    /// Load the first `n <= N` lanes, the others zero.
    ///
    /// # Safety
    /// `p..p + n` readable.
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize) -> Self {
        let mut tmp = [0f32; 16];
        // SAFETY: the method's contract: the CPU has this type's instruction set (which `dispatch`
        // ensures) and every pointer is valid for the lanes it touches (the temporaries hold 16
        // floats, `N` at most)
        unsafe {
            std::ptr::copy_nonoverlapping(p, tmp.as_mut_ptr(), n);
            Self::load(tmp.as_ptr())
        }
    }
}

/// The instruction set a kernel runs with.
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
    /// aarch64 NEON (Advanced SIMD), 4 lanes
    Neon,
}

impl Level {
    /// Lanes per vector.
    pub fn lanes(self) -> usize {
        match self {
            Level::Portable | Level::Avx2 => 8,
            Level::Avx512 => 16,
            Level::Simd128 | Level::Neon => 4,
        }
    }

    /// Every level, best first (what a machine may run; see [`Level::available`]).
    pub const ALL: [Level; 5] = [
        Level::Avx512,
        Level::Avx2,
        Level::Neon,
        Level::Simd128,
        Level::Portable,
    ];

    /// The level's name, as `--version` and benchmarks print it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2+fma",
            Level::Avx512 => "avx512f",
            Level::Simd128 => "simd128",
            Level::Neon => "neon",
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
            #[cfg(target_arch = "aarch64")]
            {
                return Level::Neon;
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
            // NEON (Advanced SIMD) is mandatory in AArch64
            #[cfg(target_arch = "aarch64")]
            Level::Neon => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// `self` where this machine runs it, else the portable level (what the kernels' dispatch
    /// does with a level it cannot run).
    pub fn or_portable(self) -> Level {
        if self.available() {
            self
        } else {
            Level::Portable
        }
    }
}

/// Eight floats as an array: the compiler vectorises the element loops for the build target.
/// Multiply then add (no fused multiply-add, which is a slow library call without FMA).
#[derive(Clone, Copy)]
pub struct Portable([f32; 8]);

impl Lanes for Portable {
    const N: usize = 8;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Portable([x; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the method's contract: the CPU has this type's instruction set (which `dispatch`
        // ensures) and every pointer is valid for the lanes it touches (the temporaries hold 16
        // floats, `N` at most)
        unsafe { Portable(std::ptr::read_unaligned(p as *const [f32; 8])) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the method's contract: the CPU has this type's instruction set (which `dispatch`
        // ensures) and every pointer is valid for the lanes it touches (the temporaries hold 16
        // floats, `N` at most)
        unsafe { std::ptr::write_unaligned(p as *mut [f32; 8], self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, w: Self, acc: Self) -> Self {
        Portable(std::array::from_fn(|i| acc.0[i] + self.0[i] * w.0[i]))
    }
    #[inline(always)]
    unsafe fn add(self, other: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i] + other.0[i]))
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
pub use x86::{Avx2, Avx512};

/// A kernel written once over [`Lanes`], run by [`dispatch`] at a [`Level`].
pub trait Kernel {
    /// What the kernel returns.
    type Output;
    /// Run with vectors `L`.
    ///
    /// # Safety
    /// The CPU supports `L`'s instruction set (which [`dispatch`] guarantees), and whatever
    /// the implementing kernel documents about its buffers.
    unsafe fn run<L: Lanes>(self) -> Self::Output;
}

/// Run `kernel` with `level`'s vectors, or the portable ones where this machine lacks `level`.
///
/// # Safety
/// The kernel's own preconditions on its buffers (the instruction set is checked here).
#[inline(always)]
pub unsafe fn dispatch<K: Kernel>(level: Level, kernel: K) -> K::Output {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available` checked AVX-512F; the buffers are the caller's contract
        Level::Avx512 if level.available() => unsafe { x86::with_avx512(kernel) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available` checked AVX2 and FMA; the buffers are the caller's contract
        Level::Avx2 if level.available() => unsafe { x86::with_avx2(kernel) },
        #[cfg(all(target_family = "wasm", target_feature = "simd128"))]
        // SAFETY: the crate is compiled with SIMD128; the buffers are the caller's contract
        Level::Simd128 => unsafe { kernel.run::<V128>() },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: every AArch64 CPU has NEON; the buffers are the caller's contract
        Level::Neon => unsafe { kernel.run::<Neon>() },
        // SAFETY: portable code needs no instruction set; the buffers are the caller's contract
        _ => unsafe { kernel.run::<Portable>() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_match_the_scalar_one() {
        fn check<L: Lanes>(level: Level) {
            if !level.available() {
                return;
            }
            let n = L::N;
            let m: Vec<f32> = (0..n * n).map(|i| i as f32).collect();
            // SAFETY: the test runs a level only where `available` says this CPU has it; the arrays
            // hold every lane read or written
            unsafe {
                let mut v: Vec<L> = (0..n).map(|i| L::load(m[i * n..].as_ptr())).collect();
                L::transpose(&mut v);
                for (j, x) in v.iter().enumerate() {
                    let mut out = [0f32; 16];
                    x.store(out.as_mut_ptr());
                    for i in 0..n {
                        assert_eq!(out[i], m[i * n + j], "{level:?} [{j}][{i}]");
                    }
                }
            }
        }
        check::<Portable>(Level::Portable);
        #[cfg(target_arch = "x86_64")]
        {
            check::<Avx2>(Level::Avx2);
            check::<Avx512>(Level::Avx512);
        }
        #[cfg(target_arch = "aarch64")]
        check::<Neon>(Level::Neon);
    }

    /// Every method of the level's vectors against the portable ones, lane by lane (the
    /// defaults the portable type uses are plain array code), with a NaN lane in `clamp` (the
    /// bound wins everywhere; `max` with a NaN differs between x86 and the others, and no
    /// kernel relies on it).
    #[test]
    // `max` then `min`, not `clamp`: a NaN lane must become the lower bound, as in the kernels
    #[allow(clippy::manual_clamp)]
    fn every_method_matches_the_portable_lanes() {
        fn lanes<L: Lanes>(v: L) -> Vec<f32> {
            let mut out = [0f32; 16];
            // SAFETY: the caller runs only available levels; `out` holds 16 floats, `N` at most
            unsafe { v.store(out.as_mut_ptr()) };
            out[..L::N].to_vec()
        }
        fn check<L: Lanes>(level: Level) {
            if !level.available() {
                return;
            }
            let n = L::N;
            let a: Vec<f32> = (0..2 * n + 8)
                .map(|i| (i as f32 * 0.37).sin() * 4.0)
                .collect();
            let mut b: Vec<f32> = (0..2 * n + 8)
                .map(|i| (i as f32 * 0.91).cos() * 3.0)
                .collect();
            b[1] = f32::NAN;
            // SAFETY: only available levels run; every pointer has `2N + 8` floats behind it
            unsafe {
                let (x, y) = (L::load(a.as_ptr()), L::load(b.as_ptr()));
                let (lo, hi) = (L::splat(-1.5), L::splat(2.0));
                let want = |f: &dyn Fn(usize) -> f32| (0..n).map(f).collect::<Vec<f32>>();
                let close = |got: Vec<f32>, want: Vec<f32>, what: &str| {
                    for (l, (g, w)) in got.iter().zip(&want).enumerate() {
                        // fused and unfused multiply-add differ in the last bit
                        let ok =
                            (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-6 * w.abs().max(1.0);
                        assert!(ok, "{level:?} {what} lane {l}: {g} vs {w}");
                    }
                };
                close(lanes(L::splat(0.25)), vec![0.25; n], "splat");
                close(
                    lanes(x.mul_add(y, lo)),
                    want(&|i| -1.5 + a[i] * b[i]),
                    "mul_add",
                );
                close(lanes(x.add(y)), want(&|i| a[i] + b[i]), "add");
                close(
                    lanes(y.clamp(lo, hi)),
                    want(&|i| b[i].max(-1.5).min(2.0)),
                    "clamp",
                );
                let x2 = L::load(a.as_ptr().add(n));
                close(lanes(x.max(x2)), want(&|i| a[i].max(a[i + n])), "max");
                close(lanes(L::even(x, x2)), want(&|i| a[2 * i]), "even");
                close(lanes(L::odd(x, x2)), want(&|i| a[2 * i + 1]), "odd");
                close(
                    lanes(L::shifted::<1>(a.as_ptr(), x, x2)),
                    want(&|i| a[i + 1]),
                    "shifted 1",
                );
                close(
                    lanes(L::shifted::<3>(a.as_ptr(), x, x2)),
                    want(&|i| a[i + 3]),
                    "shifted 3",
                );
                for m in 0..n {
                    close(
                        lanes(L::load_first(a.as_ptr(), m)),
                        want(&|i| if i < m { a[i] } else { 0.0 }),
                        "load_first",
                    );
                    let r = L::load_range(a.as_ptr(), 1.min(m), m, 9.0);
                    close(
                        lanes(r),
                        want(&|i| if i >= 1.min(m) && i < m { a[i] } else { 9.0 }),
                        "load_range",
                    );
                    let mut out = vec![7f32; n];
                    x.store_first(out.as_mut_ptr(), m);
                    close(
                        out,
                        want(&|i| if i < m { a[i] } else { 7.0 }),
                        "store_first",
                    );
                }
            }
        }
        check::<Portable>(Level::Portable);
        #[cfg(target_arch = "x86_64")]
        {
            check::<Avx2>(Level::Avx2);
            check::<Avx512>(Level::Avx512);
        }
        #[cfg(target_arch = "aarch64")]
        check::<Neon>(Level::Neon);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Kernel, Lanes};
    use std::arch::x86_64::*;

    /// `kernel` compiled with AVX-512F.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the kernel's own preconditions hold.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn with_avx512<K: Kernel>(kernel: K) -> K::Output {
        // SAFETY: this function's contract is the kernel's, with AVX-512F present
        unsafe { kernel.run::<Avx512>() }
    }

    /// `kernel` compiled with AVX2 and FMA.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; the kernel's own preconditions hold.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn with_avx2<K: Kernel>(kernel: K) -> K::Output {
        // SAFETY: this function's contract is the kernel's, with AVX2 and FMA present
        unsafe { kernel.run::<Avx2>() }
    }

    #[derive(Clone, Copy)]
    pub struct Avx512(__m512);

    impl Avx512 {
        #[inline(always)]
        fn mask(n: usize) -> __mmask16 {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    impl Lanes for Avx512 {
        const N: usize = 16;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx512(_mm512_set1_ps(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx512(_mm512_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, w: Self, acc: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx512(_mm512_fmadd_ps(self.0, w.0, acc.0)) }
        }
        #[inline(always)]
        unsafe fn add(self, other: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx512(_mm512_add_ps(self.0, other.0)) }
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx512(_mm512_min_ps(_mm512_max_ps(self.0, lo.0), hi.0)) }
        }
        #[inline(always)]
        unsafe fn max(self, other: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx512(_mm512_max_ps(self.0, other.0)) }
        }
        #[inline(always)]
        unsafe fn store_first(self, p: *mut f32, n: usize) {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { _mm512_mask_storeu_ps(p, Self::mask(n), self.0) }
        }
        #[inline(always)]
        unsafe fn load_first(p: *const f32, n: usize) -> Self {
            // masked-off lanes are not read (no fault past the end)
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx512(_mm512_maskz_loadu_ps(Self::mask(n), p)) }
        }
        #[inline(always)]
        unsafe fn load_range(p: *const f32, lo: usize, hi: usize, fill: f32) -> Self {
            let mask = (Self::mask(hi) & !Self::mask(lo)) as __mmask16;
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx512(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), mask, p)) }
        }
        #[inline(always)]
        unsafe fn even(a: Self, b: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe {
                let idx =
                    _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                Avx512(_mm512_permutex2var_ps(a.0, idx, b.0))
            }
        }
        #[inline(always)]
        unsafe fn odd(a: Self, b: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe {
                let idx =
                    _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
                Avx512(_mm512_permutex2var_ps(a.0, idx, b.0))
            }
        }
        #[inline(always)]
        unsafe fn transpose(v: &mut [Self]) {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe {
                debug_assert!(v.len() == 16);
                let r: [__m512; 16] = std::array::from_fn(|i| v[i].0);
                // pairs of rows interleaved, then pairs of pairs, then 128-bit blocks twice
                let t: [__m512; 16] = std::array::from_fn(|i| {
                    let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
                    if i % 2 == 0 {
                        _mm512_unpacklo_ps(a, b)
                    } else {
                        _mm512_unpackhi_ps(a, b)
                    }
                });
                let u: [__m512; 16] = std::array::from_fn(|i| {
                    let q = i / 4 * 4;
                    let (a, b) = match i % 4 {
                        0 | 1 => (t[q], t[q + 2]),
                        _ => (t[q + 1], t[q + 3]),
                    };
                    if i % 2 == 0 {
                        _mm512_shuffle_ps::<0x44>(a, b)
                    } else {
                        _mm512_shuffle_ps::<0xEE>(a, b)
                    }
                });
                let w: [__m512; 16] = std::array::from_fn(|i| {
                    let h = i / 8 * 8;
                    let (a, b) = (u[h + i % 4], u[h + i % 4 + 4]);
                    if i % 8 < 4 {
                        _mm512_shuffle_f32x4::<0x88>(a, b)
                    } else {
                        _mm512_shuffle_f32x4::<0xDD>(a, b)
                    }
                });
                for (i, x) in v.iter_mut().enumerate() {
                    let (a, b) = (w[i % 8], w[i % 8 + 8]);
                    x.0 = if i < 8 {
                        _mm512_shuffle_f32x4::<0x88>(a, b)
                    } else {
                        _mm512_shuffle_f32x4::<0xDD>(a, b)
                    };
                }
            }
        }
        #[inline(always)]
        unsafe fn shifted<const K: usize>(_p: *const f32, a: Self, b: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe {
                let (a, b) = (_mm512_castps_si512(a.0), _mm512_castps_si512(b.0));
                let v = match K {
                    0 => a,
                    1 => _mm512_alignr_epi32::<1>(b, a),
                    2 => _mm512_alignr_epi32::<2>(b, a),
                    3 => _mm512_alignr_epi32::<3>(b, a),
                    4 => _mm512_alignr_epi32::<4>(b, a),
                    5 => _mm512_alignr_epi32::<5>(b, a),
                    _ => _mm512_alignr_epi32::<6>(b, a),
                };
                Avx512(_mm512_castsi512_ps(v))
            }
        }
    }

    #[derive(Clone, Copy)]
    pub struct Avx2(__m256);

    impl Avx2 {
        /// The first `n` lanes set, for `vmaskmovps` (which reads and writes no masked lane).
        ///
        /// # Safety
        /// `n <= 8`, and the CPU has AVX.
        #[inline(always)]
        unsafe fn mask(n: usize) -> __m256i {
            const M: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
            // SAFETY: with `n <= 8` the eight lanes read from `8 - n` lie inside `M`'s 16; AVX
            // is the caller's contract
            unsafe { _mm256_loadu_si256(M.as_ptr().add(8 - n) as *const __m256i) }
        }
    }

    impl Lanes for Avx2 {
        const N: usize = 8;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx2(_mm256_set1_ps(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx2(_mm256_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, w: Self, acc: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx2(_mm256_fmadd_ps(self.0, w.0, acc.0)) }
        }
        #[inline(always)]
        unsafe fn add(self, other: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx2(_mm256_add_ps(self.0, other.0)) }
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx2(_mm256_min_ps(_mm256_max_ps(self.0, lo.0), hi.0)) }
        }
        #[inline(always)]
        unsafe fn max(self, other: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx2(_mm256_max_ps(self.0, other.0)) }
        }
        #[inline(always)]
        unsafe fn store_first(self, p: *mut f32, n: usize) {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { _mm256_maskstore_ps(p, Self::mask(n), self.0) }
        }
        #[inline(always)]
        unsafe fn load_first(p: *const f32, n: usize) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { Avx2(_mm256_maskload_ps(p, Self::mask(n))) }
        }
        #[inline(always)]
        unsafe fn load_range(p: *const f32, lo: usize, hi: usize, fill: f32) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe {
                let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let m = _mm256_and_si256(
                    _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(lo as i32 - 1)),
                    _mm256_cmpgt_epi32(_mm256_set1_epi32(hi as i32), idx),
                );
                let v = _mm256_maskload_ps(p, m);
                Avx2(_mm256_blendv_ps(
                    _mm256_set1_ps(fill),
                    v,
                    _mm256_castsi256_ps(m),
                ))
            }
        }
        #[inline(always)]
        unsafe fn even(a: Self, b: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe {
                // a0 a2 b0 b2 | a4 a6 b4 b6 -> a0 a2 a4 a6 b0 b2 b4 b6
                let s = _mm256_shuffle_ps::<0x88>(a.0, b.0);
                Avx2(_mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(
                    _mm256_castps_pd(s),
                )))
            }
        }
        #[inline(always)]
        unsafe fn odd(a: Self, b: Self) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe {
                let s = _mm256_shuffle_ps::<0xDD>(a.0, b.0);
                Avx2(_mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(
                    _mm256_castps_pd(s),
                )))
            }
        }
    }
}

#[cfg(all(target_family = "wasm", target_feature = "simd128"))]
pub use wasm::V128;

#[cfg(all(target_family = "wasm", target_feature = "simd128"))]
mod wasm {
    use super::Lanes;
    use std::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct V128(v128);

    impl Lanes for V128 {
        const N: usize = 4;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            V128(f32x4_splat(x))
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { V128(v128_load(p as *const v128)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the method's contract: the CPU has this type's instruction set (which
            // `dispatch` ensures) and every pointer is valid for the lanes it touches (the
            // temporaries hold 16 floats, `N` at most)
            unsafe { v128_store(p as *mut v128, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, w: Self, acc: Self) -> Self {
            V128(f32x4_add(acc.0, f32x4_mul(self.0, w.0)))
        }
        #[inline(always)]
        unsafe fn add(self, other: Self) -> Self {
            V128(f32x4_add(self.0, other.0))
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            V128(f32x4_pmin(hi.0, f32x4_pmax(lo.0, self.0)))
        }
        #[inline(always)]
        unsafe fn max(self, other: Self) -> Self {
            V128(f32x4_max(self.0, other.0))
        }
        #[inline(always)]
        unsafe fn even(a: Self, b: Self) -> Self {
            V128(i32x4_shuffle::<0, 2, 4, 6>(a.0, b.0))
        }
        #[inline(always)]
        unsafe fn odd(a: Self, b: Self) -> Self {
            V128(i32x4_shuffle::<1, 3, 5, 7>(a.0, b.0))
        }
    }
}

#[cfg(target_arch = "aarch64")]
pub use neon::Neon;

#[cfg(target_arch = "aarch64")]
mod neon {
    use super::Lanes;
    use std::arch::aarch64::*;

    /// Four floats in one NEON register. NEON is mandatory in AArch64, so every method is
    /// safe to run on any aarch64 CPU; they stay `unsafe` for the pointers.
    #[derive(Clone, Copy)]
    pub struct Neon(float32x4_t);

    impl Lanes for Neon {
        const N: usize = 4;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: NEON is part of every AArch64 CPU
            unsafe { Neon(vdupq_n_f32(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: NEON is baseline; the caller guarantees `p..p + 4` readable (no alignment
            // needed)
            unsafe { Neon(vld1q_f32(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: NEON is baseline; the caller guarantees `p..p + 4` writable
            unsafe { vst1q_f32(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, w: Self, acc: Self) -> Self {
            // SAFETY: NEON is baseline (fused, as AVX2's FMA)
            unsafe { Neon(vfmaq_f32(acc.0, self.0, w.0)) }
        }
        #[inline(always)]
        unsafe fn add(self, other: Self) -> Self {
            // SAFETY: NEON is baseline
            unsafe { Neon(vaddq_f32(self.0, other.0)) }
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            // the IEEE maxNum/minNum forms: a NaN lane becomes `lo`, as `f32::max` then `min`
            // in the portable lanes and x86's max/min with the bound second
            // SAFETY: NEON is baseline
            unsafe { Neon(vminnmq_f32(vmaxnmq_f32(self.0, lo.0), hi.0)) }
        }
        #[inline(always)]
        unsafe fn max(self, other: Self) -> Self {
            // SAFETY: NEON is baseline
            unsafe { Neon(vmaxnmq_f32(self.0, other.0)) }
        }
        #[inline(always)]
        unsafe fn even(a: Self, b: Self) -> Self {
            // SAFETY: NEON is baseline
            unsafe { Neon(vuzp1q_f32(a.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn odd(a: Self, b: Self) -> Self {
            // SAFETY: NEON is baseline
            unsafe { Neon(vuzp2q_f32(a.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn shifted<const K: usize>(p: *const f32, a: Self, b: Self) -> Self {
            // SAFETY: NEON is baseline; `ext` reads only the registers, and the fallback (for a
            // `K` past the vector, which the trait rules out) the caller's `p..p + K + 4`
            unsafe {
                match K {
                    0 => a,
                    1 => Neon(vextq_f32::<1>(a.0, b.0)),
                    2 => Neon(vextq_f32::<2>(a.0, b.0)),
                    3 => Neon(vextq_f32::<3>(a.0, b.0)),
                    _ => Self::load(p.add(K)),
                }
            }
        }
        #[inline(always)]
        unsafe fn transpose(v: &mut [Self]) {
            debug_assert!(v.len() == 4);
            // SAFETY: NEON is baseline; the caller guarantees four vectors
            unsafe {
                // rows a b c d: trn1/trn2 pair lanes (a0 b0 a2 b2, a1 b1 a3 b3, ..), then the
                // 64-bit halves of those pairs give the columns
                let t0 = vtrn1q_f32(v[0].0, v[1].0);
                let t1 = vtrn2q_f32(v[0].0, v[1].0);
                let t2 = vtrn1q_f32(v[2].0, v[3].0);
                let t3 = vtrn2q_f32(v[2].0, v[3].0);
                let d = |x: float32x4_t| vreinterpretq_f64_f32(x);
                v[0].0 = vreinterpretq_f32_f64(vtrn1q_f64(d(t0), d(t2)));
                v[1].0 = vreinterpretq_f32_f64(vtrn1q_f64(d(t1), d(t3)));
                v[2].0 = vreinterpretq_f32_f64(vtrn2q_f64(d(t0), d(t2)));
                v[3].0 = vreinterpretq_f32_f64(vtrn2q_f64(d(t1), d(t3)));
            }
        }
    }
}
