//! Landmarks: a model that sees a rotated crop around an object (a face, a hand, a person) and
//! answers with points, mapped back to source-image pixels through the crop.
//!
//! The crop is MediaPipe's: [`RoiSettings`] turn a detection's box and two of its keypoints into
//! a [`RotatedRect`] (`DetectionsToRectsCalculator`'s rotation, then
//! `RectTransformationCalculator`'s shift, square and scale), and the model input is that
//! rectangle warped upright (`ImageToTensorCalculator`: the rectangle's corners go to the
//! input's corners). Points come back as MediaPipe's `LandmarkProjectionCalculator` puts
//! them, with `z` in the same pixel scale as `x`.
//!
//! ```toml
//! [landmarks]
//! output = "conv2d_21"          # the points: num_points × values_per_point values
//! num_points = 468
//! values_per_point = 3          # x, y[, z][, visibility[, presence]]
//! score = "conv2d_31"           # presence of the object (optional)
//! score_activation = "sigmoid"
//! min_score = 0.5
//! [landmarks.roi]               # the crop, from the detector's box and keypoints
//! rotation = [0, 1]             # keypoints whose direction is turned to target_angle
//! target_angle = 0.0            # degrees
//! scale = [1.5, 1.5]
//! square = "long"
//! ```

use crate::classification::{sigmoid, Activation};
use crate::error::{settings, Error, Result};
use serde::Deserialize;
use tensorcv_imgproc::filter::Border;
use tensorcv_imgproc::warp::Affine;
use tensorcv_infer::{ModelCard, Outputs};

/// A rectangle turned by `angle` about its center, in source pixels: the crop a landmark model
/// sees. The rectangle's own x axis points along `(cos angle, sin angle)` in the image (y down,
/// so a positive angle turns clockwise on screen).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RotatedRect {
    /// center `(x, y)`
    pub center: [f32; 2],
    /// width and height
    pub size: [f32; 2],
    /// radians
    pub angle: f32,
}

impl RotatedRect {
    /// The point at `(u, v)` of the rectangle seen upright as a `width`×`height` picture, in
    /// source pixels (the rectangle's corners are the picture's corners `(0, 0)` and
    /// `(width, height)`).
    pub fn to_source(&self, u: f32, v: f32, width: usize, height: usize) -> [f32; 2] {
        let (s, c) = self.angle.sin_cos();
        let dx = (u / width as f32 - 0.5) * self.size[0];
        let dy = (v / height as f32 - 0.5) * self.size[1];
        [
            self.center[0] + c * dx - s * dy,
            self.center[1] + s * dx + c * dy,
        ]
    }

    /// The warp from the source image to the rectangle seen upright as a `width`×`height`
    /// picture (for [`tensorcv_imgproc::warp::warp_affine`]).
    pub fn crop_transform(&self, width: usize, height: usize) -> Affine {
        let (s, c) = (self.angle as f64).sin_cos();
        let (w, h) = (self.size[0] as f64, self.size[1] as f64);
        let (sx, sy) = (width as f64 / w, height as f64 / h);
        let (cx, cy) = (self.center[0] as f64, self.center[1] as f64);
        // source → rectangle frame (rotate by -angle about the center) → picture
        let a = [c * sx, s * sx, 0.0, -s * sy, c * sy, 0.0];
        let tx = -(a[0] * cx + a[1] * cy) + width as f64 / 2.0;
        let ty = -(a[3] * cx + a[4] * cy) + height as f64 / 2.0;
        Affine([a[0], a[1], tx, a[3], a[4], ty])
    }

    /// The four corners, clockwise on screen from the top-left of the upright picture.
    pub fn corners(&self) -> [[f32; 2]; 4] {
        [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)].map(|(u, v)| self.to_source(u, v, 1, 1))
    }

    /// The axis-aligned box `[x1, y1, x2, y2]` around the rectangle.
    pub fn bounds(&self) -> [f32; 4] {
        bounding_box(self.corners().iter())
    }

    /// Whether the rectangle is usable: finite, and both sides at least a thousandth of a pixel.
    pub fn is_valid(&self) -> bool {
        self.center.iter().chain(&self.size).all(|v| v.is_finite())
            && self.angle.is_finite()
            && self.size.iter().all(|&v| v > 1e-3)
    }
}

/// The box `[x1, y1, x2, y2]` around points (`x`, `y` first in each).
fn bounding_box<'a, const N: usize>(points: impl Iterator<Item = &'a [f32; N]>) -> [f32; 4] {
    points.fold(
        [
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ],
        |b, p| {
            [
                b[0].min(p[0]),
                b[1].min(p[1]),
                b[2].max(p[0]),
                b[3].max(p[1]),
            ]
        },
    )
}

/// Whether a rectangle is made square, and on which side.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Square {
    /// keep the sides
    #[default]
    None,
    /// both sides the longer one (MediaPipe's `square_long`)
    Long,
    /// both sides the shorter one (`square_short`)
    Short,
}

/// `[landmarks.roi]`: the crop made from an object's box and points (MediaPipe's
/// `DetectionsToRectsCalculator` then `RectTransformationCalculator`). Every key is optional.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoiSettings {
    /// two point indices: the crop is turned so the direction from the first to the second
    /// points along `target_angle` (no rotation without them)
    pub rotation: Option<[usize; 2]>,
    /// degrees, counter-clockwise on screen from the x axis (MediaPipe's
    /// `rotation_vector_target_angle_degrees`)
    pub target_angle: f32,
    /// the rectangle grown by these factors (width, height), after squaring
    pub scale: [f32; 2],
    /// the center moved by these fractions of the width and height, along the rectangle's
    /// turned axes
    pub shift: [f32; 2],
    /// made square
    pub square: Square,
    /// only these points (indices) make the box, when the crop is made from landmarks
    /// (tracking); all of them otherwise
    pub points: Option<Vec<usize>>,
}

impl Default for RoiSettings {
    fn default() -> Self {
        RoiSettings {
            rotation: None,
            target_angle: 0.0,
            scale: [1.0, 1.0],
            shift: [0.0, 0.0],
            square: Square::None,
            points: None,
        }
    }
}

/// The largest `scale` of a crop.
pub const MAX_ROI_SCALE: f32 = 100.0;

impl RoiSettings {
    fn validate(&self, key: &str) -> Result<()> {
        let bad = |message: String| Error::Card {
            section: "landmarks",
            message,
        };
        if !self.target_angle.is_finite() {
            return Err(bad(format!("{key}.target_angle must be finite")));
        }
        if let Some(v) = self
            .scale
            .iter()
            .find(|v| !(v.is_finite() && **v > 0.0 && **v <= MAX_ROI_SCALE))
        {
            return Err(bad(format!(
                "{key}.scale = {v}: must be above 0 and at most {MAX_ROI_SCALE}"
            )));
        }
        if let Some(v) = self
            .shift
            .iter()
            .find(|v| !(v.is_finite() && v.abs() <= 10.0))
        {
            return Err(bad(format!("{key}.shift = {v}: must be within -10..=10")));
        }
        Ok(())
    }

    /// The crop for a box `[x1, y1, x2, y2]` and its points (source pixels). `None` when the
    /// rotation needs a point that is not there or the box is empty.
    pub fn rect<const N: usize>(&self, bbox: [f32; 4], points: &[[f32; N]]) -> Option<RotatedRect> {
        const { assert!(N >= 2, "points are [x, y, ...]") };
        let angle = match self.rotation {
            Some([a, b]) => {
                let (p, q) = (points.get(a)?, points.get(b)?);
                let target = self.target_angle.to_radians();
                normalize_radians(target - (-(q[1] - p[1])).atan2(q[0] - p[0]))
            }
            None => 0.0,
        };
        let (mut w, mut h) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
        let mut center = [(bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0];
        let (s, c) = angle.sin_cos();
        let (dx, dy) = (w * self.shift[0], h * self.shift[1]);
        center[0] += dx * c - dy * s;
        center[1] += dx * s + dy * c;
        match self.square {
            Square::None => {}
            Square::Long => {
                w = w.max(h);
                h = w;
            }
            Square::Short => {
                w = w.min(h);
                h = w;
            }
        }
        let rect = RotatedRect {
            center,
            size: [w * self.scale[0], h * self.scale[1]],
            angle,
        };
        rect.is_valid().then_some(rect)
    }

    /// The crop for the next frame from this frame's landmarks (MediaPipe's
    /// `LandmarksToDetectionCalculator` → `DetectionsToRectsCalculator` →
    /// `RectTransformationCalculator`): the box around `points` (or the subset named by
    /// [`RoiSettings::points`]), turned by the rotation points.
    pub fn rect_from_points(&self, points: &[[f32; 3]]) -> Option<RotatedRect> {
        let bbox = match &self.points {
            Some(ix) => bounding_box(ix.iter().filter_map(|&i| points.get(i))),
            None => bounding_box(points.iter()),
        };
        if !(bbox[0] <= bbox[2] && bbox[1] <= bbox[3]) {
            return None;
        }
        self.rect(bbox, points)
    }
}

/// `[landmarks.smoothing]`: a one-euro filter per coordinate (Casiez et al. 2012, as MediaPipe's
/// `OneEuroFilter`): the cutoff frequency rises with the speed, so still points stop jittering
/// and moving ones do not lag. Speeds are measured in object sizes per second (the points' box),
/// so the settings hold for near and far objects.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OneEuroSettings {
    /// the cutoff (Hz) of a still point: lower, smoother
    pub min_cutoff: f64,
    /// how fast the cutoff rises with the speed: higher, less lag
    pub beta: f64,
    /// the cutoff (Hz) of the speed estimate
    pub derivative_cutoff: f64,
}

impl Default for OneEuroSettings {
    /// MediaPipe's hand-tracking values.
    fn default() -> Self {
        OneEuroSettings {
            min_cutoff: 0.05,
            beta: 80.0,
            derivative_cutoff: 1.0,
        }
    }
}

impl OneEuroSettings {
    fn validate(&self) -> Result<()> {
        let ok = |v: f64, lo: f64| v.is_finite() && v >= lo && v <= 1e6;
        if !(ok(self.min_cutoff, 1e-6) && ok(self.beta, 0.0) && ok(self.derivative_cutoff, 1e-6)) {
            return Err(Error::Card {
                section: "landmarks",
                message: format!(
                    "smoothing: min_cutoff and derivative_cutoff must be above 0, beta at least \
                     0, all at most 1e6 (got {self:?})"
                ),
            });
        }
        Ok(())
    }
}

/// A low-pass filter with a given smoothing factor.
#[derive(Clone, Copy, Debug, Default)]
struct LowPass {
    last_raw: Option<f64>,
    stored: f64,
}

impl LowPass {
    fn apply(&mut self, value: f64, alpha: f64) -> f64 {
        self.stored = match self.last_raw {
            Some(_) => alpha * value + (1.0 - alpha) * self.stored,
            None => value,
        };
        self.last_raw = Some(value);
        self.stored
    }
}

/// One coordinate's one-euro filter.
#[derive(Clone, Copy, Debug, Default)]
struct OneEuro {
    x: LowPass,
    dx: LowPass,
}

fn alpha(cutoff: f64, rate: f64) -> f64 {
    let tau = 1.0 / (2.0 * std::f64::consts::PI * cutoff);
    1.0 / (1.0 + tau * rate)
}

impl OneEuro {
    fn apply(&mut self, s: &OneEuroSettings, value: f64, scale: f64, rate: f64) -> f64 {
        let speed = match self.x.last_raw {
            Some(last) => (value - last) * scale * rate,
            None => 0.0,
        };
        let speed = self.dx.apply(speed, alpha(s.derivative_cutoff, rate));
        let cutoff = s.min_cutoff + s.beta * speed.abs();
        self.x.apply(value, alpha(cutoff, rate))
    }
}

/// The smoothing of one followed object: a filter per coordinate of each point.
#[derive(Clone, Debug, Default)]
pub struct Smoother {
    filters: Vec<[OneEuro; 3]>,
    last_ms: Option<f64>,
}

impl Smoother {
    /// Smooth `points` seen at `ms` milliseconds (a time not after the last one leaves them as
    /// they are, as MediaPipe does).
    pub fn apply(&mut self, s: &OneEuroSettings, points: &mut [[f32; 3]], ms: f64) {
        let rate = match self.last_ms {
            Some(last) if ms > last => 1000.0 / (ms - last),
            Some(_) => return,
            // the first frame passes as it is; the rate is only used from the second
            None => 30.0,
        };
        self.last_ms = Some(ms);
        if self.filters.len() != points.len() {
            self.filters = vec![[OneEuro::default(); 3]; points.len()];
        }
        let b = bounding_box(points.iter());
        let size = (((b[2] - b[0]) + (b[3] - b[1])) as f64 / 2.0).max(1e-6);
        for (p, f) in points.iter_mut().zip(&mut self.filters) {
            for c in 0..3 {
                p[c] = f[c].apply(s, p[c] as f64, 1.0 / size, rate) as f32;
            }
        }
    }
}

/// An angle in `[-π, π)`.
fn normalize_radians(a: f32) -> f32 {
    use std::f32::consts::PI;
    a - 2.0 * PI * ((a + PI) / (2.0 * PI)).floor()
}

/// Which coordinates a model gives its points in.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Coordinates {
    /// pixels of the model input (MediaPipe's models)
    #[default]
    Pixels,
    /// 0..1 of the model input's width and height
    Normalized,
}

/// `[landmarks]` of the model card.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LandmarkSettings {
    /// the output holding the points
    pub output: String,
    /// how many points
    pub num_points: usize,
    /// values per point: x, y, then z, visibility and presence as far as there are (2 to 5)
    #[serde(default = "three")]
    pub values_per_point: usize,
    /// pixels of the model input, or normalized
    #[serde(default)]
    pub coordinates: Coordinates,
    /// what the visibility and presence values are before they are probabilities
    #[serde(default = "sigmoid_activation")]
    pub visibility_activation: Activation,
    /// the output holding the object's presence score
    pub score: Option<String>,
    /// what the score is before it is a probability
    #[serde(default)]
    pub score_activation: Activation,
    /// below this score the object is not there and no points are given
    #[serde(default = "half")]
    pub min_score: f32,
    /// the output holding a two-way label score (MediaPipe's handedness)
    pub label: Option<String>,
    /// what the label score is before it is a probability
    #[serde(default)]
    pub label_activation: Activation,
    /// the label below 0.5 and the label above (default: the card's `labels`)
    pub labels: Option<Vec<String>>,
    /// the output holding world coordinates (metres, around the object's center)
    pub world: Option<String>,
    /// how the crop is made from the detector's box and keypoints
    #[serde(default)]
    pub roi: RoiSettings,
    /// how the next frame's crop is made from these landmarks (video: tracking); none: the
    /// detector runs on every frame
    pub track: Option<RoiSettings>,
    /// the border of crops that run past the image (`replicate`, MediaPipe's default, or
    /// `constant`: black)
    #[serde(default = "replicate", deserialize_with = "border")]
    pub border: Border,
    /// the detector that finds the objects (a built-in name, or a model file beside the card)
    pub detector: Option<String>,
    /// video, while following objects: smooth each point over time (MediaPipe's
    /// `LandmarksSmoothingCalculator` with its one-euro filter); none: raw points
    pub smoothing: Option<OneEuroSettings>,
    /// lines between points, drawn by `--save`
    #[serde(default)]
    pub connections: Vec<[usize; 2]>,
}

fn three() -> usize {
    3
}
fn half() -> f32 {
    0.5
}
fn sigmoid_activation() -> Activation {
    Activation::Sigmoid
}
fn replicate() -> Border {
    Border::Replicate
}
fn border<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Border, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// The most points a landmark model may give.
pub const MAX_POINTS: usize = 100_000;

impl LandmarkSettings {
    /// The card's `[landmarks]`, checked.
    pub fn from_card(card: &ModelCard) -> Result<Self> {
        let Some(table) = card.landmarks.as_ref() else {
            return Err(Error::Card {
                section: "landmarks",
                message: "the card has no [landmarks] table: which output holds the points?".into(),
            });
        };
        let s: LandmarkSettings = settings("landmarks", Some(table))?;
        let bad = |message: String| Error::Card {
            section: "landmarks",
            message,
        };
        if !(1..=MAX_POINTS).contains(&s.num_points) {
            return Err(bad(format!(
                "num_points = {}: must be 1 to {MAX_POINTS}",
                s.num_points
            )));
        }
        if !(2..=5).contains(&s.values_per_point) {
            return Err(bad(format!(
                "values_per_point = {}: must be 2 (x, y) to 5 (x, y, z, visibility, presence)",
                s.values_per_point
            )));
        }
        if !(0.0..=1.0).contains(&s.min_score) {
            return Err(bad(format!(
                "min_score = {}: must be in 0..=1",
                s.min_score
            )));
        }
        if s.visibility_activation == Activation::Softmax
            || s.score_activation == Activation::Softmax
            || s.label_activation == Activation::Softmax
        {
            return Err(bad("activations are none or sigmoid".into()));
        }
        s.roi.validate("roi")?;
        if let Some(f) = &s.smoothing {
            f.validate()?;
        }
        if let Some(t) = &s.track {
            t.validate("track")?;
        }
        // the crop's rotation points are the detector's keypoints (checked against it when
        // the two are put together); the tracking crop's are this model's points
        if let Some(t) = &s.track {
            let named = t.rotation.iter().flatten().chain(t.points.iter().flatten());
            if let Some(i) = named.into_iter().find(|&&i| i >= s.num_points) {
                return Err(bad(format!(
                    "track: point {i} is out of range (num_points = {})",
                    s.num_points
                )));
            }
        }
        if let Some(i) = s.connections.iter().flatten().find(|&&i| i >= s.num_points) {
            return Err(bad(format!(
                "connections: point {i} is out of range (num_points = {})",
                s.num_points
            )));
        }
        if let Some(l) = s.labels.as_ref().filter(|l| l.len() != 2) {
            return Err(bad(format!(
                "labels: a two-way label needs 2 names, got {}",
                l.len()
            )));
        }
        Ok(s)
    }

    /// The outputs the settings name.
    pub fn named_outputs(&self) -> Vec<&str> {
        [
            Some(self.output.as_str()),
            self.score.as_deref(),
            self.label.as_deref(),
            self.world.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// One object's landmarks.
#[derive(Clone, Debug, PartialEq)]
pub struct Landmarks {
    /// `[x, y, z]` in source pixels (`z`: depth in the same scale as `x`, smaller is nearer;
    /// 0 when the model gives none)
    pub points: Vec<[f32; 3]>,
    /// per point: visibility (probability), when the model gives it
    pub visibility: Option<Vec<f32>>,
    /// per point: presence (probability), when the model gives it
    pub presence: Option<Vec<f32>>,
    /// the object's presence score, when the model gives one
    pub score: Option<f32>,
    /// the two-way label (handedness) and its probability
    pub label: Option<(String, f32)>,
    /// world coordinates, when the model gives them
    pub world: Option<Vec<[f32; 3]>>,
    /// the crop the model saw
    pub roi: RotatedRect,
}

impl Landmarks {
    /// The box `[x1, y1, x2, y2]` around the points.
    pub fn bbox(&self) -> [f32; 4] {
        bounding_box(self.points.iter())
    }
}

fn activate(a: Activation, v: f32) -> f32 {
    match a {
        Activation::Sigmoid => sigmoid(v),
        _ => v,
    }
}

/// The first value of output `name`.
fn scalar(outputs: &Outputs, name: &str) -> Result<f32> {
    let a = outputs.get(name)?;
    a.iter().next().copied().ok_or_else(|| Error::Output {
        output: name.into(),
        message: "is empty".into(),
    })
}

/// The model's outputs for the crop `roi`, seen as a `width`×`height` input, as landmarks in
/// source pixels; `None` when the presence score is under `min_score`. `labels` are the card's
/// (for the two-way label when the settings name none).
pub fn landmarks(
    outputs: &Outputs,
    settings: &LandmarkSettings,
    labels: &[String],
    roi: &RotatedRect,
    width: usize,
    height: usize,
) -> Result<Option<Landmarks>> {
    let score = match &settings.score {
        Some(name) => {
            let s = activate(settings.score_activation, scalar(outputs, name)?);
            // a NaN score is no object either
            if s.is_nan() || s < settings.min_score {
                return Ok(None);
            }
            Some(s)
        }
        None => None,
    };
    let values = outputs.get(&settings.output)?;
    let n = settings.num_points * settings.values_per_point;
    if values.len() < n {
        return Err(Error::Output {
            output: settings.output.clone(),
            message: format!(
                "has {} values, fewer than {} points × {} values",
                values.len(),
                settings.num_points,
                settings.values_per_point
            ),
        });
    }
    let view = values.view();
    let flat = crate::values(&view);
    let k = settings.values_per_point;
    let (sx, sy) = match settings.coordinates {
        Coordinates::Pixels => (1.0, 1.0),
        Coordinates::Normalized => (width as f32, height as f32),
    };
    // z comes in input pixels (or normalized by the width) and scales as x does
    let z_scale = roi.size[0] / width as f32 * sx;
    let mut points = Vec::with_capacity(settings.num_points);
    for p in flat[..n].chunks_exact(k) {
        let [x, y] = roi.to_source(p[0] * sx, p[1] * sy, width, height);
        let z = if k >= 3 { p[2] * z_scale } else { 0.0 };
        points.push([x, y, z]);
    }
    let per_point = |i: usize| {
        (k > i).then(|| {
            flat[..n]
                .chunks_exact(k)
                .map(|p| activate(settings.visibility_activation, p[i]))
                .collect::<Vec<f32>>()
        })
    };
    let label = match &settings.label {
        Some(name) => {
            let p = activate(settings.label_activation, scalar(outputs, name)?);
            let names = settings.labels.as_deref().unwrap_or(labels);
            let (i, prob) = if p > 0.5 { (1, p) } else { (0, 1.0 - p) };
            let text = names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("class {i}"));
            Some((text, prob))
        }
        None => None,
    };
    let world = match &settings.world {
        Some(name) => {
            let w = outputs.get(name)?;
            let wv = w.view();
            let wf = crate::values(&wv);
            if wf.len() < settings.num_points * 3 {
                return Err(Error::Output {
                    output: name.clone(),
                    message: format!(
                        "has {} values, fewer than {} points × 3",
                        wf.len(),
                        settings.num_points
                    ),
                });
            }
            Some(
                wf[..settings.num_points * 3]
                    .chunks_exact(3)
                    .map(|p| [p[0], p[1], p[2]])
                    .collect(),
            )
        }
        None => None,
    };
    Ok(Some(Landmarks {
        points,
        visibility: per_point(3),
        presence: per_point(4),
        score,
        label,
        world,
        roi: *roi,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_transform_and_to_source_are_inverse() {
        let r = RotatedRect {
            center: [120.0, 80.0],
            size: [60.0, 40.0],
            angle: 0.7,
        };
        let m = r.crop_transform(192, 128);
        for (u, v) in [(0.0, 0.0), (192.0, 0.0), (96.0, 64.0), (10.0, 120.0)] {
            let [x, y] = r.to_source(u, v, 192, 128);
            let (u2, v2) = m.apply(x as f64, y as f64);
            assert!((u2 - u as f64).abs() < 1e-3 && (v2 - v as f64).abs() < 1e-3);
        }
        let b = r.bounds();
        assert!(b[0] < 120.0 - 30.0 && b[2] > 120.0 + 30.0);
    }

    #[test]
    fn rotation_turns_the_keypoint_direction_to_the_target() {
        let s = RoiSettings {
            rotation: Some([0, 1]),
            target_angle: 90.0,
            ..RoiSettings::default()
        };
        // the second point straight up from the first: already at 90 degrees
        let r = s
            .rect([0.0, 0.0, 10.0, 10.0], &[[5.0, 10.0], [5.0, 0.0]])
            .unwrap();
        assert!(r.angle.abs() < 1e-6, "{}", r.angle);
        // straight right: the crop turns a quarter
        let r = s
            .rect([0.0, 0.0, 10.0, 10.0], &[[0.0, 5.0], [10.0, 5.0]])
            .unwrap();
        assert!(
            (r.angle - std::f32::consts::FRAC_PI_2).abs() < 1e-6,
            "{}",
            r.angle
        );
        // a missing point: no crop
        assert!(s.rect([0.0, 0.0, 10.0, 10.0], &[[0.0, 5.0]]).is_none());
    }

    #[test]
    fn shift_square_and_scale() {
        let s = RoiSettings {
            shift: [0.0, -0.5],
            square: Square::Long,
            scale: [2.0, 2.0],
            ..RoiSettings::default()
        };
        let r = s.rect::<2>([10.0, 10.0, 30.0, 50.0], &[]).unwrap();
        assert_eq!(r.center, [20.0, 10.0]);
        assert_eq!(r.size, [80.0, 80.0]);
        assert!(s.rect::<2>([10.0, 10.0, 10.0, 10.0], &[]).is_none());
    }

    #[test]
    fn one_euro_smooths_still_points_and_follows_moving_ones() {
        let s = OneEuroSettings {
            min_cutoff: 0.5,
            beta: 5.0,
            derivative_cutoff: 1.0,
        };
        let mut f = Smoother::default();
        // a still object with jitter: the output moves much less than the input
        let mut spread_in = 0f32;
        let mut spread_out = 0f32;
        for i in 0..60 {
            let jitter = if i % 2 == 0 { 1.0 } else { -1.0 };
            let mut pts = vec![[100.0 + jitter, 100.0, 0.0], [200.0 + jitter, 200.0, 0.0]];
            f.apply(&s, &mut pts, i as f64 * 33.3);
            if i > 30 {
                spread_in = spread_in.max(jitter.abs());
                spread_out = spread_out.max((pts[0][0] - 100.0).abs());
            }
        }
        assert!(spread_out < 0.2 * spread_in, "{spread_out} of {spread_in}");
        // a fast move: followed within a few frames
        let mut f = Smoother::default();
        let mut last = 0.0;
        for i in 0..10 {
            let x = 100.0 + 30.0 * i as f32;
            let mut pts = vec![[x, 100.0, 0.0], [x + 100.0, 200.0, 0.0]];
            f.apply(&s, &mut pts, i as f64 * 33.3);
            last = x - pts[0][0];
        }
        assert!(last.abs() < 10.0, "lags {last} px behind");
        // the same time again: the points pass unchanged
        let mut pts = vec![[5.0, 5.0, 0.0], [6.0, 6.0, 0.0]];
        f.apply(&s, &mut pts, 9.0 * 33.3);
        assert_eq!(pts[0], [5.0, 5.0, 0.0]);
        // the first filter step is the formula: alpha from the cutoff and the rate
        let s = OneEuroSettings::default();
        let mut one = OneEuro::default();
        assert_eq!(one.apply(&s, 10.0, 1.0, 30.0), 10.0);
        let speed_alpha = alpha(1.0, 30.0);
        let speed = speed_alpha * (2.0 * 30.0);
        let a = alpha(0.05 + 80.0 * speed, 30.0);
        let want = a * 12.0 + (1.0 - a) * 10.0;
        assert!((one.apply(&s, 12.0, 1.0, 30.0) - want).abs() < 1e-12);
    }

    #[test]
    fn outputs_become_points_labels_and_world_points() {
        use tensorcv_infer::ndarray::{ArrayD, IxDyn};
        let card = ModelCard::parse(
            r#"
            labels = ["Right", "Left"]
            [model]
            task = "landmarks"
            [landmarks]
            output = "pts"
            num_points = 2
            values_per_point = 5
            coordinates = "normalized"
            score = "flag"
            score_activation = "sigmoid"
            label = "hand"
            world = "world"
            "#,
            "m.toml",
        )
        .unwrap();
        let s = LandmarkSettings::from_card(&card).unwrap();
        let outputs = |flag: f32, hand: f32| {
            let arr =
                |shape: &[usize], v: Vec<f32>| ArrayD::from_shape_vec(IxDyn(shape), v).unwrap();
            Outputs::new(
                vec!["pts".into(), "flag".into(), "hand".into(), "world".into()],
                vec![
                    // (x, y, z, visibility logit, presence logit) × 2, normalized to the input
                    arr(
                        &[1, 10],
                        vec![0.5, 0.5, 0.1, 0.0, 10.0, 1.0, 0.5, -0.2, 0.0, -10.0],
                    ),
                    arr(&[1, 1], vec![flag]),
                    arr(&[1, 1], vec![hand]),
                    arr(&[1, 6], vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
                ],
            )
            .unwrap()
        };
        // a 100x50 crop centered at (200, 100), turned a quarter clockwise, seen as 64x32
        let roi = RotatedRect {
            center: [200.0, 100.0],
            size: [100.0, 50.0],
            angle: std::f32::consts::FRAC_PI_2,
        };
        let labels = card.labels.clone();
        let l = landmarks(&outputs(3.0, 0.9), &s, &labels, &roi, 64, 32)
            .unwrap()
            .unwrap();
        // the input's center is the crop's; its right edge middle is 50 px down the turned x axis
        assert!((l.points[0][0] - 200.0).abs() < 1e-4 && (l.points[0][1] - 100.0).abs() < 1e-4);
        assert!((l.points[1][0] - 200.0).abs() < 1e-4 && (l.points[1][1] - 150.0).abs() < 1e-4);
        // z: normalized by the input width, scaled as x is (the crop is 100 px wide)
        assert!(
            (l.points[0][2] - 0.1 * 100.0).abs() < 1e-4,
            "{}",
            l.points[0][2]
        );
        let vis = l.visibility.as_ref().unwrap();
        assert!((vis[0] - 0.5).abs() < 1e-6 && (vis[1] - 0.5).abs() < 1e-6);
        let pres = l.presence.as_ref().unwrap();
        assert!(pres[0] > 0.99 && pres[1] < 0.01);
        assert!((l.score.unwrap() - sigmoid(3.0)).abs() < 1e-6);
        let (label, p) = l.label.clone().unwrap();
        assert_eq!((label.as_str(), (p * 10.0).round()), ("Left", 9.0));
        let (label, p) = landmarks(&outputs(3.0, 0.2), &s, &labels, &roi, 64, 32)
            .unwrap()
            .unwrap()
            .label
            .unwrap();
        assert_eq!((label.as_str(), (p * 10.0).round()), ("Right", 8.0));
        assert_eq!(l.world.as_ref().unwrap()[1], [0.4, 0.5, 0.6]);
        let b = l.bbox();
        assert!(
            (b[1] - 100.0).abs() < 1e-4 && (b[3] - 150.0).abs() < 1e-4,
            "{b:?}"
        );
        // under the presence threshold: no object
        assert!(landmarks(&outputs(-3.0, 0.9), &s, &labels, &roi, 64, 32)
            .unwrap()
            .is_none());
        // too few values for the points: an error naming the output
        let short = Outputs::new(
            vec!["pts".into(), "flag".into(), "hand".into(), "world".into()],
            vec![
                ArrayD::zeros(IxDyn(&[1, 3])),
                ArrayD::zeros(IxDyn(&[1, 1])),
                ArrayD::zeros(IxDyn(&[1, 1])),
                ArrayD::zeros(IxDyn(&[1, 6])),
            ],
        )
        .unwrap();
        let e = landmarks(&short, &s, &labels, &roi, 64, 32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'pts'") && e.contains("fewer"), "{e}");
    }

    #[test]
    fn card_errors_name_the_key() {
        let card = |t: &str| ModelCard::parse(t, "m.toml").unwrap();
        let e = LandmarkSettings::from_card(&card("[model]\nname='x'\n")).unwrap_err();
        assert!(e.to_string().contains("[landmarks]"), "{e}");
        for (text, key) in [
            ("[landmarks]\noutput='a'\nnum_points=0\n", "num_points"),
            (
                "[landmarks]\noutput='a'\nnum_points=3\nvalues_per_point=7\n",
                "values_per_point",
            ),
            (
                "[landmarks]\noutput='a'\nnum_points=3\nconnections=[[0,3]]\n",
                "connections",
            ),
            (
                "[landmarks]\noutput='a'\nnum_points=3\n[landmarks.roi]\nscale=[0.0,1.0]\n",
                "scale",
            ),
            ("[landmarks]\noutput='a'\nnum_points=3\nnope=1\n", "nope"),
            (
                "[landmarks]\noutput='a'\nnum_points=3\n[landmarks.smoothing]\nbeta=-1.0\n",
                "smoothing",
            ),
            (
                "[landmarks]\noutput='a'\nnum_points=3\n[landmarks.track]\nrotation=[0,3]\n",
                "track",
            ),
        ] {
            let e = LandmarkSettings::from_card(&card(text)).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
    }
}
