//! One image through a model — or through a detector first and the model on each detected
//! region — with preprocessing, inference and post-processing as the cards say, each stage
//! timed. This is what `tensorcv` runs for every input and what a stream runner runs for every
//! frame; it holds its sessions, so frame after frame reuses their buffers.
//!
//! ```no_run
//! use tensorcv_imgproc::io::{imread, DecodeOptions};
//! use tensorcv_infer::{Model, Task};
//! use tensorcv_tasks::pipeline::{Outcome, Pipeline};
//!
//! let emotion = Model::load("models/emotion.onnx")?;
//! let face = Model::load("models/face_detection_short_range.onnx")?;
//! let mut pipeline = Pipeline::new(&emotion, Some(Task::Classification))?.with_regions_from(&face)?;
//! let photo = imread("tests/data/imgproc/astronaut.png", &DecodeOptions::default())?;
//! if let Outcome::Regions(faces) = pipeline.process(&photo.view())?.outcome {
//!     for face in faces {
//!         println!("{:?}: {:?}", face.detection.bbox, face.outcome);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::classification::{classify_outputs, Class, ClassifySettings};
use crate::detection::{Detection, Detector};
use crate::error::{Error, Result};
use crate::landmarks::{landmarks, LandmarkSettings, Landmarks, RotatedRect};
use crate::segmentation::{segment, SegmentSettings, Segmentation};
use tensorcv_imgproc::geometry::Transform;
use tensorcv_imgproc::tensor::Tensor;
use tensorcv_imgproc::warp::warp_affine;
use tensorcv_imgproc::Interpolation;
use tensorcv_imgproc::{ImageView, Rect};
use tensorcv_infer::{Model, Outputs, Session, Task};

/// What a model says about an image (or a region of it). Coordinates are source-image pixels.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// the top classes
    Classes(Vec<Class>),
    /// boxes and keypoints
    Detections(Vec<Detection>),
    /// a class (and probability) per pixel; for a [`Region`], per pixel of its rectangle
    Segmentation(Segmentation),
    /// a model with no task: each output summarised
    Outputs(Vec<OutputSummary>),
    /// points on objects, in source pixels (one entry per object found)
    Landmarks(Vec<Landmarks>),
    /// two stages: each region the detector found, with what the model says about it
    Regions(Vec<Region>),
}

/// One output of a model with no task: its name, shape and value range.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSummary {
    /// the output's name
    pub name: String,
    /// its shape
    pub shape: Vec<usize>,
    /// the smallest value
    pub min: f32,
    /// the largest value
    pub max: f32,
    /// the mean
    pub mean: f64,
}

/// A region of a two-stage run: the first model's detection, the rectangle the second model
/// saw (grown, squared and padded as its card asks) and what it found there.
#[derive(Clone, Debug)]
pub struct Region {
    /// the detection, in source pixels
    pub detection: Detection,
    /// the crop given to the second model (for a turned crop, the part of the image around
    /// it)
    pub rect: Rect,
    /// the turned crop given to a landmark model
    pub roi: Option<RotatedRect>,
    /// the crop came from the previous frame's landmarks, not from the detector (tracking)
    pub tracked: bool,
    /// the second model's outcome: detections in source pixels, a segmentation of `rect`
    pub outcome: Outcome,
}

/// Milliseconds spent per stage (both stages added up in a two-stage run).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timings {
    /// image → tensor
    pub preprocess: f64,
    /// the model(s)
    pub inference: f64,
    /// outputs → results
    pub postprocess: f64,
}

/// The result of one image.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// the source image's width
    pub width: usize,
    /// the source image's height
    pub height: usize,
    /// what the model(s) found
    pub outcome: Outcome,
    /// time per stage
    pub timings: Timings,
}

/// The post-processing a model's card asks for, made once per model.
#[derive(Clone, Debug)]
pub enum Postprocess {
    /// `[classification]`
    Classify {
        /// the card's settings
        settings: ClassifySettings,
        /// the card's labels
        labels: Vec<String>,
    },
    /// `[detection]`
    Detect(Box<Detector>),
    /// `[segmentation]`
    Segment {
        /// the card's settings
        settings: SegmentSettings,
        /// the card's labels
        labels: Vec<String>,
    },
    /// `[landmarks]`
    Landmarks {
        /// the card's settings
        settings: Box<LandmarkSettings>,
        /// the card's labels
        labels: Vec<String>,
        /// the model input's width and height
        input: (usize, usize),
    },
    /// no task: summarise every output
    Summarize,
}

/// Settings a caller changes for one image (a server request's thresholds), over the card's.
/// Each applies where the task has it; `None` keeps the card's.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Overrides {
    /// the lowest score reported: classification `score_threshold`, detection `min_score`,
    /// landmarks `min_score` (presence) (0 to 1)
    pub score_threshold: Option<f32>,
    /// classes reported (classification `top_k`, at least 1)
    pub top_k: Option<usize>,
    /// detection `iou_threshold` (0 to 1)
    pub iou_threshold: Option<f32>,
    /// detection `max_detections` (at least 1)
    pub max_detections: Option<usize>,
    /// segmentation `threshold` (0 to 1)
    pub mask_threshold: Option<f32>,
}

impl Overrides {
    /// No setting changed.
    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    /// Every value in its range; the error names the setting.
    pub fn validate(&self) -> Result<()> {
        let unit = |name: &'static str, v: Option<f32>| match v {
            Some(v) if !(0.0..=1.0).contains(&v) => Err(Error::Invalid {
                setting: name,
                message: format!("{v} is not a number from 0 to 1"),
            }),
            _ => Ok(()),
        };
        unit("score_threshold", self.score_threshold)?;
        unit("iou_threshold", self.iou_threshold)?;
        unit("mask_threshold", self.mask_threshold)?;
        let count = |name: &'static str, v: Option<usize>, max: usize| match v {
            Some(v) if !(1..=max).contains(&v) => Err(Error::Invalid {
                setting: name,
                message: format!("{v} is not a count from 1 to {max}"),
            }),
            _ => Ok(()),
        };
        count("top_k", self.top_k, 10_000)?;
        count(
            "max_detections",
            self.max_detections,
            crate::detection::DetectSettings::MAX_DETECTIONS,
        )
    }
}

impl Postprocess {
    /// The post-processing of `task` (`None`: the task the card names) for `model`. A card
    /// naming another task is an error; a card with no task (`raw`) takes any.
    pub fn for_model(model: &Model, task: Option<Task>) -> Result<Self> {
        let card = model.card();
        let task = match task {
            Some(t) if t != Task::Raw && card.model.task != Task::Raw && t != card.model.task => {
                return Err(Error::Card {
                    section: "model",
                    message: format!(
                        "the card says task = \"{}\", not {}",
                        card.model.task.name(),
                        t.name()
                    ),
                })
            }
            Some(t) => t,
            None => card.model.task,
        };
        let labels = card.labels.clone();
        let post = match task {
            Task::Classification => Postprocess::Classify {
                settings: ClassifySettings::from_card(card)?,
                labels,
            },
            Task::Detection => Postprocess::Detect(Box::new(Detector::for_model(model)?)),
            Task::Segmentation => Postprocess::Segment {
                settings: SegmentSettings::from_card(card)?,
                labels,
            },
            Task::Landmarks => Postprocess::Landmarks {
                settings: Box::new(LandmarkSettings::from_card(card)?),
                labels,
                input: (model.input_spec().width, model.input_spec().height),
            },
            Task::Raw => Postprocess::Summarize,
        };
        post.check(model)?;
        Ok(post)
    }

    /// This post-processing with `overrides` applied (checked first); borrowed when there are
    /// none.
    pub fn with_overrides(&self, overrides: &Overrides) -> Result<std::borrow::Cow<'_, Self>> {
        use std::borrow::Cow;
        overrides.validate()?;
        if overrides.is_empty() {
            return Ok(Cow::Borrowed(self));
        }
        let o = overrides;
        let mut post = self.clone();
        match &mut post {
            Postprocess::Classify { settings, .. } => {
                settings.score_threshold = o.score_threshold.unwrap_or(settings.score_threshold);
                settings.top_k = o.top_k.unwrap_or(settings.top_k);
            }
            Postprocess::Detect(d) => {
                d.adjust(o.score_threshold, o.iou_threshold, o.max_detections)
            }
            Postprocess::Segment { settings, .. } => {
                settings.threshold = o.mask_threshold.unwrap_or(settings.threshold);
            }
            Postprocess::Landmarks { settings, .. } => {
                settings.min_score = o.score_threshold.unwrap_or(settings.min_score);
            }
            Postprocess::Summarize => {}
        }
        Ok(Cow::Owned(post))
    }

    /// The outputs the settings name (they must exist).
    fn named_outputs(&self) -> Vec<&str> {
        match self {
            Postprocess::Classify { settings, .. } => {
                settings.output.as_deref().into_iter().collect()
            }
            Postprocess::Segment { settings, .. } => {
                settings.output.as_deref().into_iter().collect()
            }
            Postprocess::Detect(d) => {
                let s = d.settings();
                [
                    Some(s.boxes.as_str()),
                    s.scores.as_deref(),
                    s.classes.as_deref(),
                    s.num_detections.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect()
            }
            Postprocess::Landmarks { settings, .. } => settings.named_outputs(),
            Postprocess::Summarize => Vec::new(),
        }
    }

    /// Check the settings against `model` once, at load: every output they name exists, and
    /// (where the model fixes its output shapes) post-processing runs on zero outputs of those
    /// shapes — so a card naming a missing output or expecting another shape fails here,
    /// naming the key, not once per frame.
    pub fn check(&self, model: &Model) -> Result<()> {
        let shapes: Vec<(&str, Option<&[usize]>)> = model.output_shapes().collect();
        for name in self.named_outputs() {
            if !shapes.iter().any(|(n, _)| *n == name) {
                return Err(tensorcv_infer::Error::UnknownOutput {
                    name: name.to_string(),
                    available: shapes
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                }
                .into());
            }
        }
        let mut values = Vec::new();
        for (_, shape) in &shapes {
            match shape {
                // an output sized by the data (detections after the model's own NMS)
                None => return Ok(()),
                Some(shape) => values.push(tensorcv_infer::ndarray::ArrayD::zeros(
                    tensorcv_infer::ndarray::IxDyn(shape),
                )),
            }
        }
        let names = shapes.iter().map(|(n, _)| n.to_string()).collect();
        let outputs = Outputs::new(names, values)?;
        let spec = model.input_spec();
        self.apply(&outputs, &Transform::IDENTITY, spec.width, spec.height)
            .map(|_| ())
    }

    /// The task this post-processing serves.
    pub fn task(&self) -> Task {
        match self {
            Postprocess::Classify { .. } => Task::Classification,
            Postprocess::Detect(_) => Task::Detection,
            Postprocess::Segment { .. } => Task::Segmentation,
            Postprocess::Landmarks { .. } => Task::Landmarks,
            Postprocess::Summarize => Task::Raw,
        }
    }

    /// The lines between landmark points the card gives (empty for other tasks).
    pub fn connections(&self) -> &[[usize; 2]] {
        match self {
            Postprocess::Landmarks { settings, .. } => &settings.connections,
            _ => &[],
        }
    }

    /// The landmark settings (`None` for other tasks).
    pub fn landmark_settings(&self) -> Option<&LandmarkSettings> {
        match self {
            Postprocess::Landmarks { settings, .. } => Some(settings),
            _ => None,
        }
    }

    /// The class labels (empty when the card has none).
    pub fn labels(&self) -> &[String] {
        match self {
            Postprocess::Classify { labels, .. }
            | Postprocess::Segment { labels, .. }
            | Postprocess::Landmarks { labels, .. } => labels,
            Postprocess::Detect(d) => d.labels(),
            Postprocess::Summarize => &[],
        }
    }

    /// Turn one image's outputs into an outcome; `transform` maps the `width`×`height` source
    /// to the model input.
    pub fn apply(
        &self,
        outputs: &Outputs,
        transform: &Transform,
        width: usize,
        height: usize,
    ) -> Result<Outcome> {
        Ok(match self {
            Postprocess::Classify { settings, labels } => {
                Outcome::Classes(classify_outputs(outputs, settings, labels)?)
            }
            Postprocess::Detect(d) => Outcome::Detections(d.detect(outputs, transform)?),
            Postprocess::Segment { settings, .. } => {
                Outcome::Segmentation(segment(outputs, settings, transform, width, height)?)
            }
            Postprocess::Landmarks {
                settings,
                labels,
                input,
            } => {
                // the whole image as the model saw it: the source region its input covers
                let (w, h) = (input.0 as f64, input.1 as f64);
                let (cx, cy) = transform.to_source(w / 2.0, h / 2.0);
                let roi = RotatedRect {
                    center: [cx as f32, cy as f32],
                    size: [
                        (w / transform.scale_x) as f32,
                        (h / transform.scale_y) as f32,
                    ],
                    angle: 0.0,
                };
                Outcome::Landmarks(
                    landmarks(outputs, settings, labels, &roi, input.0, input.1)?
                        .into_iter()
                        .collect(),
                )
            }
            Postprocess::Summarize => Outcome::Outputs(summarize(outputs)),
        })
    }
}

impl Outcome {
    /// The segmentation of the whole `width`×`height` image: the outcome's own, or one
    /// composed from the regions' segmentations; `None` when there is none.
    pub fn segmentation(
        &self,
        width: usize,
        height: usize,
    ) -> Result<Option<std::borrow::Cow<'_, Segmentation>>> {
        Ok(match self {
            Outcome::Segmentation(s) => Some(std::borrow::Cow::Borrowed(s)),
            Outcome::Regions(r)
                if r.iter()
                    .any(|r| matches!(r.outcome, Outcome::Segmentation(_))) =>
            {
                Some(std::borrow::Cow::Owned(Segmentation::compose(
                    width, height, r,
                )?))
            }
            _ => None,
        })
    }
}

/// Name, shape, min, max and mean of every output.
pub fn summarize(outputs: &Outputs) -> Vec<OutputSummary> {
    outputs
        .names()
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let a = outputs.by_index(i)?;
            let (min, max, sum) = a.iter().fold(
                (f32::INFINITY, f32::NEG_INFINITY, 0f64),
                |(lo, hi, s), &x| (lo.min(x), hi.max(x), s + x as f64),
            );
            Some(OutputSummary {
                name: name.clone(),
                shape: a.shape().to_vec(),
                min,
                max,
                mean: sum / a.len().max(1) as f64,
            })
        })
        .collect()
}

/// The first stage of a two-stage run.
#[derive(Debug)]
struct RegionStage {
    session: Session,
    detector: Detector,
    scale: f32,
    square: bool,
    pad: f32,
}

/// A model (and optionally a detector before it) ready to process image after image.
#[derive(Debug)]
pub struct Pipeline {
    session: Session,
    post: Postprocess,
    regions: Option<RegionStage>,
    /// the turned crop a landmark model is given, reused frame after frame
    crop: tensorcv_imgproc::Image,
    /// video: objects followed from frame to frame by their landmarks
    tracking: Option<Tracking>,
    /// at most this many objects get landmarks (the detector's best first)
    max_objects: usize,
}

/// Landmark tracking state: the crops this frame's landmarks give the next frame.
#[derive(Debug)]
struct Tracking {
    settings: crate::landmarks::RoiSettings,
    /// each followed object's next crop and its points' smoothing
    rois: Vec<(RotatedRect, crate::landmarks::Smoother)>,
    redetect_every: Option<u64>,
    frames: u64,
}

impl Pipeline {
    /// `model` for `task` (`None`: the card's).
    pub fn new(model: &Model, task: Option<Task>) -> Result<Self> {
        Ok(Pipeline {
            session: model.session()?,
            post: Postprocess::for_model(model, task)?,
            regions: None,
            crop: tensorcv_imgproc::Image::new(0, 0, tensorcv_imgproc::PixelFormat::Rgb8)?,
            tracking: None,
            max_objects: usize::MAX,
        })
    }

    /// Run `detector` first and this pipeline's model on each region it finds, cropped as the
    /// model's card says (`input.roi_scale`, `roi_square`, `roi_pad`).
    pub fn with_regions_from(mut self, detector: &Model) -> Result<Self> {
        let input = &self.session.model().card().input;
        let Postprocess::Detect(found) = Postprocess::for_model(detector, Some(Task::Detection))?
        else {
            unreachable!("a detection post-processing")
        };
        // a turned crop needs the keypoints it turns by: checked once, not object by object
        if let Some([a, b]) = self.post.landmark_settings().and_then(|s| s.roi.rotation) {
            let n = found.settings().num_keypoints;
            if a.max(b) >= n {
                return Err(Error::Card {
                    section: "landmarks",
                    message: format!(
                        "roi.rotation = [{a}, {b}] needs keypoints the detector does not give \
                         (it gives {n})"
                    ),
                });
            }
        }
        self.regions = Some(RegionStage {
            session: detector.session()?,
            detector: *found,
            scale: input.roi_scale.unwrap_or(1.0),
            square: input.roi_square.unwrap_or(false),
            pad: input.roi_pad.unwrap_or(0.0),
        });
        Ok(self)
    }

    /// Give landmarks to at most `n` objects per image (the detector's best first; with
    /// tracking, the detector runs only while fewer are followed). At least 1.
    pub fn with_max_objects(mut self, n: usize) -> Self {
        self.set_max_objects(n);
        self
    }

    /// [`Pipeline::with_max_objects`] in place.
    pub fn set_max_objects(&mut self, n: usize) {
        self.max_objects = n.max(1);
    }

    /// Follow objects through a video (MediaPipe's tracking mode): each frame's landmarks give
    /// the next frame's crop (the card's `[landmarks.track]`), and the detector runs only while
    /// fewer than the maximum objects are followed, or every `redetect_every` frames (its crops
    /// then replace the followed ones they overlap). Needs a
    /// landmark model with `[landmarks.track]` and a detector.
    pub fn with_tracking(mut self, redetect_every: Option<u64>) -> Result<Self> {
        self.set_tracking(redetect_every)?;
        Ok(self)
    }

    /// [`Pipeline::with_tracking`] in place.
    pub fn set_tracking(&mut self, redetect_every: Option<u64>) -> Result<()> {
        let Some(settings) = self.post.landmark_settings() else {
            return Err(Error::Card {
                section: "landmarks",
                message: "tracking needs a landmark model".into(),
            });
        };
        let Some(track) = settings.track.clone() else {
            return Err(Error::Card {
                section: "landmarks",
                message: "tracking needs [landmarks.track]: how the next crop is made from \
                          the points"
                    .into(),
            });
        };
        if self.regions.is_none() {
            return Err(Error::Card {
                section: "landmarks",
                message: "tracking needs a detector to find the objects first".into(),
            });
        }
        self.tracking = Some(Tracking {
            settings: track,
            rois: Vec::new(),
            redetect_every: redetect_every.filter(|&n| n > 0),
            frames: 0,
        });
        Ok(())
    }

    /// Whether the model's card says how to follow objects (`[landmarks.track]`) and a
    /// detector finds them.
    pub fn can_track(&self) -> bool {
        self.regions.is_some()
            && self
                .post
                .landmark_settings()
                .is_some_and(|s| s.track.is_some())
    }

    /// A landmark model after a detector (and the tracked crops of the last frame).
    fn process_landmarks(
        &mut self,
        image: &ImageView<'_>,
        mut t: Timings,
        mut clock: Stopwatch,
        ms: Option<f64>,
    ) -> Result<Analysis> {
        use crate::landmarks::Smoother;
        let (width, height) = (image.width(), image.height());
        let Postprocess::Landmarks {
            settings,
            labels,
            input,
        } = &self.post
        else {
            unreachable!("called for landmark models")
        };
        let stage = self.regions.as_mut().expect("called with a detector");
        let max = self.max_objects;
        // crops followed from the last frame first, then the detector's where there is room
        let mut crops: Vec<(Option<Detection>, RotatedRect, Smoother)> = match &mut self.tracking {
            Some(tr) => std::mem::take(&mut tr.rois)
                .into_iter()
                .map(|(r, s)| (None, r, s))
                .collect(),
            None => Vec::new(),
        };
        crops.truncate(max);
        // every N frames the detector's crops replace the followed ones they overlap (drift
        // is reset); otherwise it runs only while there is room for more objects
        let forced = self.tracking.as_ref().is_some_and(|tr| {
            tr.redetect_every
                .is_some_and(|n| tr.frames.is_multiple_of(n))
        });
        let redetect = self.tracking.is_none() || crops.len() < max || forced;
        if redetect {
            let transform = stage.session.prepare(image)?;
            t.preprocess += clock.lap();
            let outputs = stage.session.run_prepared()?;
            t.inference += clock.lap();
            let found = stage.detector.detect(&outputs, &transform)?;
            let followed = crops.len();
            for d in found {
                let Some(roi) = settings.roi.rect(d.bbox, &d.keypoints) else {
                    continue;
                };
                // an object followed already is not taken twice (MediaPipe's association);
                // on a forced re-detection the detector's crop replaces the followed one
                let same = crops[..followed]
                    .iter()
                    .position(|(_, r, _)| iou(r.bounds(), roi.bounds()) > 0.5);
                if let Some(j) = same {
                    if forced && crops[j].0.is_none() {
                        crops[j].0 = Some(d);
                        crops[j].1 = roi;
                    }
                    continue;
                }
                if crops.len() >= max {
                    break;
                }
                crops.push((Some(d), roi, Smoother::default()));
            }
            t.postprocess += clock.lap();
        }
        let (w, h) = *input;
        let mut regions = Vec::with_capacity(crops.len());
        let mut next = Vec::new();
        for (detection, roi, mut smoother) in crops {
            let Some(rect) = bounds_in(&roi, width, height) else {
                continue;
            };
            self.crop.reshape(w, h, image.format())?;
            warp_affine(
                image,
                &mut self.crop.view_mut(),
                &roi.crop_transform(w, h),
                Interpolation::Linear,
                settings.border,
                &[0; 4],
            )?;
            self.session.prepare(&self.crop.view())?;
            t.preprocess += clock.lap();
            let outputs = self.session.run_prepared()?;
            t.inference += clock.lap();
            let mut found = landmarks(&outputs, settings, labels, &roi, w, h)?;
            if let (Some(tr), Some(l)) = (self.tracking.as_ref(), found.as_mut()) {
                // the next crop from the points as the model gave them; the smoothed ones
                // are the answer
                if let Some(r) = tr.settings.rect_from_points(&l.points) {
                    if let (Some(cfg), Some(ms)) = (&settings.smoothing, ms) {
                        smoother.apply(cfg, &mut l.points, ms);
                    }
                    next.push((r, smoother));
                }
            }
            let tracked = detection.is_none();
            let detection = match detection {
                Some(d) => d,
                // a followed object: its box is the points'
                None => match &found {
                    Some(l) => Detection {
                        bbox: l.bbox(),
                        score: l.score.unwrap_or(1.0),
                        class: 0,
                        label: stage.detector.labels().first().cloned(),
                        keypoints: Vec::new(),
                    },
                    None => {
                        t.postprocess += clock.lap();
                        continue;
                    }
                },
            };
            regions.push(Region {
                detection,
                rect,
                roi: Some(roi),
                tracked,
                outcome: Outcome::Landmarks(found.into_iter().collect()),
            });
            t.postprocess += clock.lap();
        }
        if let Some(tr) = self.tracking.as_mut() {
            tr.rois = next;
            tr.frames += 1;
        }
        Ok(Analysis {
            width,
            height,
            outcome: Outcome::Regions(regions),
            timings: t,
        })
    }

    /// The model's post-processing.
    pub fn postprocess(&self) -> &Postprocess {
        &self.post
    }

    /// The model's input tensor as the last image (or region) made it.
    pub fn input(&self) -> &Tensor {
        self.session.input()
    }

    /// Analyse one image (any pixel format).
    pub fn process(&mut self, image: &ImageView<'_>) -> Result<Analysis> {
        self.process_at(image, None)
    }

    /// Analyse one frame of a video shown at `ms` milliseconds: as [`Pipeline::process`], and
    /// followed objects' points are smoothed over time when the card asks
    /// (`[landmarks.smoothing]`).
    pub fn process_at(&mut self, image: &ImageView<'_>, ms: Option<f64>) -> Result<Analysis> {
        let (width, height) = (image.width(), image.height());
        let mut t = Timings::default();
        let mut clock = Stopwatch::start();
        let Some(stage) = self.regions.as_mut() else {
            let transform = self.session.prepare(image)?;
            t.preprocess += clock.lap();
            let outputs = self.session.run_prepared()?;
            t.inference += clock.lap();
            let outcome = self.post.apply(&outputs, &transform, width, height)?;
            t.postprocess += clock.lap();
            return Ok(Analysis {
                width,
                height,
                outcome,
                timings: t,
            });
        };
        if matches!(self.post, Postprocess::Landmarks { .. }) {
            return self.process_landmarks(image, t, clock, ms);
        }
        let transform = stage.session.prepare(image)?;
        t.preprocess += clock.lap();
        let outputs = stage.session.run_prepared()?;
        t.inference += clock.lap();
        let found = stage.detector.detect(&outputs, &transform)?;
        t.postprocess += clock.lap();
        let mut regions = Vec::with_capacity(found.len());
        for detection in found {
            let Some(rect) = detection.region(stage.scale, stage.square, stage.pad, width, height)
            else {
                continue;
            };
            let crop = image.sub_view(rect)?;
            let transform = self.session.prepare(&crop)?;
            t.preprocess += clock.lap();
            let outputs = self.session.run_prepared()?;
            t.inference += clock.lap();
            let mut outcome = self
                .post
                .apply(&outputs, &transform, rect.width, rect.height)?;
            if let Outcome::Detections(inner) = &mut outcome {
                for d in inner {
                    d.translate(rect.x as f32, rect.y as f32);
                }
            }
            regions.push(Region {
                detection,
                rect,
                roi: None,
                tracked: false,
                outcome,
            });
            t.postprocess += clock.lap();
        }
        Ok(Analysis {
            width,
            height,
            outcome: Outcome::Regions(regions),
            timings: t,
        })
    }
}

/// Intersection over union of two boxes `[x1, y1, x2, y2]`.
fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// The part of a `width`×`height` image around a turned crop (`None`: none of it is inside).
fn bounds_in(roi: &RotatedRect, width: usize, height: usize) -> Option<Rect> {
    let [x1, y1, x2, y2] = roi.bounds();
    let left = x1.floor().clamp(0.0, width as f32) as usize;
    let top = y1.floor().clamp(0.0, height as f32) as usize;
    let right = x2.ceil().clamp(0.0, width as f32) as usize;
    let bottom = y2.ceil().clamp(0.0, height as f32) as usize;
    (right > left && bottom > top).then_some(Rect {
        x: left,
        y: top,
        width: right - left,
        height: bottom - top,
    })
}

/// Milliseconds between laps. `wasm32-unknown-unknown` has no clock of its own (`Instant::now`
/// panics there): it laps by the host's clock given to [`set_clock`] (the browser package gives
/// `performance.now`), zero without one.
struct Stopwatch {
    last: f64,
}

impl Stopwatch {
    fn start() -> Self {
        Stopwatch { last: now_ms() }
    }

    fn lap(&mut self) -> f64 {
        let now = now_ms();
        let ms = (now - self.last).max(0.0);
        self.last = now;
        ms
    }
}

/// The host's clock, in milliseconds from any fixed point (`wasm32-unknown-unknown` only).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
static CLOCK: std::sync::OnceLock<fn() -> f64> = std::sync::OnceLock::new();

/// Give the pipeline a clock where the platform has none (`wasm32-unknown-unknown`: the
/// browser's `performance.now`), for [`Timings`]. The first clock given stays; elsewhere
/// the standard clock is used and this does nothing.
pub fn set_clock(clock: fn() -> f64) {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    let _ = CLOCK.set(clock);
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    let _ = clock;
}

fn now_ms() -> f64 {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    return CLOCK.get().map_or(0.0, |c| c());
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
            * 1e3
    }
}

impl Segmentation {
    /// One segmentation of the whole `width`×`height` image from the segmentations of regions
    /// (later regions over earlier ones where they overlap; class 0 elsewhere).
    pub fn compose(width: usize, height: usize, regions: &[Region]) -> Result<Segmentation> {
        let parts: Vec<(&Segmentation, Rect)> = regions
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Segmentation(s) => Some((s, r.rect)),
                _ => None,
            })
            .collect();
        let num_classes = parts.iter().map(|(s, _)| s.num_classes).max().unwrap_or(2);
        let probabilistic = !parts.is_empty() && parts.iter().all(|(s, _)| s.probability.is_some());
        let mut classes =
            tensorcv_imgproc::Image::new(width, height, tensorcv_imgproc::PixelFormat::Gray8)?;
        let mut probability = probabilistic.then(|| vec![0f32; width * height]);
        for (s, rect) in parts {
            let (rw, rh) = (s.classes.width(), s.classes.height());
            if rect.x + rw > width || rect.y + rh > height {
                return Err(Error::Output {
                    output: "segmentation".into(),
                    message: format!(
                        "a {rw}x{rh} region at {rect:?} is outside the {width}x{height} image"
                    ),
                });
            }
            for y in 0..rh {
                let src = &s.classes.as_bytes()[y * rw..(y + 1) * rw];
                let at = (rect.y + y) * width + rect.x;
                classes.as_bytes_mut()[at..at + rw].copy_from_slice(src);
                if let (Some(dst), Some(p)) = (probability.as_mut(), s.probability.as_ref()) {
                    dst[at..at + rw].copy_from_slice(&p[y * rw..(y + 1) * rw]);
                }
            }
        }
        Ok(Segmentation {
            classes,
            probability,
            num_classes,
        })
    }
}
