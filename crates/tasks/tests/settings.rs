//! Card settings are checked when the model loads, against the model itself: a wrong output
//! name, a shape the settings do not fit, numbers out of range (NaN, infinities, sizes that
//! would exhaust memory) — each an error naming the key, before the first frame.

use std::path::PathBuf;
use tensorcv_infer::{LoadOptions, Model, ModelCard, Task};
use tensorcv_tasks::pipeline::{Pipeline, Postprocess};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A zoo model loaded with its card changed by `edit` (the card's text, line by line).
fn with_card(model: &str, edit: impl Fn(&str) -> String) -> Model {
    let path = root().join("models").join(model);
    let text = std::fs::read_to_string(path.with_extension("toml")).unwrap();
    let card = ModelCard::parse(&edit(&text), "edited.toml").unwrap();
    Model::load_with(
        &path,
        LoadOptions {
            card: Some(card),
            ..Default::default()
        },
    )
    .unwrap()
}

fn replace(from: &'static str, to: &'static str) -> impl Fn(&str) -> String {
    move |t: &str| {
        assert!(t.contains(from), "{from}");
        t.replace(from, to)
    }
}

fn err(model: &Model, task: Task) -> String {
    Postprocess::for_model(model, Some(task))
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn the_zoo_cards_pass() {
    for (file, task) in [
        ("face_detection_short_range.onnx", Task::Detection),
        ("shapes.onnx", Task::Classification),
        ("selfie_segmentation.onnx", Task::Segmentation),
        ("emotion.onnx", Task::Classification),
    ] {
        let model = Model::load(root().join("models").join(file)).unwrap();
        Postprocess::for_model(&model, Some(task)).unwrap();
    }
}

#[test]
fn an_output_the_model_lacks_fails_at_load_listing_those_it_has() {
    let m = with_card(
        "face_detection_short_range.onnx",
        replace("boxes = \"regressors\"", "boxes = \"regresors\""),
    );
    let e = err(&m, Task::Detection);
    assert!(
        e.contains("'regresors'") && e.contains("regressors") && e.contains("classificators"),
        "{e}"
    );
    let m = with_card(
        "shapes.onnx",
        replace("output = \"probabilities\"", "output = \"probs\""),
    );
    let e = err(&m, Task::Classification);
    assert!(e.contains("'probs'") && e.contains("probabilities"), "{e}");
}

#[test]
fn settings_that_do_not_fit_the_output_shapes_fail_at_load() {
    // 16 values per row, but the card now asks for 7 keypoints (18 values)
    let m = with_card(
        "face_detection_short_range.onnx",
        replace("num_keypoints = 6", "num_keypoints = 7"),
    );
    let e = err(&m, Task::Detection);
    assert!(
        e.contains("num_coords 16") && e.contains("7 keypoints"),
        "{e}"
    );
    // anchors for another model: 2 layers make 512 + 384 anchors != the model's 896 rows
    let m = with_card(
        "face_detection_short_range.onnx",
        replace("strides = [8, 16, 16, 16]", "strides = [8, 8, 16, 16]"),
    );
    let e = err(&m, Task::Detection);
    assert!(
        e.contains("output 'regressors'") && e.contains("896"),
        "{e}"
    );
    // four labels for three classes
    let m = with_card(
        "shapes.onnx",
        replace(
            "labels = [\"circle\", \"square\", \"triangle\"]",
            "labels = [\"circle\", \"square\", \"triangle\", \"star\"]",
        ),
    );
    let e = err(&m, Task::Classification);
    assert!(e.contains("4 labels for 3 class scores"), "{e}");
}

#[test]
fn numbers_out_of_range_are_refused_naming_the_key() {
    let face = "face_detection_short_range.onnx";
    for (from, to, key) in [
        ("min_score = 0.5", "min_score = nan", "min_score"),
        ("min_score = 0.5", "min_score = inf", "min_score"),
        ("iou_threshold = 0.3", "iou_threshold = nan", "iou_threshold"),
        ("iou_threshold = 0.3", "iou_threshold = 1.5", "iou_threshold"),
        (
            "iou_threshold = 0.3",
            "iou_threshold = 0.3\nmax_detections = 0",
            "max_detections",
        ),
        (
            "iou_threshold = 0.3",
            "iou_threshold = 0.3\nmax_detections = 9223372036854775807",
            "max_detections",
        ),
        ("score_clipping = 100.0", "score_clipping = -inf", "score_clipping"),
        (
            "num_keypoints = 6",
            "num_keypoints = 4611686018427387904",
            "num_keypoints",
        ),
        (
            "iou_threshold = 0.3",
            "iou_threshold = 0.3\nclass_offset = -9223372036854775808",
            "class_offset",
        ),
        ("min_scale = 0.1484375", "min_scale = nan", "min_scale"),
        ("offset = [0.5, 0.5]", "offset = [inf, 0.5]", "offset"),
        // a grid of a trillion anchors is refused before it is made
        (
            "strides = [8, 16, 16, 16]",
            "strides = [1, 1, 1, 1]\nfeature_map_height = [1000000, 1, 1, 1]\nfeature_map_width = [1000000, 1, 1, 1]",
            "anchors",
        ),
    ] {
        let e = err(&with_card(face, replace(from, to)), Task::Detection);
        assert!(e.contains(key), "{to}: {e}");
    }
    let e = err(
        &with_card(
            "shapes.onnx",
            replace(
                "activation = \"none\"",
                "activation = \"none\"\nscore_threshold = nan",
            ),
        ),
        Task::Classification,
    );
    assert!(e.contains("score_threshold"), "{e}");
    let e = err(
        &with_card(
            "shapes.onnx",
            replace("activation = \"none\"", "activation = \"none\"\ntop_k = 0"),
        ),
        Task::Classification,
    );
    assert!(e.contains("top_k"), "{e}");
}

#[test]
fn a_two_stage_pipeline_checks_the_detector_too() {
    let emotion = Model::load(root().join("models/emotion.onnx")).unwrap();
    let broken = with_card(
        "face_detection_short_range.onnx",
        replace("scores = \"classificators\"", "scores = \"nope\""),
    );
    let e = Pipeline::new(&emotion, Some(Task::Classification))
        .unwrap()
        .with_regions_from(&broken)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'nope'"), "{e}");
}
