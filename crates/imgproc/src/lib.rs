//! # tensorcv-imgproc
//!
//! The pixel layer of tensorcv: everything between an encoded image (or a camera frame) and a
//! model's input tensor, with the numbers OpenCV gives, in pure Rust.
//!
//! | module | does | OpenCV analogue |
//! |---|---|---|
//! | [`image`] | [`Image`], [`ImageView`], [`ImageViewMut`], [`PixelFormat`] | `np.ndarray` of `uint8` |
//! | [`io`] | decode with limits and EXIF orientation (JPEG also reduced 1/2–1/8), encode | `cv2.imread` (`IMREAD_REDUCED_*`), `cv2.imwrite` |
//! | [`color`] | BGR/RGB/RGBA/gray, camera YUV | `cv2.cvtColor` |
//! | [`resize`] | six interpolations, OpenCV-exact | `cv2.resize` |
//! | [`filter`] | Gaussian blur, bit-exact in 8 bits | `cv2.GaussianBlur` |
//! | [`geometry`] | crop, center crop, letterbox with its inverse transform, flips | slicing, `cv2.copyMakeBorder`, `cv2.flip` |
//! | [`warp`] | affine warps (rotated crops) and their inverse, bit-exact | `cv2.warpAffine`, `cv2.getRotationMatrix2D`, `cv2.invertAffineTransform` |
//! | [`tensor`] | image(s) → NHWC/NCHW `f32`/`u8`/`i8` tensor, fused in one pass | `astype`, `/255`, `transpose`, `expand_dims` |
//! | [`draw`] | boxes, circles, lines, text labels, mask blending | `cv2.rectangle`, `cv2.putText`, `cv2.addWeighted` |
//!
//! ```
//! use tensorcv_imgproc::{tensor::{Preprocessor, TensorSpec}, Image, PixelFormat};
//! // a camera frame in OpenCV's BGR order
//! let frame = Image::new(640, 480, PixelFormat::Bgr8).unwrap();
//! // what a Keras MobileNet wants: 224x224 RGB in [-1, 1], NHWC
//! let spec = TensorSpec::new(224, 224).with_range(tensorcv_imgproc::tensor::Range::Symmetric);
//! let mut pre = Preprocessor::new(spec);
//! let mut tensor = pre.spec().alloc(1);
//! pre.run(&frame.view(), &mut tensor, 0).unwrap();
//! assert_eq!(tensor.shape(), [1, 224, 224, 3]);
//! ```
//!
//! Threads are used only when asked for ([`parallel`]: color conversion and resizing split
//! into bands of rows; none in WASM), and file access is confined to [`io::imread`] and
//! [`io::imwrite`], so the crate builds for `wasm32-unknown-unknown` and `wasm32-wasip1`.

// `unsafe` appears only in `simd::multiversion!`, to call a kernel's AVX2 copy after checking
// the CPU (and in the tests that call those copies directly); everything else is safe code.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod color;
pub mod draw;
mod error;
pub mod filter;
pub mod geometry;
pub mod image;
pub mod io;
mod names;
pub mod parallel;
pub mod resize;
mod simd;
pub mod tensor;
pub mod warp;

pub use error::{panic_message, panic_report, Error, Result};
pub use image::{Image, ImageView, ImageViewMut, PixelFormat, Rect};
pub use resize::Interpolation;
pub use simd::level as simd_level;
