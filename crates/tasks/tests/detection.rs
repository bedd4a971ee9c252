//! End to end against MediaPipe: the face detector's outputs (tract) decoded with the card's
//! anchors and settings must give the faces MediaPipe's own graph gives
//! (`tests/data/tasks/face_detections.json`, made by `tools/make_task_refs.py`).

#[path = "../../imgproc/tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use tensorcv_imgproc::io::{imread, DecodeOptions};
use tensorcv_infer::ndarray::{ArrayD, ArrayViewD};
use tensorcv_infer::Model;
use tensorcv_tasks::detection::{DetectSettings, Detector};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Outputs by name for `detect_with`: the face detector's box and score arrays.
fn by_name<'a>(
    boxes: &'a ArrayD<f32>,
    scores: &'a ArrayD<f32>,
) -> impl Fn(&str) -> tensorcv_tasks::Result<ArrayViewD<'a, f32>> {
    move |name| {
        Ok(if name == "regressors" {
            boxes.view()
        } else {
            scores.view()
        })
    }
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn blazeface_finds_mediapipes_faces() {
    let refs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/data/tasks/face_detections.json")).unwrap(),
    )
    .unwrap();
    let model = Model::load(root().join("models/face_detection_short_range.onnx")).unwrap();
    let detector = Detector::for_model(&model).unwrap();
    assert_eq!(detector.anchors().len(), 896);
    let mut session = model.session().unwrap();
    let mut faces_seen = 0;
    for (photo, want) in refs["photos"].as_object().unwrap() {
        let image = imread(root().join(photo), &DecodeOptions::default()).unwrap();
        let (outputs, transform) = session.run(&image.view()).unwrap();
        let got = detector.detect(&outputs, &transform).unwrap();
        let want = want.as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{photo}: {got:?}");
        for (g, w) in got.iter().zip(want) {
            faces_seen += 1;
            let wbox = floats(&w["box"]);
            let dbox = g
                .bbox
                .iter()
                .zip(&wbox)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            let dkey = g
                .keypoints
                .iter()
                .zip(w["keypoints"].as_array().unwrap())
                .map(|(k, w)| {
                    let w = floats(w);
                    (k[0] - w[0]).abs().max((k[1] - w[1]).abs())
                })
                .fold(0f32, f32::max);
            let dscore = (g.score - w["score"].as_f64().unwrap() as f32).abs();
            println!(
                "{photo}: box {:?} vs MediaPipe {wbox:?}: max {dbox:.3} px, keypoints max \
                 {dkey:.3} px, score {:.4} (diff {dscore:.1e})",
                g.bbox, g.score
            );
            // the card letterboxes by one affine warp, as MediaPipe's ImageToTensorCalculator
            // does (`resample = "warp"`): the same input, so the same face to float rounding
            // (it was 0.88 px apart with cv2.resize's letterbox)
            assert!(dbox <= 0.01 && dkey <= 0.01, "{photo}: beyond 0.01 px");
            assert!(dscore <= 1e-4, "{photo}: score differs by {dscore}");
            assert_eq!(g.label.as_deref(), Some("face"));
        }
    }
    assert!(faces_seen >= 1, "the references hold no face");
}

#[test]
fn detection_settings_errors_name_the_key_and_the_output() {
    let model = Model::load(root().join("models/face_detection_short_range.onnx")).unwrap();
    let mut card = model.card().clone();
    card.detection
        .as_mut()
        .unwrap()
        .insert("iou".into(), toml::Value::Float(0.3));
    let e = DetectSettings::from_card(&card).unwrap_err().to_string();
    assert!(e.contains("[detection]") && e.contains("iou"), "{e}");
    // the classifier has no [detection] table
    let emotion = Model::load(root().join("models/emotion.onnx")).unwrap();
    let e = Detector::for_model(&emotion).unwrap_err().to_string();
    assert!(e.contains("no [detection] table"), "{e}");
    // outputs that do not fit the anchors
    let detector = Detector::for_model(&model).unwrap();
    let boxes = tensorcv_infer::ndarray::ArrayD::<f32>::zeros(vec![1, 100, 16]);
    let scores = tensorcv_infer::ndarray::ArrayD::<f32>::zeros(vec![1, 896, 1]);
    let e = detector
        .detect_with(by_name(&boxes, &scores), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'regressors'") && e.contains("[1, 896, 16]") && e.contains("[1, 100, 16]"),
        "{e}"
    );
}

#[test]
fn tract_and_tflite_outputs_decode_to_the_same_faces() {
    // TFLite's raw outputs on the OpenCV-made input (tests/data/models, tools/build_zoo.py),
    // decoded by the same detector: the whole result within 1 px of tract's
    let model = Model::load(root().join("models/face_detection_short_range.onnx")).unwrap();
    let detector = Detector::for_model(&model).unwrap();
    let mut session = model.session().unwrap();
    let refs = root().join("tests/data/models");
    let mut faces = 0;
    for photo in ["astronaut", "coffee", "chelsea"] {
        let image = imread(
            root().join(format!("tests/data/imgproc/{photo}.png")),
            &DecodeOptions::default(),
        )
        .unwrap();
        let (outputs, transform) = session.run(&image.view()).unwrap();
        let ours = detector.detect(&outputs, &transform).unwrap();
        let array = |name: &str| {
            let npy = common::read_npy(&refs.join(format!("face_{photo}_tf_{name}.npy")));
            tensorcv_infer::ndarray::ArrayD::from_shape_vec(npy.shape.clone(), npy.values_f32())
                .unwrap()
        };
        let (boxes, scores) = (array("regressors"), array("classificators"));
        let theirs = detector
            .detect_with(by_name(&boxes, &scores), &transform)
            .unwrap();
        assert_eq!(ours.len(), theirs.len(), "{photo}");
        for (a, b) in ours.iter().zip(&theirs) {
            faces += 1;
            let d = a
                .bbox
                .iter()
                .zip(&b.bbox)
                .map(|(x, y)| (x - y).abs())
                .chain(
                    a.keypoints
                        .iter()
                        .zip(&b.keypoints)
                        .flat_map(|(p, q)| [(p[0] - q[0]).abs(), (p[1] - q[1]).abs()]),
                )
                .fold(0f32, f32::max);
            println!(
                "{photo}: tract {:?} vs TFLite {:?}: max {d:.4} px",
                a.bbox, b.bbox
            );
            assert!(d <= 1.0, "{photo}: {d} px");
        }
    }
    assert!(faces >= 1);
}
