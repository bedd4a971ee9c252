//! Anchors and non-maximum suppression against MediaPipe's own calculators, run alone in small
//! graphs by `tools/make_task_refs.py` (`tests/data/tasks/mediapipe_calculators.json`):
//! `SsdAnchorsCalculator` with the settings of MediaPipe's face, pose and palm detectors and an
//! SSD-MobileNet one, and `NonMaxSuppressionCalculator` (hard and weighted) on random clusters.

use std::path::PathBuf;
use tensorcv_tasks::detection::anchors::AnchorOptions;
use tensorcv_tasks::detection::nms::{nms, NmsKind};
use tensorcv_tasks::Detection;

fn refs() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/tasks/mediapipe_calculators.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f(v: &serde_json::Value) -> f32 {
    v.as_f64().unwrap() as f32
}

fn list<T>(o: &serde_json::Value, key: &str, map: impl Fn(&serde_json::Value) -> T) -> Vec<T> {
    o[key]
        .as_array()
        .map(|a| a.iter().map(map).collect())
        .unwrap_or_default()
}

#[test]
fn anchors_equal_mediapipes_ssd_anchors_calculator() {
    let r = refs();
    let configs = r["anchors"].as_object().unwrap();
    assert!(configs.len() >= 6);
    for (name, case) in configs {
        let o = &case["options"];
        let usize_of = |v: &serde_json::Value| v.as_u64().unwrap() as usize;
        let options = AnchorOptions {
            num_layers: usize_of(&o["num_layers"]),
            strides: list(o, "strides", usize_of),
            feature_map_height: list(o, "feature_map_height", usize_of),
            feature_map_width: list(o, "feature_map_width", usize_of),
            min_scale: f(&o["min_scale"]),
            max_scale: f(&o["max_scale"]),
            offset: [f(&o["anchor_offset_x"]), f(&o["anchor_offset_y"])],
            aspect_ratios: list(o, "aspect_ratios", f),
            // MediaPipe's default is 1.0
            interpolated_scale_aspect_ratio: o
                .get("interpolated_scale_aspect_ratio")
                .map(f)
                .unwrap_or(1.0),
            fixed_anchor_size: o["fixed_anchor_size"].as_bool().unwrap_or(false),
            reduce_boxes_in_lowest_layer: o["reduce_boxes_in_lowest_layer"]
                .as_bool()
                .unwrap_or(false),
        };
        let got = options
            .generate(
                usize_of(&o["input_size_width"]),
                usize_of(&o["input_size_height"]),
            )
            .unwrap();
        let want = case["anchors"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: anchor count");
        let mut max = 0f32;
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let w: Vec<f32> = w.as_array().unwrap().iter().map(f).collect();
            let d = [g.x - w[0], g.y - w[1], g.w - w[2], g.h - w[3]]
                .iter()
                .fold(0f32, |m, v| m.max(v.abs()));
            assert!(d <= 1e-6, "{name}: anchor {i} {g:?} vs MediaPipe {w:?}");
            max = max.max(d);
        }
        println!("{name}: {} anchors, max diff {max:e}", got.len());
    }
}

fn detection(v: &serde_json::Value) -> Detection {
    let b: Vec<f32> = v["box"].as_array().unwrap().iter().map(f).collect();
    Detection {
        bbox: [b[0], b[1], b[2], b[3]],
        score: f(&v["score"]),
        class: 0,
        label: None,
        keypoints: v["keypoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| [f(&k[0]), f(&k[1])])
            .collect(),
    }
}

#[test]
fn nms_equals_mediapipes_non_max_suppression_calculator() {
    let r = refs();
    let cases = r["nms"].as_array().unwrap();
    assert!(cases.len() >= 16);
    let mut blended = 0;
    for (i, case) in cases.iter().enumerate() {
        let input: Vec<Detection> = case["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(detection)
            .collect();
        let mut want: Vec<Detection> = case["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(detection)
            .collect();
        let kind = match case["algorithm"].as_str().unwrap() {
            "WEIGHTED" => NmsKind::Weighted,
            _ => NmsKind::Hard,
        };
        let max = match case["max_num_detections"].as_i64().unwrap() {
            -1 => usize::MAX,
            n => n as usize,
        };
        // MediaPipe's WEIGHTED ignores max_num_detections; tensorcv caps it (best first)
        want.truncate(max);
        let got = nms(input.clone(), kind, f(&case["threshold"]), true, max);
        assert_eq!(got.len(), want.len(), "case {i}: {got:?} vs {want:?}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                g.score, w.score,
                "case {i}: same detections in the same order"
            );
            let d = g
                .bbox
                .iter()
                .zip(&w.bbox)
                .map(|(a, b)| (a - b).abs())
                .chain(
                    g.keypoints
                        .iter()
                        .zip(&w.keypoints)
                        .flat_map(|(a, b)| [(a[0] - b[0]).abs(), (a[1] - b[1]).abs()]),
                )
                .fold(0f32, f32::max);
            assert!(d < 2e-6, "case {i}: {g:?} vs MediaPipe {w:?} ({d:e})");
            if !input.iter().any(|x| x.bbox == g.bbox) {
                blended += 1;
            }
        }
    }
    // the weighted cases did blend boxes (the test would not notice a hard NMS otherwise)
    assert!(blended >= 10, "{blended} blended boxes");
}
