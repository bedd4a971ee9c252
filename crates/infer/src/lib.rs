//! # tensorcv-infer
//!
//! Load a TensorFlow model exported to ONNX (tf2onnx, or TFLite through tf2onnx), learn what it
//! expects, and run it on images with the same numbers TensorFlow gives. Built on `tract-onnx`;
//! preprocessing is `tensorcv-imgproc`'s fused [`Preprocessor`](tensorcv_imgproc::tensor::Preprocessor).
//!
//! ```no_run
//! use tensorcv_infer::Model;
//! use tensorcv_imgproc::io::{imread, DecodeOptions};
//! let model = Model::load("models/emotion.onnx")?;            // + models/emotion.toml
//! for input in &model.info().inputs { println!("input  {input}"); }
//! for output in &model.info().outputs { println!("output {output}"); }
//! let mut session = model.session()?;                          // one per thread
//! let photo = imread("face.jpg", &DecodeOptions::default())?;
//! let (outputs, _transform) = session.run(&photo.view())?;
//! let scores = outputs.get("predictions")?;                     // an ndarray
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! While a model is optimized, [`rewrite`] puts tensorcv's own operators ([`ops`]: depthwise,
//! 1×1 and dense convolutions, fused inverted residual blocks, max pooling, resize, channel
//! moves and per-channel scaling, running the kernels of `tensorcv-kernels`) in place of
//! tract's; `LoadOptions::tract_only` leaves tract's own.
//!
//! The crate's modules: [`model`] (loading in stages, sessions, profiling), [`card`] (model
//! cards), [`ops`] and [`rewrite`] (tensorcv's operators and the graph rewrites that put them
//! in), [`memory`] (the allocation budget), [`npy`] (reference arrays for tests and tools).

mod bounded;
pub mod card;
mod error;
pub mod memory;
pub mod model;
pub mod npy;
pub mod ops;
pub mod rewrite;
mod tflite;

pub use card::{read_text_file, ModelCard, Task, MAX_CARD_BYTES};
pub use error::{panic_message, panic_report, Error, Result};
pub use model::{
    available_threads, read_model_file, CardSource, Dim, Format, LoadOptions, Model, ModelFile,
    ModelInfo, OpTime, Outputs, RunTimes, Session, TensorInfo, MAX_INPUT_ELEMENTS, MAX_MODEL_BYTES,
};
/// The `ndarray` version outputs are given in.
pub use tract_onnx::prelude::tract_ndarray as ndarray;

/// The instruction set tensorcv's kernels run with on this machine, chosen at run time
/// (`TENSORCV_NO_SIMD` set: `portable`).
pub fn simd_level() -> &'static str {
    tensorcv_kernels::isa::Level::best().name()
}
