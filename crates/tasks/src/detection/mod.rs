//! Detection: raw box and score tensors → boxes (and keypoints) in source-image pixels.
//!
//! The decoder is chosen by the card's `[detection] decoder`; `ssd` decodes anchor-relative
//! boxes as MediaPipe's `TensorsToDetectionsCalculator` does, with anchors from
//! `[detection.anchors]` (MediaPipe's `SsdAnchorsCalculator`).

pub mod anchors;
pub mod nms;

use crate::classification::sigmoid;
use crate::error::{settings, Error, Result};
use anchors::{Anchor, AnchorOptions};
use nms::NmsKind;
use serde::Deserialize;
use tensorcv_imgproc::geometry::Transform;
use tensorcv_infer::ndarray::ArrayViewD;
use tensorcv_infer::{ModelCard, Outputs};

/// One detected object.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]`: source-image pixels once [`Detector::detect`] returns
    pub bbox: [f32; 4],
    /// confidence in 0..1
    pub score: f32,
    /// class index
    pub class: usize,
    /// the card's label for the class
    pub label: Option<String>,
    /// keypoints `[x, y]`, same coordinates as the box
    pub keypoints: Vec<[f32; 2]>,
}

/// How boxes are encoded in the model's outputs.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    /// anchor-relative centers and sizes plus keypoints (SSD, BlazeFace, MediaPipe detectors)
    #[default]
    Ssd,
}

/// `[detection]` of the model card.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DetectSettings {
    /// how boxes are encoded
    #[serde(default)]
    pub decoder: Decoder,
    /// the output holding the boxes, `[1, boxes, coords]`
    pub boxes: String,
    /// the output holding the class scores, `[1, boxes, classes]`
    pub scores: String,
    /// values per box in `boxes` (4 + keypoints × values per keypoint)
    pub num_coords: usize,
    /// where the box starts in a row
    #[serde(default)]
    pub box_coord_offset: usize,
    /// where the keypoints start in a row
    #[serde(default = "four")]
    pub keypoint_coord_offset: usize,
    /// keypoints per box
    #[serde(default)]
    pub num_keypoints: usize,
    /// values per keypoint (the first two are x, y)
    #[serde(default = "two")]
    pub values_per_keypoint: usize,
    /// rows hold x, y, w, h (true) or y, x, h, w (false)
    #[serde(default)]
    pub reverse_output_order: bool,
    /// divisors `[x, y, w, h]` of the raw values
    #[serde(default = "unit")]
    pub scale: [f32; 4],
    /// sizes are log-encoded: `exp(h / h_scale) * anchor.h`
    #[serde(default)]
    pub apply_exponential_on_box_size: bool,
    /// scores are logits
    #[serde(default)]
    pub sigmoid_score: bool,
    /// logits are clamped to ±this before the sigmoid (0: no clamp)
    #[serde(default)]
    pub score_clipping: f32,
    /// drop boxes scoring below this
    #[serde(default = "half")]
    pub min_score: f32,
    /// class indices never reported
    #[serde(default)]
    pub ignore_classes: Vec<usize>,
    /// how overlaps are merged
    #[serde(default)]
    pub nms: NmsKind,
    /// overlap (IoU) above which boxes are merged
    #[serde(default = "half")]
    pub iou_threshold: f32,
    /// suppress across classes
    #[serde(default)]
    pub class_agnostic: bool,
    /// keep at most this many
    #[serde(default = "hundred")]
    pub max_detections: usize,
    /// anchors, for the `ssd` decoder
    pub anchors: Option<AnchorOptions>,
}

fn four() -> usize {
    4
}
fn two() -> usize {
    2
}
fn unit() -> [f32; 4] {
    [1.0; 4]
}
fn half() -> f32 {
    0.5
}
fn hundred() -> usize {
    100
}

impl DetectSettings {
    /// The card's `[detection]` table.
    pub fn from_card(card: &ModelCard) -> Result<Self> {
        if card.detection.is_none() {
            return Err(Error::Card {
                section: "detection",
                message: "the card has no [detection] table: which outputs hold boxes and \
                          scores?"
                    .into(),
            });
        }
        settings("detection", card.detection.as_ref())
    }
}

/// A detection post-processor for one model input size: settings and anchors, made once.
#[derive(Clone, Debug)]
pub struct Detector {
    settings: DetectSettings,
    anchors: Vec<Anchor>,
    labels: Vec<String>,
    width: usize,
    height: usize,
}

impl Detector {
    /// For a model whose input is `width`×`height` pixels.
    pub fn new(
        settings: DetectSettings,
        labels: Vec<String>,
        width: usize,
        height: usize,
    ) -> Result<Self> {
        let bad = |message: String| Error::Card {
            section: "detection",
            message,
        };
        let anchors = match (&settings.decoder, &settings.anchors) {
            (Decoder::Ssd, Some(a)) => a.generate(width, height)?,
            (Decoder::Ssd, None) => {
                return Err(bad("the ssd decoder needs [detection.anchors]".into()))
            }
        };
        let s = &settings;
        if s.box_coord_offset + 4 > s.num_coords
            || (s.num_keypoints > 0
                && s.keypoint_coord_offset + s.num_keypoints * s.values_per_keypoint > s.num_coords)
            || (s.num_keypoints > 0 && s.values_per_keypoint < 2)
        {
            return Err(bad(format!(
                "num_coords {} cannot hold a box at {} and {} keypoints of {} values at {}",
                s.num_coords,
                s.box_coord_offset,
                s.num_keypoints,
                s.values_per_keypoint,
                s.keypoint_coord_offset
            )));
        }
        if s.scale.iter().any(|&v| v == 0.0 || !v.is_finite()) {
            return Err(bad("scale values must be finite and non-zero".into()));
        }
        Ok(Detector {
            settings,
            anchors,
            labels,
            width,
            height,
        })
    }

    /// From a loaded model: its card's settings and labels, its input size.
    pub fn for_model(model: &tensorcv_infer::Model) -> Result<Self> {
        let spec = model.input_spec();
        Detector::new(
            DetectSettings::from_card(model.card())?,
            model.card().labels.clone(),
            spec.width,
            spec.height,
        )
    }

    /// The settings in effect.
    pub fn settings(&self) -> &DetectSettings {
        &self.settings
    }

    /// The anchors (normalized to the model input).
    pub fn anchors(&self) -> &[Anchor] {
        &self.anchors
    }

    /// Detections of one image from the model's outputs, mapped to source pixels through
    /// `transform` (the one [`tensorcv_infer::Session::run`] returns).
    pub fn detect(&self, outputs: &Outputs, transform: &Transform) -> Result<Vec<Detection>> {
        let boxes = outputs.get(&self.settings.boxes)?;
        let scores = outputs.get(&self.settings.scores)?;
        self.detect_raw(&boxes.view(), &scores.view(), transform)
    }

    /// Detections from the raw box and score arrays.
    pub fn detect_raw(
        &self,
        boxes: &ArrayViewD<'_, f32>,
        scores: &ArrayViewD<'_, f32>,
        transform: &Transform,
    ) -> Result<Vec<Detection>> {
        let s = &self.settings;
        let n = self.anchors.len();
        let rows = |a: &ArrayViewD<'_, f32>, name: &str, per: Option<usize>| {
            let shape = a.shape();
            let ok = shape.len() >= 2
                && shape[..shape.len() - 2].iter().all(|&d| d == 1)
                && shape[shape.len() - 2] == n
                && per.map_or(true, |p| shape[shape.len() - 1] == p);
            if ok {
                Ok(shape[shape.len() - 1])
            } else {
                Err(Error::Output {
                    output: name.to_string(),
                    message: format!(
                        "expected [1, {n}, {}] ({n} anchors), found {shape:?}",
                        per.map_or("classes".into(), |p| p.to_string())
                    ),
                })
            }
        };
        rows(boxes, &s.boxes, Some(s.num_coords))?;
        let classes = rows(scores, &s.scores, None)?;
        let boxes: Vec<f32> = boxes.iter().copied().collect();
        let scores: Vec<f32> = scores.iter().copied().collect();
        let mut found = Vec::new();
        for (i, anchor) in self.anchors.iter().enumerate() {
            // the best class of this box
            let mut best: Option<(usize, f32)> = None;
            for c in (0..classes).filter(|c| !s.ignore_classes.contains(c)) {
                let mut v = scores[i * classes + c];
                if s.score_clipping > 0.0 {
                    v = v.clamp(-s.score_clipping, s.score_clipping);
                }
                if s.sigmoid_score {
                    v = sigmoid(v);
                }
                if best.map_or(true, |(_, b)| v > b) {
                    best = Some((c, v));
                }
            }
            let Some((class, score)) = best.filter(|&(_, v)| v >= s.min_score) else {
                continue;
            };
            let row = &boxes[i * s.num_coords..(i + 1) * s.num_coords];
            found.push(Detection {
                bbox: self.decode_box(&row[s.box_coord_offset..], anchor),
                score,
                class,
                label: self.labels.get(class).cloned(),
                keypoints: (0..s.num_keypoints)
                    .map(|k| {
                        let o = s.keypoint_coord_offset + k * s.values_per_keypoint;
                        let (x, y) = if s.reverse_output_order {
                            (row[o], row[o + 1])
                        } else {
                            (row[o + 1], row[o])
                        };
                        [
                            x / s.scale[0] * anchor.w + anchor.x,
                            y / s.scale[1] * anchor.h + anchor.y,
                        ]
                    })
                    .collect(),
            });
        }
        let mut kept = nms::nms(
            found,
            s.nms,
            s.iou_threshold,
            s.class_agnostic,
            s.max_detections,
        );
        // normalized model-input coordinates → model-input pixels → source pixels
        let (w, h) = (self.width as f64, self.height as f64);
        for d in &mut kept {
            let b = transform.box_to_source([
                d.bbox[0] as f64 * w,
                d.bbox[1] as f64 * h,
                d.bbox[2] as f64 * w,
                d.bbox[3] as f64 * h,
            ]);
            d.bbox = b.map(|v| v as f32);
            for k in &mut d.keypoints {
                let (x, y) = transform.to_source(k[0] as f64 * w, k[1] as f64 * h);
                *k = [x as f32, y as f32];
            }
        }
        Ok(kept)
    }

    /// One anchor-relative box → `[x1, y1, x2, y2]` normalized to the model input.
    fn decode_box(&self, v: &[f32], a: &Anchor) -> [f32; 4] {
        let s = &self.settings;
        let (x, y, w, h) = if s.reverse_output_order {
            (v[0], v[1], v[2], v[3])
        } else {
            (v[1], v[0], v[3], v[2])
        };
        let xc = x / s.scale[0] * a.w + a.x;
        let yc = y / s.scale[1] * a.h + a.y;
        let (w, h) = if s.apply_exponential_on_box_size {
            ((w / s.scale[2]).exp() * a.w, (h / s.scale[3]).exp() * a.h)
        } else {
            (w / s.scale[2] * a.w, h / s.scale[3] * a.h)
        };
        [xc - w / 2.0, yc - h / 2.0, xc + w / 2.0, yc + h / 2.0]
    }
}
