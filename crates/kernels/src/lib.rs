//! # tensorcv-kernels
//!
//! The numerics behind tensorcv's operators, with no model format and no tract: `f32`
//! matrix products with fused epilogues ([`gemm`]), depthwise convolution and max pooling
//! ([`depthwise`]), channel-axis transposes and per-channel scaling ([`channels`]), PReLU
//! ([`activation`]), the
//! instruction-set layer they are all written over ([`isa`]), and the thread team that splits
//! them ([`team`], [`parallel`]). `tensorcv-infer` wraps them as tract operators.
//!
//! Every kernel is written once over [`isa::Lanes`] and run through [`isa::dispatch`], which
//! picks AVX-512, AVX2 + FMA, WebAssembly SIMD128 or portable code at run time
//! (`TENSORCV_NO_SIMD=1`: portable). Unsafe code is confined to pointer arithmetic inside the
//! kernels; each block says why it is sound, and each unsafe function what its caller must
//! guarantee.
//!
//! ```
//! use tensorcv_kernels::gemm::{self, Epilogue, Kind, Mat, Packed};
//! use tensorcv_kernels::isa::Level;
//! // out[2 × 3] = w[2 × 2] · x[2 × 3] + bias
//! let w = Packed::new(Level::best(), Kind::Rows, &[1.0, 2.0, 3.0, 4.0], &[0.5, -0.5], 2, 2);
//! let x = [1.0f32, 0.0, 1.0, 0.0, 1.0, 1.0];
//! let mut out = [0f32; 6];
//! let (xm, om) = (Mat { ptr: x.as_ptr(), rs: 3, cs: 1 }, Mat { ptr: out.as_mut_ptr(), rs: 3, cs: 1 });
//! // SAFETY: `x` is 2 × 3 and `out` 2 × 3 through these strides
//! unsafe { gemm::run(&w, xm, &[0], om, &Epilogue::default(), 0..w.m_tiles(), 0..3) };
//! assert_eq!(out, [1.5, 2.5, 3.5, 2.5, 3.5, 6.5]);
//! ```

pub mod activation;
pub mod channels;
pub mod conv;
pub mod depthwise;
mod error;
pub mod gemm;
pub mod inverted_residual;
pub mod isa;
pub mod parallel;
pub mod pointwise;
pub mod resample;
#[cfg(not(target_family = "wasm"))]
pub mod team;

pub use error::SizeError;
pub use isa::Level;
