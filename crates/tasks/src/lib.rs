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
pub mod segmentation;
pub mod visualize;

pub use classification::{classify, ClassifySettings};
pub use detection::{Detection, Detector};
pub use error::{Error, Result};
pub use segmentation::{segment, SegmentSettings, Segmentation};
