//! What vision models' outputs mean: class scores become labelled classes, box tensors become
//! boxes and keypoints in source-image pixels. Settings come from the model card's task tables
//! (`[classification]`, `[detection]`, `[segmentation]`), so no model name appears in code.
//!
//! ```no_run
//! use tensorcv_imgproc::io::{imread, DecodeOptions};
//! use tensorcv_infer::Model;
//! use tensorcv_tasks::detection::Detector;
//!
//! let model = Model::load("models/face_detection_short_range.onnx")?;
//! let detector = Detector::for_model(&model)?;
//! let photo = imread("tests/data/imgproc/astronaut.png", &DecodeOptions::default())?;
//! let (outputs, transform) = model.session()?.run(&photo.view())?;
//! for face in detector.detect(&outputs, &transform)? {
//!     println!("{:?} {:.2}", face.bbox, face.score); // source pixels
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod classification;
pub mod detection;
mod error;
pub mod landmarks;
pub mod pipeline;
pub mod record;
pub mod segmentation;
pub mod visualize;

pub use classification::{classify, ClassifySettings};
pub use detection::{Detection, Detector};
pub use error::{Error, Result};
pub use landmarks::{LandmarkSettings, Landmarks, RotatedRect};
pub use pipeline::{set_clock, Analysis, Outcome, Overrides, Pipeline, Postprocess};
pub use record::Record;
pub use segmentation::{segment, SegmentSettings, Segmentation};

/// An output's values in logical (C) order: borrowed when the array is contiguous, as engine
/// outputs are, so post-processing copies nothing per frame.
pub(crate) fn values<'a>(
    a: &'a tensorcv_infer::ndarray::ArrayViewD<'_, f32>,
) -> std::borrow::Cow<'a, [f32]> {
    match a.as_slice() {
        Some(s) => s.into(),
        None => a.iter().copied().collect::<Vec<f32>>().into(),
    }
}
