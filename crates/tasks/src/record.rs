//! The record of one image or frame, as `tensorcv --json` prints it (one JSON object per line):
//! serde types, so a program using the libraries emits the same schema. Fields that do not
//! apply are left out; numbers are rounded as the command prints them (scores to 5 places,
//! pixels to 2, milliseconds to 3) and held as `f64`, so `serde_json::to_string` prints them
//! as they always were. Fields are declared in the order they are printed.

use crate::classification::Class;
use crate::detection::Detection;
use crate::landmarks::Landmarks;
use crate::pipeline::Outcome;
use crate::segmentation::{ClassShare, Segmentation};
use serde::Serialize;

/// `v` rounded to `places` decimals (how every record's numbers are printed).
pub fn round(v: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (v * p).round() / p
}

/// One input's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// the top classes (classification)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<ClassRecord>>,
    /// boxes (detection), or the regions of a two-stage run with what the second model found
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detections: Option<Vec<DetectionRecord>>,
    /// the frame's index in its source
    pub frame: u64,
    /// the image's height (decoded)
    pub height: usize,
    /// points on each object a landmark model found
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<Vec<LandmarkRecord>>,
    /// each output summarised (a model with no task)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<OutputRecord>>,
    /// the image was decoded reduced: `width`, `height` and every coordinate are the decoded
    /// image's; divided by `scale` they are the file's
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// the whole image's segmentation
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<SegmentationRecord>,
    /// the file, or the stream's name
    pub source: String,
    /// when the frame is shown in its stream
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<f64>,
    /// time per stage
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings_ms: Option<TimingsRecord>,
    /// the image's width (decoded)
    pub width: usize,
}

/// A class and its score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassRecord {
    pub index: usize,
    pub label: Option<String>,
    pub score: f64,
}

/// A class's share of the pixels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShareRecord {
    pub fraction: f64,
    pub index: usize,
    pub label: Option<String>,
}

/// A detection; in a two-stage run, also the region the second model saw and what it found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DetectionRecord {
    /// `[x1, y1, x2, y2]` in image pixels
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    pub class: usize,
    /// the second model's classes for this region
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<ClassRecord>>,
    /// the second model's detections in this region
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detections: Option<Vec<DetectionRecord>>,
    /// `[x, y]` each (left out when there are none)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keypoints: Option<Vec<[f64; 2]>>,
    pub label: Option<String>,
    /// the second model's outputs in this region, summarised (a model with no task)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<OutputRecord>>,
    /// the crop the second model saw, `[x1, y1, x2, y2]`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<[usize; 4]>,
    pub score: f64,
    /// the second model's segmentation of this region
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<SegmentationRecord>,
    /// `true` when the region was followed from the last frame's landmarks, not detected
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracked: Option<bool>,
}

/// One object's landmarks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LandmarkRecord {
    /// the box around the points, `[x1, y1, x2, y2]`
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    /// the two-way label (handedness), when the model gives one
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// the label's probability
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_score: Option<f64>,
    /// `[x, y, z]` in image pixels (`z` in the scale of `x`, smaller is nearer)
    pub points: Vec<[f64; 3]>,
    /// per point: presence probability
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence: Option<Vec<f64>>,
    /// the turned crop the model saw
    pub roi: RoiRecord,
    /// the object's presence score
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// per point: visibility probability
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Vec<f64>>,
    /// world coordinates (metres, around the object)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world: Option<Vec<[f64; 3]>>,
}

/// A turned rectangle: center, size (pixels) and angle (degrees, clockwise on screen).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoiRecord {
    pub angle: f64,
    pub center: [f64; 2],
    pub size: [f64; 2],
}

impl LandmarkRecord {
    /// The record of one object's landmarks.
    pub fn new(l: &Landmarks) -> LandmarkRecord {
        let probs = |v: &Option<Vec<f32>>| {
            v.as_ref()
                .map(|v| v.iter().map(|&p| round(p as f64, 5)).collect())
        };
        LandmarkRecord {
            bbox: l.bbox().map(|v| round(v as f64, 2)),
            label: l.label.as_ref().map(|(t, _)| t.clone()),
            label_score: l.label.as_ref().map(|(_, p)| round(*p as f64, 5)),
            points: l
                .points
                .iter()
                .map(|p| p.map(|v| round(v as f64, 2)))
                .collect(),
            presence: probs(&l.presence),
            roi: RoiRecord {
                angle: round((l.roi.angle as f64).to_degrees(), 3),
                center: l.roi.center.map(|v| round(v as f64, 2)),
                size: l.roi.size.map(|v| round(v as f64, 2)),
            },
            score: l.score.map(|s| round(s as f64, 5)),
            visibility: probs(&l.visibility),
            world: l
                .world
                .as_ref()
                .map(|w| w.iter().map(|p| p.map(|v| round(v as f64, 5))).collect()),
        }
    }
}

/// A segmentation: each class's share, and the mask when one was saved (a file) or asked for
/// (a server's `data:` URL of the class-index PNG, or run lengths).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SegmentationRecord {
    pub classes: Vec<ShareRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// each class but the background as COCO run lengths ([`Segmentation::rle`])
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rle: Option<Vec<RleRecord>>,
}

/// One class's pixels as COCO's uncompressed RLE (`pycocotools.mask.frPyObjects` reads
/// `{"size", "counts"}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RleRecord {
    pub class: usize,
    /// out/in run lengths, column by column, starting with out
    pub counts: Vec<u32>,
    pub label: Option<String>,
    /// `[height, width]`
    pub size: [usize; 2],
}

impl RleRecord {
    /// Every class of `seg` but class 0 that has pixels.
    pub fn all(seg: &Segmentation, labels: &[String]) -> Vec<RleRecord> {
        let (w, h) = (seg.classes.width(), seg.classes.height());
        let mut present = [false; 256];
        for &c in seg.classes.as_bytes() {
            present[c as usize] = true;
        }
        (1..=255u8)
            .filter(|&c| present[c as usize])
            .map(|c| RleRecord {
                class: c as usize,
                counts: seg.rle(c),
                label: labels.get(c as usize).cloned(),
                size: [h, w],
            })
            .collect()
    }
}

/// An output of a model with no task.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputRecord {
    pub max: f64,
    pub mean: f64,
    pub min: f64,
    pub name: String,
    pub shape: Vec<usize>,
}

/// Milliseconds per stage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimingsRecord {
    pub decode: f64,
    pub inference: f64,
    pub postprocess: f64,
    pub preprocess: f64,
}

impl Record {
    /// The record of frame `frame` of `source`, `width × height` pixels, before its outcome.
    pub fn new(source: &str, frame: u64, width: usize, height: usize) -> Record {
        Record {
            classes: None,
            detections: None,
            frame,
            height,
            landmarks: None,
            outputs: None,
            scale: None,
            segmentation: None,
            source: source.to_string(),
            timestamp_ms: None,
            timings_ms: None,
            width,
        }
    }

    /// The outcome's fields: `classes`, `detections` (regions: each with what the second
    /// model found in it), `segmentation` (the whole image's, `segmentation` of
    /// [`Outcome::segmentation`], with the mask file), `outputs`.
    pub fn outcome(
        &mut self,
        outcome: &Outcome,
        segmentation: Option<&Segmentation>,
        labels: &[String],
        mask: Option<String>,
    ) {
        match outcome {
            Outcome::Classes(classes) => self.classes = Some(class_records(classes)),
            Outcome::Detections(found) => {
                self.detections = Some(found.iter().map(DetectionRecord::new).collect())
            }
            Outcome::Outputs(outputs) => self.outputs = Some(output_records(outputs)),
            Outcome::Segmentation(_) => {}
            Outcome::Landmarks(found) => {
                self.landmarks = Some(found.iter().map(LandmarkRecord::new).collect())
            }
            Outcome::Regions(regions) => {
                let found: Vec<LandmarkRecord> = regions
                    .iter()
                    .filter_map(|r| match &r.outcome {
                        Outcome::Landmarks(l) => Some(l.iter().map(LandmarkRecord::new)),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                if regions
                    .iter()
                    .any(|r| matches!(r.outcome, Outcome::Landmarks(_)))
                {
                    self.landmarks = Some(found);
                }
                let list = regions
                    .iter()
                    .map(|r| {
                        let mut entry = DetectionRecord::new(&r.detection);
                        let rect = r.rect;
                        entry.region =
                            Some([rect.x, rect.y, rect.x + rect.width, rect.y + rect.height]);
                        entry.tracked = r.tracked.then_some(true);
                        match &r.outcome {
                            Outcome::Classes(c) => entry.classes = Some(class_records(c)),
                            Outcome::Detections(d) => {
                                entry.detections =
                                    Some(d.iter().map(DetectionRecord::new).collect())
                            }
                            Outcome::Segmentation(s) => {
                                entry.segmentation = Some(SegmentationRecord {
                                    classes: share_records(&s.fractions(labels)),
                                    mask: None,
                                    rle: None,
                                })
                            }
                            // a second model with no task: its outputs summarised per region
                            Outcome::Outputs(o) => entry.outputs = Some(output_records(o)),
                            Outcome::Regions(_) | Outcome::Landmarks(_) => {}
                        }
                        entry
                    })
                    .collect();
                self.detections = Some(list);
            }
        }
        if let Some(seg) = segmentation {
            self.segmentation = Some(SegmentationRecord {
                classes: share_records(&seg.fractions(labels)),
                mask,
                rle: None,
            });
        }
    }

    /// Say the image was decoded reduced by `scale`.
    pub fn set_scale(&mut self, scale: f32) {
        self.scale = Some(scale as f64);
    }

    /// When the frame is shown in its stream, in milliseconds.
    pub fn set_timestamp(&mut self, ms: f64) {
        self.timestamp_ms = Some(round(ms, 3));
    }

    /// Milliseconds spent per stage.
    pub fn set_timings(&mut self, decode: f64, preprocess: f64, inference: f64, postprocess: f64) {
        self.timings_ms = Some(TimingsRecord {
            decode: round(decode, 3),
            inference: round(inference, 3),
            postprocess: round(postprocess, 3),
            preprocess: round(preprocess, 3),
        });
    }
}

impl DetectionRecord {
    /// A detection's record (without a region or a second model's outcome).
    pub fn new(d: &Detection) -> DetectionRecord {
        DetectionRecord {
            bbox: d.bbox.map(|v| round(v as f64, 2)),
            class: d.class,
            classes: None,
            detections: None,
            keypoints: (!d.keypoints.is_empty()).then(|| {
                d.keypoints
                    .iter()
                    .map(|k| [round(k[0] as f64, 2), round(k[1] as f64, 2)])
                    .collect()
            }),
            label: d.label.clone(),
            outputs: None,
            region: None,
            score: round(d.score as f64, 5),
            segmentation: None,
            tracked: None,
        }
    }
}

fn output_records(outputs: &[crate::pipeline::OutputSummary]) -> Vec<OutputRecord> {
    outputs
        .iter()
        .map(|o| OutputRecord {
            max: o.max as f64,
            mean: round(o.mean, 6),
            min: o.min as f64,
            name: o.name.clone(),
            shape: o.shape.clone(),
        })
        .collect()
}

fn class_records(classes: &[Class]) -> Vec<ClassRecord> {
    classes
        .iter()
        .map(|c| ClassRecord {
            index: c.index,
            label: c.label.clone(),
            score: round(c.score as f64, 5),
        })
        .collect()
}

fn share_records(shares: &[ClassShare]) -> Vec<ShareRecord> {
    shares
        .iter()
        .map(|s| ShareRecord {
            fraction: round(s.fraction as f64, 5),
            index: s.index,
            label: s.label.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command printed `f32` values through `serde_json::Value`, which widens them to
    /// `f64`; records hold them as `f64` so that serializing directly prints the same digits.
    #[test]
    fn f32_values_print_as_they_did_through_json_values() {
        for v in [0.3f32, 0.1, 1.0 / 3.0, 1e-7, 123456.79, 0.0, -2.5] {
            let through_value = serde_json::json!(v).to_string();
            let direct = serde_json::to_string(&(v as f64)).unwrap();
            assert_eq!(direct, through_value, "{v}");
        }
        let mut r = Record::new("a.png", 0, 2, 2);
        r.set_scale(0.3);
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, serde_json::to_value(&r).unwrap().to_string());
        assert!(line.contains(r#""scale":0.30000001192092896"#), "{line}");
    }
}
