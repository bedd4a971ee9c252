//! Non-maximum suppression: hard (keep the best, drop what overlaps it) and weighted (MediaPipe's:
//! the best box's score, with the score-weighted mean of everything overlapping it).

use super::Detection;
use serde::Deserialize;

/// How overlapping detections are merged.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NmsKind {
    /// keep the highest-scoring box, drop the ones overlapping it
    #[default]
    Hard,
    /// replace the highest-scoring box by the score-weighted mean (box and keypoints) of every
    /// box overlapping it, itself included; its score stays (MediaPipe's `WEIGHTED`)
    Weighted,
    /// no suppression
    None,
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes (0 when either is empty).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = a[2].min(b[2]) - a[0].max(b[0]);
    let ih = a[3].min(b[3]) - a[1].max(b[1]);
    if iw <= 0.0 || ih <= 0.0 {
        return 0.0;
    }
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Suppress overlaps (IoU above `iou_threshold`) among `detections`, per class unless
/// `class_agnostic`; at most `max_detections` are kept, best first.
pub fn nms(
    mut detections: Vec<Detection>,
    kind: NmsKind,
    iou_threshold: f32,
    class_agnostic: bool,
    max_detections: usize,
) -> Vec<Detection> {
    // best first; equal scores keep their decoding order (a stable sort)
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    if kind == NmsKind::None {
        detections.truncate(max_detections);
        return detections;
    }
    let mut kept = Vec::new();
    let mut rest = detections;
    while !rest.is_empty() && kept.len() < max_detections {
        let best = rest.remove(0);
        let (overlapping, others): (Vec<_>, Vec<_>) = rest.into_iter().partition(|d| {
            (class_agnostic || d.class == best.class) && iou(&best.bbox, &d.bbox) > iou_threshold
        });
        rest = others;
        kept.push(match kind {
            NmsKind::Weighted if !overlapping.is_empty() => weighted(best, &overlapping),
            _ => best,
        });
    }
    kept
}

/// The score-weighted mean of `best` and `overlapping` (boxes and keypoints), with `best`'s
/// score and class.
fn weighted(best: Detection, overlapping: &[Detection]) -> Detection {
    let all = std::iter::once(&best).chain(overlapping);
    let total: f32 = all.clone().map(|d| d.score).sum();
    let mut bbox = [0f32; 4];
    let mut keypoints = vec![[0f32; 2]; best.keypoints.len()];
    for d in all {
        let w = d.score / total;
        for (b, v) in bbox.iter_mut().zip(d.bbox) {
            *b += v * w;
        }
        for (k, v) in keypoints.iter_mut().zip(&d.keypoints) {
            k[0] += v[0] * w;
            k[1] += v[1] * w;
        }
    }
    Detection {
        bbox,
        keypoints,
        ..best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(bbox: [f32; 4], score: f32, class: usize) -> Detection {
        Detection {
            bbox,
            score,
            class,
            label: None,
            keypoints: vec![[bbox[0], bbox[1]]],
        }
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 1.0, 3.0, 3.0]), 1.0 / 7.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[1.0, 0.0, 2.0, 1.0]), 0.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[0.0, 0.0, 1.0, 1.0]), 1.0);
    }

    #[test]
    fn hard_nms_keeps_the_best_of_each_cluster_per_class() {
        let d = vec![
            det([0.0, 0.0, 10.0, 10.0], 0.8, 0),
            det([1.0, 1.0, 11.0, 11.0], 0.9, 0), // IoU 0.68 with the first
            det([1.0, 1.0, 11.0, 11.0], 0.7, 1), // same place, other class
            det([50.0, 50.0, 60.0, 60.0], 0.6, 0),
        ];
        let k = nms(d.clone(), NmsKind::Hard, 0.5, false, 10);
        let scores: Vec<f32> = k.iter().map(|d| d.score).collect();
        assert_eq!(scores, [0.9, 0.7, 0.6]);
        let k = nms(d.clone(), NmsKind::Hard, 0.5, true, 10);
        let scores: Vec<f32> = k.iter().map(|d| d.score).collect();
        assert_eq!(scores, [0.9, 0.6]);
        assert_eq!(nms(d.clone(), NmsKind::Hard, 0.5, false, 1).len(), 1);
        assert_eq!(nms(d, NmsKind::None, 0.5, false, 3).len(), 3);
    }

    #[test]
    fn weighted_nms_blends_by_score() {
        let d = vec![
            det([0.0, 0.0, 10.0, 10.0], 0.75, 0),
            det([2.0, 2.0, 12.0, 12.0], 0.25, 0), // IoU 64/136 = 0.47
        ];
        let k = nms(d.clone(), NmsKind::Weighted, 0.3, false, 10);
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].score, 0.75);
        assert_eq!(k[0].bbox, [0.5, 0.5, 10.5, 10.5]);
        assert_eq!(k[0].keypoints, vec![[0.5, 0.5]]);
        // below the threshold they stay apart, unblended
        let k = nms(d, NmsKind::Weighted, 0.5, false, 10);
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].bbox, [0.0, 0.0, 10.0, 10.0]);
    }
}
