//! Face mesh end to end against MediaPipe's own `face_mesh` solution (static-image mode): the
//! face detector, the turned crop, the landmark model and the projection back to the photo
//! must give the faces and points MediaPipe gives on the same photos
//! (`tests/data/landmarks/manifest.json`, made by `tools/make_landmark_refs.py`), upright,
//! turned and side by side.

use std::path::PathBuf;
use tensorcv_imgproc::io::{imread, DecodeOptions};
use tensorcv_infer::Model;
use tensorcv_tasks::pipeline::{Outcome, Pipeline};
use tensorcv_tasks::Landmarks;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mesh_pipeline() -> Pipeline {
    let mesh = Model::load(root().join("models/face_landmark.onnx")).unwrap();
    let face = Model::load(root().join("models/face_detection_short_range.onnx")).unwrap();
    Pipeline::new(&mesh, None)
        .unwrap()
        .with_regions_from(&face)
        .unwrap()
}

fn found(outcome: &Outcome) -> Vec<Landmarks> {
    match outcome {
        Outcome::Regions(regions) => regions
            .iter()
            .flat_map(|r| match &r.outcome {
                Outcome::Landmarks(l) => l.clone(),
                _ => Vec::new(),
            })
            .collect(),
        other => panic!("not regions: {other:?}"),
    }
}

fn points(v: &serde_json::Value) -> Vec<[f32; 3]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let p = p.as_array().unwrap();
            [0, 1, 2].map(|i| p[i].as_f64().unwrap() as f32)
        })
        .collect()
}

#[test]
fn face_mesh_matches_mediapipe() {
    let dir = root().join("tests/data/landmarks");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let cases = manifest["face_mesh"].as_array().unwrap();
    assert!(cases.len() >= 4);
    let mut pipeline = mesh_pipeline();
    let mut report = Vec::new();
    let mut worst = 0f32;
    let mut worst_max = 0f32;
    for case in cases {
        let name = case["image"].as_str().unwrap();
        let photo = imread(dir.join(name), &DecodeOptions::default()).unwrap();
        let got = found(&pipeline.process(&photo.view()).unwrap().outcome);
        let want: Vec<Vec<[f32; 3]>> = case["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(points)
            .collect();
        assert_eq!(got.len(), want.len(), "{name}: faces found");
        for w in &want {
            // the face of ours nearest this one of MediaPipe's (by the nose tip, point 1)
            let g = got
                .iter()
                .min_by(|a, b| {
                    let d =
                        |l: &Landmarks| (l.points[1][0] - w[1][0]).hypot(l.points[1][1] - w[1][1]);
                    d(a).total_cmp(&d(b))
                })
                .unwrap();
            assert_eq!(g.points.len(), 468);
            let (x1, x2) = w
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
            let (y1, y2) = w
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
            let size = (x2 - x1).max(y2 - y1);
            let errs: Vec<f32> = g
                .points
                .iter()
                .zip(w)
                .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
                .collect();
            let mean = errs.iter().sum::<f32>() / errs.len() as f32;
            let max = errs.iter().copied().fold(0.0, f32::max);
            let z_mean = g
                .points
                .iter()
                .zip(w)
                .map(|(a, b)| (a[2] - b[2]).abs())
                .sum::<f32>()
                / errs.len() as f32;
            worst = worst.max(mean / size);
            worst_max = worst_max.max(max);
            report.push(format!(
                "{name:<26} face {size:6.1} px: mean {mean:.3} px ({:.4} of the face), max {max:.3} px, z mean {z_mean:.3} px, score {:.3}",
                mean / size,
                g.score.unwrap_or(f32::NAN)
            ));
        }
    }
    println!("{}", report.join("\n"));
    // the same crops (the detector's letterbox and the landmark crop both warped as MediaPipe
    // warps them) give the same points to a few hundredths of a pixel; the rest is TFLite
    // (XNNPACK) against tract on the ONNX conversion
    assert!(
        worst < 0.001,
        "worst mean error {worst} of the face size\n{}",
        report.join("\n")
    );
    assert!(
        worst_max < 0.25,
        "worst point error {worst_max} px\n{}",
        report.join("\n")
    );
}

#[test]
fn landmark_crops_reuse_their_buffers_and_repeat() {
    let photo = imread(
        root().join("tests/data/landmarks/astronaut_320.png"),
        &DecodeOptions::default(),
    )
    .unwrap();
    let mut pipeline = mesh_pipeline();
    let a = found(&pipeline.process(&photo.view()).unwrap().outcome);
    let b = found(&pipeline.process(&photo.view()).unwrap().outcome);
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
    // the crop is turned and contains the points
    let roi = a[0].roi;
    let [x1, y1, x2, y2] = roi.bounds();
    for p in &a[0].points {
        assert!(p[0] >= x1 && p[0] <= x2 && p[1] >= y1 && p[1] <= y2);
    }
}

#[test]
fn a_crop_turned_by_keypoints_the_detector_lacks_is_refused_at_load() {
    use tensorcv_infer::{LoadOptions, ModelFile};
    let mut file = ModelFile::open(root().join("models/face_landmark.onnx")).unwrap();
    let table = file.card_mut().landmarks.as_mut().unwrap();
    table["roi"]["rotation"] = toml::Value::Array(vec![0.into(), 9.into()]);
    let mesh = file.build(&LoadOptions::default()).unwrap();
    let face = Model::load(root().join("models/face_detection_short_range.onnx")).unwrap();
    let e = Pipeline::new(&mesh, None)
        .unwrap()
        .with_regions_from(&face)
        .unwrap_err()
        .to_string();
    assert!(e.contains("roi.rotation") && e.contains("gives 6"), "{e}");
    // tracking needs a detector
    let e = Pipeline::new(&mesh, None)
        .unwrap()
        .with_tracking(None)
        .unwrap_err();
    assert!(e.to_string().contains("detector"), "{e}");
}
