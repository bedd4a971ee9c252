//! The one place where the crate chooses CPU features at run time.
//!
//! [`multiversion!`] compiles a plain, portable kernel twice: as written, and with AVX2 enabled
//! so the compiler can vectorise it with 256-bit instructions. A safe wrapper picks the AVX2
//! copy when the CPU has it (checked once and cached by `std`), else the portable one. The
//! bodies are identical Rust, so results are identical; CI checks it by running the parity and
//! property tests (which compare with OpenCV's exact outputs) a second time with
//! `TENSORCV_NO_SIMD=1`. On other architectures, and in WASM, only the portable copy exists.
//! Where the compiler's AVX2 code is poor (gathers, byte deinterleaving), the macro's `avx2:`
//! form puts a hand-written `#[target_feature(enable = "avx2")]` kernel (`resize/avx2.rs`,
//! `color/avx2.rs`) in the AVX2 slot; those are tested against the portable loops directly.

/// Whether the AVX2 copies may run (false when `TENSORCV_NO_SIMD` is set, for tests and
/// comparisons).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn use_avx2() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::is_x86_feature_detected!("avx2") && std::env::var_os("TENSORCV_NO_SIMD").is_none()
    })
}

/// The instruction set the pixel kernels run with: `avx2` where the x86-64 CPU has it (chosen
/// at run time), else the build target's baseline, which the compiler vectorises for (`neon`
/// on aarch64, `simd128` in WASM built with it, `sse2` on x86-64 without AVX2).
pub fn level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if use_avx2() {
            "avx2"
        } else {
            "sse2"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon"
    }
    #[cfg(all(target_family = "wasm", target_feature = "simd128"))]
    {
        "simd128"
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        all(target_family = "wasm", target_feature = "simd128")
    )))]
    {
        "portable"
    }
}

/// Define `pub(crate) fn $name(args)` from one body, compiled portable and with AVX2.
///
/// With a trailing `avx2: path`, the AVX2 copy is that function instead: a hand-written
/// `#[target_feature(enable = "avx2")]` kernel with the same signature and the same results
/// (for loops the compiler does not vectorise well, such as gathers), which may call the
/// portable body's helpers for the cases it does not specialise.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        fn $name:ident $(<$(const $cg:ident: $ct:ty),+>)? ($($arg:ident: $ty:ty),* $(,)?) $body:block
        avx2: $($avx2:ident)::+
    ) => {
        $(#[$meta])*
        #[inline]
        pub(crate) fn $name $(<$(const $cg: $ct),+>)? ($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                if $crate::simd::use_avx2() {
                    // SAFETY: `use_avx2` checked that this CPU supports AVX2.
                    #[allow(unsafe_code)]
                    unsafe {
                        return $($avx2)::+ $(::<$($cg),+>)? ($($arg),*);
                    }
                }
            }
            $body
        }
    };
    (
        $(#[$meta:meta])*
        fn $name:ident $(<$(const $cg:ident: $ct:ty),+>)? ($($arg:ident: $ty:ty),* $(,)?) $body:block
    ) => {
        $(#[$meta])*
        #[inline]
        pub(crate) fn $name $(<$(const $cg: $ct),+>)? ($($arg: $ty),*) {
            #[inline(always)]
            fn portable $(<$(const $cg: $ct),+>)? ($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2 $(<$(const $cg: $ct),+>)? ($($arg: $ty),*) {
                    portable $(::<$($cg),+>)? ($($arg),*)
                }
                if $crate::simd::use_avx2() {
                    // SAFETY: `use_avx2` checked that this CPU supports AVX2.
                    #[allow(unsafe_code)]
                    unsafe {
                        return avx2 $(::<$($cg),+>)? ($($arg),*);
                    }
                }
            }
            portable $(::<$($cg),+>)? ($($arg),*)
        }
    };
}
pub(crate) use multiversion;
