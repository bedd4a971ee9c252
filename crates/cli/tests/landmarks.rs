//! `tensorcv landmarks` end to end against MediaPipe's face mesh solution
//! (`tests/data/landmarks`, made by `tools/make_landmark_refs.py`): photos in static mode, and
//! a turning clip where tracking (the next crop from this frame's points) must hold on as many
//! frames as MediaPipe's tracking mode.

mod common;
use common::{json_lines, root, scratch, tensorcv};

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("tests/data/landmarks/manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn points(v: &serde_json::Value) -> Vec<[f64; 3]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| [0, 1, 2].map(|i| p[i].as_f64().unwrap()))
        .collect()
}

/// Mean distance (x, y) between two point lists.
fn mean_error(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(p, q)| (p[0] - q[0]).hypot(p[1] - q[1]))
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn landmarks_on_photos_match_mediapipe_and_are_drawn() {
    let out = scratch("landmarks");
    let m = manifest();
    let cases = m["face_mesh"].as_array().unwrap();
    let inputs: Vec<String> = cases
        .iter()
        .map(|c| format!("tests/data/landmarks/{}", c["image"].as_str().unwrap()))
        .collect();
    let mut args = vec!["landmarks", "--json", "--save", out.to_str().unwrap()];
    args.extend(inputs.iter().map(String::as_str));
    let o = tensorcv(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let records = json_lines(&o);
    assert_eq!(records.len(), cases.len());
    for (r, case) in records.iter().zip(cases) {
        let want = case["faces"].as_array().unwrap();
        let got = r["landmarks"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{}", r["source"]);
        for w in want {
            let w = points(w);
            let best = got
                .iter()
                .map(|g| mean_error(&points(&g["points"]), &w))
                .fold(f64::INFINITY, f64::min);
            assert!(best < 0.1, "{}: mean error {best} px", r["source"]);
        }
        for g in got {
            assert_eq!(g["points"].as_array().unwrap().len(), 468);
            assert!(g["score"].as_f64().unwrap() > 0.5);
            assert!(g["roi"]["size"][0].as_f64().unwrap() > 10.0);
        }
        let stem = std::path::Path::new(r["source"].as_str().unwrap())
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(out.join(format!("{stem}.png")).exists(), "{stem} drawn");
    }
    // the human summary names the landmarks
    let o = tensorcv(&["landmarks", &inputs[0]]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("landmarks on 1 object") && text.contains("468 points"),
        "{text}"
    );
}

#[test]
fn tracking_holds_on_as_many_frames_as_mediapipe() {
    let m = manifest();
    let video = &m["video"];
    let clip = format!("tests/data/landmarks/{}", video["video"].as_str().unwrap());
    let frames = video["frames"].as_u64().unwrap() as usize;
    let run = |extra: &[&str]| {
        let mut args = vec!["landmarks", "--json", &clip];
        args.extend(extra);
        let o = tensorcv(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let records: Vec<serde_json::Value> = json_lines(&o)
            .into_iter()
            .filter(|r| r.get("frame").is_some())
            .collect();
        assert_eq!(records.len(), frames);
        records
    };
    let tracked = run(&[]);
    let reference = video["tracking"].as_array().unwrap();
    let theirs = reference
        .iter()
        .filter(|f| !f.as_array().unwrap().is_empty())
        .count();
    let mut ours = 0;
    let mut followed = 0;
    let mut errors = Vec::new();
    for (r, want) in tracked.iter().zip(reference) {
        let got = r["landmarks"].as_array().unwrap();
        assert!(got.len() <= 1, "one face followed at most");
        if let (Some(g), Some(w)) = (got.first(), want.as_array().unwrap().first()) {
            errors.push(mean_error(&points(&g["points"]), &points(w)));
        }
        ours += got.len();
        followed += r["detections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["tracked"] == true)
            .count();
    }
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    let max = errors.iter().copied().fold(0.0, f64::max);
    println!(
        "tracking: a face in {ours} of {frames} frames (MediaPipe {theirs}); {followed} followed \
         without the detector; mean error {mean:.3} px, worst frame {max:.3} px"
    );
    assert!(ours + 1 >= theirs, "ours {ours}, MediaPipe {theirs}");
    assert!(
        followed * 2 > frames,
        "the detector ran on most frames: {followed} followed"
    );
    // the face is about 100 px: a third of a pixel on average, under 2 px on any frame
    assert!(mean < 0.35 && max < 2.0, "mean {mean} px, worst {max} px");
    // re-detecting every 5 frames: the detector's face is associated with the followed one
    // (never two), and fewer frames go without the detector
    let every5 = run(&["--redetect-every", "5"]);
    let mut followed5 = 0;
    for r in &every5 {
        assert!(
            r["landmarks"].as_array().unwrap().len() <= 1,
            "{}",
            r["frame"]
        );
        followed5 += r["detections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["tracked"] == true)
            .count();
    }
    assert!(
        followed5 < followed,
        "{followed5} followed, {followed} without re-detection"
    );
    // without tracking the detector must find the face in every frame, and loses it more
    let static_run = run(&["--no-tracking"]);
    let alone = static_run
        .iter()
        .filter(|r| !r["landmarks"].as_array().unwrap().is_empty())
        .count();
    println!("static: a face in {alone} of {frames} frames");
    assert!(alone < ours, "static {alone}, tracking {ours}");
    assert!(static_run.iter().all(|r| r["detections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d.get("tracked").is_none())));
}

#[test]
fn landmark_flags_are_checked() {
    for (args, want) in [
        (
            vec![
                "detect",
                "--max-objects",
                "2",
                "tests/data/imgproc/astronaut.png",
            ],
            "--max-objects",
        ),
        (
            vec![
                "landmarks",
                "--max-objects",
                "0",
                "tests/data/imgproc/astronaut.png",
            ],
            "0",
        ),
        (
            vec![
                "segment",
                "--no-tracking",
                "tests/data/imgproc/astronaut.png",
            ],
            "--no-tracking",
        ),
        (
            vec![
                "detect",
                "--detector-threshold",
                "0.5",
                "tests/data/imgproc/astronaut.png",
            ],
            "--detector-threshold",
        ),
        (
            vec![
                "landmarks",
                "--detector-threshold",
                "1.5",
                "tests/data/imgproc/astronaut.png",
            ],
            "1.5",
        ),
    ] {
        let o = tensorcv(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // at most one face on the two-face photo
    let o = tensorcv(&[
        "landmarks",
        "--json",
        "--max-objects",
        "1",
        "tests/data/landmarks/astronaut_pair.png",
    ]);
    assert!(o.status.success());
    assert_eq!(json_lines(&o)[0]["landmarks"].as_array().unwrap().len(), 1);
    // the detector's threshold (MediaPipe's min_detection_confidence): the faces score 0.92
    // and 0.94, so 0.93 keeps one
    let o = tensorcv(&[
        "landmarks",
        "--json",
        "--detector-threshold",
        "0.93",
        "tests/data/landmarks/astronaut_pair.png",
    ]);
    assert!(o.status.success());
    assert_eq!(json_lines(&o)[0]["landmarks"].as_array().unwrap().len(), 1);
}

#[test]
fn smoothing_from_the_card_follows_the_face_without_jumping() {
    // the face mesh with [landmarks.smoothing] added (MediaPipe's face mesh does not smooth)
    let dir = scratch("smoothing");
    std::fs::copy(
        root().join("models/face_landmark.onnx"),
        dir.join("mesh.onnx"),
    )
    .unwrap();
    let card = std::fs::read_to_string(root().join("models/face_landmark.toml")).unwrap();
    std::fs::write(
        dir.join("mesh.toml"),
        format!("{card}\n[landmarks.smoothing]\nmin_cutoff = 0.5\nbeta = 5.0\n"),
    )
    .unwrap();
    let clip = "tests/data/landmarks/turning.avi";
    let run = |model: &str| -> Vec<serde_json::Value> {
        let o = tensorcv(&["landmarks", "--json", "-m", model, clip]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        json_lines(&o)
            .into_iter()
            .filter(|r| r.get("frame").is_some())
            .collect()
    };
    let raw = run("face_mesh");
    let smooth = run(dir.join("mesh.onnx").to_str().unwrap());
    assert_eq!(raw.len(), smooth.len());
    let mut diffs = Vec::new();
    for (a, b) in raw.iter().zip(&smooth) {
        let (a, b) = (
            a["landmarks"].as_array().unwrap(),
            b["landmarks"].as_array().unwrap(),
        );
        assert_eq!(a.len(), b.len(), "the same frames have a face");
        if let (Some(a), Some(b)) = (a.first(), b.first()) {
            diffs.push(mean_error(&points(&a["points"]), &points(&b["points"])));
        }
    }
    // the first frame passes as it is; later ones are pulled back a little, never far
    assert!(diffs[0] < 1e-9, "{}", diffs[0]);
    let max = diffs.iter().copied().fold(0.0, f64::max);
    assert!(diffs.iter().any(|&d| d > 0.05), "smoothing changed nothing");
    assert!(max < 8.0, "smoothing lags {max} px");
}

#[test]
fn a_second_model_with_no_task_keeps_its_outputs_per_region() {
    // the shapes classifier without its card: a model with no task
    let dir = scratch("raw-second");
    std::fs::copy(root().join("models/shapes.onnx"), dir.join("raw.onnx")).unwrap();
    let model = dir.join("raw.onnx");
    let o = tensorcv(&[
        "run",
        "--json",
        "-m",
        model.to_str().unwrap(),
        "--roi-from",
        "face",
        "tests/data/imgproc/astronaut.png",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = &json_lines(&o)[0];
    let outputs = r["detections"][0]["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["shape"], serde_json::json!([1, 3]));
    assert!((outputs[0]["mean"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-3);
}
