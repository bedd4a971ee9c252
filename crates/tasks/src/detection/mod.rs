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

impl Detection {
    /// Move the box and keypoints by `(dx, dy)` pixels (from a crop's coordinates to the
    /// image's).
    pub fn translate(&mut self, dx: f32, dy: f32) {
        for (i, v) in self.bbox.iter_mut().enumerate() {
            *v += if i % 2 == 0 { dx } else { dy };
        }
        for k in &mut self.keypoints {
            k[0] += dx;
            k[1] += dy;
        }
    }

    /// The region a second model should see for this detection: the box grown by `scale`
    /// around its center, made square (longer side) if `square`, padded by `pad` pixels, and
    /// clipped to a `width`×`height` image. `None` when nothing of it is inside the image.
    pub fn region(
        &self,
        scale: f32,
        square: bool,
        pad: f32,
        width: usize,
        height: usize,
    ) -> Option<tensorcv_imgproc::Rect> {
        let [x1, y1, x2, y2] = self.bbox;
        let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
        let (mut w, mut h) = ((x2 - x1) * scale, (y2 - y1) * scale);
        if square {
            w = w.max(h);
            h = w;
        }
        let (w, h) = (w + 2.0 * pad, h + 2.0 * pad);
        let left = (cx - w / 2.0).round().max(0.0) as usize;
        let top = (cy - h / 2.0).round().max(0.0) as usize;
        let right = ((cx + w / 2.0).round().max(0.0) as usize).min(width);
        let bottom = ((cy + h / 2.0).round().max(0.0) as usize).min(height);
        (right > left && bottom > top).then(|| tensorcv_imgproc::Rect {
            x: left,
            y: top,
            width: right - left,
            height: bottom - top,
        })
    }
}

/// How boxes are encoded in the model's outputs.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Decoder {
    /// anchor-relative centers and sizes plus keypoints (SSD, BlazeFace, MediaPipe detectors):
    /// `boxes` `[1, anchors, coords]`, `scores` `[1, anchors, classes]`
    #[default]
    Ssd,
    /// the TensorFlow Object Detection API's outputs: `boxes` `[1, N, 4]` as normalized
    /// `[ymin, xmin, ymax, xmax]`, `scores` `[1, N]`, `classes` `[1, N]`, optional
    /// `num_detections` `[1]`
    TfObjectDetection,
    /// YOLO rows in `boxes`: `[1, N, 4 + (objectness) + classes]` as `cx, cy, w, h` in
    /// model-input pixels (`transposed` for `[1, 4 + classes, N]`, as YOLOv8 exports)
    Yolo,
}

/// `[detection]` of the model card.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DetectSettings {
    /// how boxes are encoded
    #[serde(default)]
    pub decoder: Decoder,
    /// the output holding the boxes (YOLO: the rows)
    pub boxes: String,
    /// the output holding the scores (SSD, TF Object Detection)
    pub scores: Option<String>,
    /// the output holding class ids (TF Object Detection)
    pub classes: Option<String>,
    /// the output holding the number of valid rows (TF Object Detection)
    pub num_detections: Option<String>,
    /// added to class ids before labels are looked up (TF Object Detection ids are often
    /// 1-based)
    #[serde(default)]
    pub class_offset: i64,
    /// values per row in `boxes` (SSD; default: the box and keypoints)
    pub num_coords: Option<usize>,
    /// YOLO rows carry an objectness score before the class scores
    #[serde(default = "yes")]
    pub objectness: bool,
    /// YOLO output is `[1, values, N]` instead of `[1, N, values]`
    #[serde(default)]
    pub transposed: bool,
    /// YOLO coordinates are normalized to 0..1 instead of model-input pixels
    #[serde(default)]
    pub normalized: bool,
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

fn yes() -> bool {
    true
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
        let s = &settings;
        let need = |key: &str, v: &Option<String>| match v {
            Some(_) => Ok(()),
            None => Err(bad(format!("the {:?} decoder needs `{key}`", s.decoder))),
        };
        s.validate()?;
        let anchors = match s.decoder {
            Decoder::Ssd => {
                need("scores", &s.scores)?;
                let coords = s.ssd_coords();
                if s.box_coord_offset + 4 > coords
                    || (s.num_keypoints > 0
                        && (s.values_per_keypoint < 2
                            || s.keypoint_coord_offset + s.num_keypoints * s.values_per_keypoint
                                > coords))
                {
                    return Err(bad(format!(
                        "num_coords {coords} cannot hold a box at {} and {} keypoints of {} \
                         values at {}",
                        s.box_coord_offset,
                        s.num_keypoints,
                        s.values_per_keypoint,
                        s.keypoint_coord_offset
                    )));
                }
                match &s.anchors {
                    Some(a) => a.generate(width, height)?,
                    None => return Err(bad("the ssd decoder needs [detection.anchors]".into())),
                }
            }
            Decoder::TfObjectDetection => {
                need("scores", &s.scores)?;
                need("classes", &s.classes)?;
                Vec::new()
            }
            Decoder::Yolo => Vec::new(),
        };
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

    /// Change the thresholds a request may set (the anchors stay): the lowest score, the
    /// overlap merged, the most detections; `None` keeps the setting.
    pub fn adjust(
        &mut self,
        min_score: Option<f32>,
        iou_threshold: Option<f32>,
        max_detections: Option<usize>,
    ) {
        let s = &mut self.settings;
        s.min_score = min_score.unwrap_or(s.min_score);
        s.iou_threshold = iou_threshold.unwrap_or(s.iou_threshold);
        s.max_detections = max_detections.unwrap_or(s.max_detections);
    }

    /// The settings in effect.
    pub fn settings(&self) -> &DetectSettings {
        &self.settings
    }

    /// The class labels.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The anchors (normalized to the model input; empty for decoders without anchors).
    pub fn anchors(&self) -> &[Anchor] {
        &self.anchors
    }

    /// Detections of one image from the model's outputs, mapped to source pixels through
    /// `transform` (the one [`tensorcv_infer::Session::run`] returns).
    pub fn detect(&self, outputs: &Outputs, transform: &Transform) -> Result<Vec<Detection>> {
        self.detect_with(|name| Ok(outputs.get(name)?.view()), transform)
    }

    /// Detections from outputs looked up by name through `output` (raw arrays from any
    /// engine).
    pub fn detect_with<'a>(
        &self,
        output: impl Fn(&str) -> Result<ArrayViewD<'a, f32>>,
        transform: &Transform,
    ) -> Result<Vec<Detection>> {
        let s = &self.settings;
        let found = match s.decoder {
            Decoder::Ssd => self.decode_ssd(
                &output(&s.boxes)?,
                &output(s.scores.as_deref().unwrap_or_default())?,
            )?,
            Decoder::TfObjectDetection => {
                let num = match &s.num_detections {
                    Some(name) => Some(output(name)?),
                    None => None,
                };
                self.decode_tf_od(
                    &output(&s.boxes)?,
                    &output(s.scores.as_deref().unwrap_or_default())?,
                    &output(s.classes.as_deref().unwrap_or_default())?,
                    num.as_ref(),
                )?
            }
            Decoder::Yolo => self.decode_yolo(&output(&s.boxes)?)?,
        };
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

    /// A score as the settings say: clipped, through the sigmoid.
    fn score(&self, mut v: f32) -> f32 {
        let s = &self.settings;
        if s.score_clipping > 0.0 {
            v = v.clamp(-s.score_clipping, s.score_clipping);
        }
        if s.sigmoid_score {
            v = sigmoid(v);
        }
        v
    }

    /// The best class of one row of class scores, if it passes `min_score`.
    fn best_class(&self, scores: impl Iterator<Item = f32>, factor: f32) -> Option<(usize, f32)> {
        let s = &self.settings;
        let mut best: Option<(usize, f32)> = None;
        for (c, v) in scores.enumerate() {
            if s.ignore_classes.contains(&c) {
                continue;
            }
            let v = self.score(v) * factor;
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((c, v));
            }
        }
        best.filter(|&(_, v)| v >= s.min_score)
    }

    fn detection(
        &self,
        bbox: [f32; 4],
        score: f32,
        class: i64,
        keypoints: Vec<[f32; 2]>,
    ) -> Detection {
        let class = class.saturating_add(self.settings.class_offset).max(0) as usize;
        Detection {
            bbox,
            score,
            class,
            label: self.labels.get(class).cloned(),
            keypoints,
        }
    }

    fn decode_ssd(
        &self,
        boxes: &ArrayViewD<'_, f32>,
        scores: &ArrayViewD<'_, f32>,
    ) -> Result<Vec<Detection>> {
        let s = &self.settings;
        let n = self.anchors.len();
        let coords = s.ssd_coords();
        let (_, per) = rows(boxes, &s.boxes, Some(n), Some(coords))?;
        let (_, classes) = rows(
            scores,
            s.scores.as_deref().unwrap_or_default(),
            Some(n),
            None,
        )?;
        debug_assert_eq!(per, coords);
        let boxes = crate::values(boxes);
        let scores = crate::values(scores);
        let mut found = Vec::new();
        for (i, anchor) in self.anchors.iter().enumerate() {
            let row_scores = scores[i * classes..(i + 1) * classes].iter().copied();
            let Some((class, score)) = self.best_class(row_scores, 1.0) else {
                continue;
            };
            let row = &boxes[i * coords..(i + 1) * coords];
            let keypoints = (0..s.num_keypoints)
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
                .collect();
            let bbox = self.decode_anchor_box(&row[s.box_coord_offset..], anchor);
            found.push(self.detection(bbox, score, class as i64, keypoints));
        }
        Ok(found)
    }

    /// One anchor-relative box → `[x1, y1, x2, y2]` normalized to the model input.
    fn decode_anchor_box(&self, v: &[f32], a: &Anchor) -> [f32; 4] {
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

    fn decode_tf_od(
        &self,
        boxes: &ArrayViewD<'_, f32>,
        scores: &ArrayViewD<'_, f32>,
        classes: &ArrayViewD<'_, f32>,
        num: Option<&ArrayViewD<'_, f32>>,
    ) -> Result<Vec<Detection>> {
        let s = &self.settings;
        let (n, _) = rows(boxes, &s.boxes, None, Some(4))?;
        let one_per_row = |a: &ArrayViewD<'_, f32>, name: &str| {
            if a.len() == n {
                Ok(())
            } else {
                Err(Error::Output {
                    output: name.to_string(),
                    message: format!("expected {n} values (one per box), found {:?}", a.shape()),
                })
            }
        };
        one_per_row(scores, s.scores.as_deref().unwrap_or_default())?;
        one_per_row(classes, s.classes.as_deref().unwrap_or_default())?;
        let (scores, classes) = (crate::values(scores), crate::values(classes));
        let valid = num
            .and_then(|v| v.iter().next().copied())
            .map_or(n, |v| (v.max(0.0) as usize).min(n));
        let boxes = crate::values(boxes);
        let mut found = Vec::new();
        for i in 0..valid {
            let class = classes[i].round() as i64;
            let score = self.score(scores[i]);
            if score < s.min_score || (class >= 0 && s.ignore_classes.contains(&(class as usize))) {
                continue;
            }
            let b = &boxes[i * 4..i * 4 + 4];
            found.push(self.detection([b[1], b[0], b[3], b[2]], score, class, Vec::new()));
        }
        Ok(found)
    }

    fn decode_yolo(&self, out: &ArrayViewD<'_, f32>) -> Result<Vec<Detection>> {
        let s = &self.settings;
        let first = 4 + usize::from(s.objectness);
        let (n, per) = if s.transposed {
            let (per, n) = rows(out, &s.boxes, None, None)?;
            (n, per)
        } else {
            rows(out, &s.boxes, None, None)?
        };
        if per <= first {
            return Err(Error::Output {
                output: s.boxes.clone(),
                message: format!(
                    "rows of {per} values leave no class scores after {first} (box{})",
                    if s.objectness { " and objectness" } else { "" }
                ),
            });
        }
        let data = crate::values(out);
        let at = |i: usize, j: usize| {
            if s.transposed {
                data[j * n + i]
            } else {
                data[i * per + j]
            }
        };
        let (sx, sy) = if s.normalized {
            (1.0, 1.0)
        } else {
            (self.width as f32, self.height as f32)
        };
        let mut found = Vec::new();
        for i in 0..n {
            let objectness = if s.objectness {
                self.score(at(i, 4))
            } else {
                1.0
            };
            if objectness < s.min_score {
                continue;
            }
            let Some((class, score)) = self.best_class((first..per).map(|j| at(i, j)), objectness)
            else {
                continue;
            };
            let (cx, cy, w, h) = (at(i, 0) / sx, at(i, 1) / sy, at(i, 2) / sx, at(i, 3) / sy);
            let bbox = [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
            found.push(self.detection(bbox, score, class as i64, Vec::new()));
        }
        Ok(found)
    }
}

impl DetectSettings {
    /// The most detections kept per image ([`DetectSettings::max_detections`]).
    pub const MAX_DETECTIONS: usize = 10_000;
    /// The most keypoints per box, values per keypoint, values per row, or offsets into it.
    pub const MAX_ROW_VALUES: usize = 100_000;

    /// Check every number against its range (NaN and infinities included); the error names the
    /// key. [`Detector::new`] calls it.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| {
            Err(Error::Card {
                section: "detection",
                message,
            })
        };
        if !self.min_score.is_finite() {
            return bad(format!(
                "min_score = {} must be a finite number",
                self.min_score
            ));
        }
        if !(0.0..=1.0).contains(&self.iou_threshold) {
            return bad(format!(
                "iou_threshold = {} must be in 0..=1",
                self.iou_threshold
            ));
        }
        if !(1..=Self::MAX_DETECTIONS).contains(&self.max_detections) {
            return bad(format!(
                "max_detections = {} must be in 1..={}",
                self.max_detections,
                Self::MAX_DETECTIONS
            ));
        }
        if !(self.score_clipping.is_finite() && self.score_clipping >= 0.0) {
            return bad(format!(
                "score_clipping = {} must be a number >= 0",
                self.score_clipping
            ));
        }
        for (key, v) in [
            ("num_coords", self.num_coords.unwrap_or(0)),
            ("box_coord_offset", self.box_coord_offset),
            ("keypoint_coord_offset", self.keypoint_coord_offset),
            ("num_keypoints", self.num_keypoints),
            ("values_per_keypoint", self.values_per_keypoint),
        ] {
            if v > Self::MAX_ROW_VALUES {
                return bad(format!("{key} = {v} is more than {}", Self::MAX_ROW_VALUES));
            }
        }
        if self
            .class_offset
            .checked_abs()
            .is_none_or(|o| o > Self::MAX_ROW_VALUES as i64)
        {
            return bad(format!(
                "class_offset = {} is outside ±{}",
                self.class_offset,
                Self::MAX_ROW_VALUES
            ));
        }
        Ok(())
    }

    /// Values per SSD row: `num_coords`, or the box and keypoints.
    fn ssd_coords(&self) -> usize {
        self.num_coords.unwrap_or(
            (self.box_coord_offset + 4)
                .max(self.keypoint_coord_offset + self.num_keypoints * self.values_per_keypoint),
        )
    }
}

/// `a` as `[1, rows, values]` (any leading 1s): `(rows, values)`, checked against what is
/// expected.
fn rows(
    a: &ArrayViewD<'_, f32>,
    name: &str,
    want_rows: Option<usize>,
    want_values: Option<usize>,
) -> Result<(usize, usize)> {
    let shape = a.shape();
    let k = shape.len();
    if k >= 2
        && shape[..k - 2].iter().all(|&d| d == 1)
        && want_rows.is_none_or(|r| shape[k - 2] == r)
        && want_values.is_none_or(|v| shape[k - 1] == v)
    {
        return Ok((shape[k - 2], shape[k - 1]));
    }
    let dim = |v: Option<usize>, what: &str| v.map_or(what.to_string(), |v| v.to_string());
    Err(Error::Output {
        output: name.to_string(),
        message: format!(
            "expected [1, {}, {}], found {shape:?}",
            dim(want_rows, "N"),
            dim(want_values, "values")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorcv_infer::ndarray::{ArrayD, IxDyn};

    fn settings(toml_text: &str) -> DetectSettings {
        let table: toml::Table = toml::from_str(toml_text).unwrap();
        crate::error::settings("detection", Some(&table)).unwrap()
    }

    fn array(shape: &[usize], values: &[f32]) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap()
    }

    fn labels() -> Vec<String> {
        ["background", "person", "car"].map(String::from).to_vec()
    }

    #[test]
    fn tf_object_detection_rows_become_source_boxes() {
        let s = settings(
            r#"decoder = "tf-object-detection"
            boxes = "detection_boxes"
            scores = "detection_scores"
            classes = "detection_classes"
            num_detections = "num_detections"
            nms = "none""#,
        );
        let d = Detector::new(s, labels(), 100, 100).unwrap();
        // [ymin, xmin, ymax, xmax]; the third row is past num_detections
        let boxes = array(
            &[1, 3, 4],
            &[0.1, 0.2, 0.5, 0.6, 0.0, 0.0, 1.0, 1.0, 0.3, 0.3, 0.4, 0.4],
        );
        let scores = array(&[1, 3], &[0.9, 0.3, 0.95]);
        let classes = array(&[1, 3], &[1.0, 2.0, 2.0]);
        let num = array(&[1], &[2.0]);
        // the model input was a 2x downscale of a 200x200 photo
        let t = Transform {
            scale_x: 0.5,
            scale_y: 0.5,
            offset_x: 0.0,
            offset_y: 0.0,
        };
        let got = d
            .detect_with(
                |name| {
                    Ok(match name {
                        "detection_boxes" => boxes.view(),
                        "detection_scores" => scores.view(),
                        "detection_classes" => classes.view(),
                        _ => num.view(),
                    })
                },
                &t,
            )
            .unwrap();
        assert_eq!(got.len(), 1, "{got:?}"); // 0.3 < min_score 0.5, row 3 not valid
        assert_eq!(got[0].label.as_deref(), Some("person"));
        let want = [40.0, 20.0, 120.0, 100.0];
        for (a, b) in got[0].bbox.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{:?}", got[0].bbox);
        }
    }

    #[test]
    fn yolo_rows_with_and_without_objectness() {
        // v5-style: cx, cy, w, h (input pixels), objectness, 2 class scores
        let s = settings(
            r#"decoder = "yolo"
            boxes = "output0"
            iou_threshold = 0.5"#,
        );
        let d = Detector::new(s, vec!["cat".into(), "dog".into()], 64, 64).unwrap();
        let rows = array(
            &[1, 3, 7],
            &[
                32.0, 32.0, 16.0, 16.0, 0.9, 0.2, 0.8, // dog 0.72
                33.0, 32.0, 16.0, 16.0, 0.8, 0.1,
                0.9, // dog 0.72 (ties), overlaps: suppressed
                10.0, 10.0, 8.0, 8.0, 0.4, 0.9, 0.1, // objectness below 0.5
            ],
        );
        let got = d
            .detect_with(|_| Ok(rows.view()), &Transform::IDENTITY)
            .unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].label.as_deref(), Some("dog"));
        assert!((got[0].score - 0.72).abs() < 1e-6);
        assert_eq!(got[0].bbox, [24.0, 24.0, 40.0, 40.0]);

        // v8-style: transposed [1, 4 + classes, N], no objectness, letterboxed input
        let s = settings(
            r#"decoder = "yolo"
            boxes = "output0"
            objectness = false
            transposed = true"#,
        );
        let d = Detector::new(s, vec!["cat".into(), "dog".into()], 64, 64).unwrap();
        let cols = array(
            &[1, 6, 2],
            &[
                32.0, 8.0, // cx
                32.0, 8.0, // cy
                16.0, 4.0, // w
                16.0, 4.0, // h
                0.1, 0.6, // cat
                0.7, 0.2, // dog
            ],
        );
        // a 128x64 photo letterboxed into 64x64: scale 0.5, 16 px bars top and bottom
        let t = Transform {
            scale_x: 0.5,
            scale_y: 0.5,
            offset_x: 0.0,
            offset_y: 16.0,
        };
        let got = d.detect_with(|_| Ok(cols.view()), &t).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].label.as_deref(), Some("dog"));
        assert_eq!(got[0].bbox, [48.0, 16.0, 80.0, 48.0]);
        assert_eq!(got[1].label.as_deref(), Some("cat"));
        assert_eq!(got[1].bbox, [12.0, -20.0, 20.0, -12.0]);

        // rows too short for the classes
        let short = array(&[1, 2, 5], &[0.0; 10]);
        let s = settings("decoder = \"yolo\"\nboxes = \"out\"");
        let e = Detector::new(s, vec![], 64, 64)
            .unwrap()
            .detect_with(|_| Ok(short.view()), &Transform::IDENTITY)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'out'") && e.contains("no class scores"), "{e}");
    }

    #[test]
    fn regions_grow_square_pad_and_clip() {
        let d = Detection {
            bbox: [10.0, 20.0, 30.0, 60.0],
            score: 1.0,
            class: 0,
            label: None,
            keypoints: vec![],
        };
        let r = |scale, square, pad| {
            let r = d.region(scale, square, pad, 100, 100).unwrap();
            [r.x, r.y, r.width, r.height]
        };
        assert_eq!(r(1.0, false, 0.0), [10, 20, 20, 40]);
        assert_eq!(r(1.5, false, 0.0), [5, 10, 30, 60]);
        assert_eq!(r(1.0, true, 0.0), [0, 20, 40, 40]);
        assert_eq!(r(1.0, false, 10.0), [0, 10, 40, 60]);
        // clipped at the image's edge, and nothing when outside
        assert_eq!(d.region(1.0, false, 0.0, 25, 100).unwrap().width, 15);
        let outside = Detection {
            bbox: [200.0, 200.0, 220.0, 220.0],
            ..d.clone()
        };
        assert!(outside.region(1.0, false, 0.0, 100, 100).is_none());
    }

    #[test]
    fn decoders_say_which_setting_they_miss() {
        let s = settings("decoder = \"tf-object-detection\"\nboxes = \"b\"\nscores = \"s\"");
        let e = Detector::new(s, vec![], 8, 8).unwrap_err().to_string();
        assert!(e.contains("`classes`"), "{e}");
        let s = settings("boxes = \"b\"\nscores = \"s\"");
        let e = Detector::new(s, vec![], 8, 8).unwrap_err().to_string();
        assert!(e.contains("[detection.anchors]"), "{e}");
        let table: toml::Table = toml::from_str("decoder = \"retina\"\nboxes = \"b\"").unwrap();
        let e = crate::error::settings::<DetectSettings>("detection", Some(&table))
            .unwrap_err()
            .to_string();
        assert!(e.contains("retina") && e.contains("yolo"), "{e}");
    }
}
