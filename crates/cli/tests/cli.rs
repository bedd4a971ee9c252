//! The `tensorcv` binary end to end on the zoo and the test photos.

mod common;
use common::{json_lines, root, scratch, tensorcv};
use std::path::Path;
use std::process::{Command, Output};

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn detect_finds_the_astronauts_face_with_the_built_in_model() {
    let out = scratch("detect");
    let o = tensorcv(&[
        "detect",
        "--json",
        "tests/data/imgproc/astronaut.png",
        "tests/data/imgproc/coffee.png",
        "--save",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let records = json_lines(&o);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["source"], "tests/data/imgproc/astronaut.png");
    assert_eq!(
        (records[0]["width"].as_u64(), records[0]["height"].as_u64()),
        (Some(320), Some(320))
    );
    let faces = records[0]["detections"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    // the face, checked by eye on the annotated image: about x 78..180, y 75..178
    let b: Vec<f64> = faces[0]["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (got, want) in b.iter().zip([78.6, 75.4, 181.0, 177.7]) {
        assert!((got - want).abs() < 1.5, "{b:?}");
    }
    assert_eq!(faces[0]["label"], "face");
    assert_eq!(faces[0]["keypoints"].as_array().unwrap().len(), 6);
    assert!(records[0]["timings_ms"]["inference"].as_f64().unwrap() > 0.0);
    assert_eq!(records[1]["detections"].as_array().unwrap().len(), 0);
    // annotated images decode
    for name in ["astronaut.png", "coffee.png"] {
        let img = tensorcv_imgproc::io::imread(out.join(name), &Default::default()).unwrap();
        let src = tensorcv_imgproc::io::imread(
            root().join("tests/data/imgproc").join(name),
            &Default::default(),
        )
        .unwrap();
        assert_eq!((img.width(), img.height()), (src.width(), src.height()));
    }
}

#[test]
fn segment_reports_the_person_fraction_and_writes_masks() {
    let out = scratch("segment");
    let o = tensorcv(&[
        "segment",
        "--json",
        "--save",
        out.to_str().unwrap(),
        "tests/data/imgproc/astronaut.png",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let r = &json_lines(&o)[0];
    let classes = r["segmentation"]["classes"].as_array().unwrap();
    assert_eq!(classes[1]["label"], "person");
    // TFLite's mask gives 0.4913 (crates/tasks/tests/segmentation.rs)
    let f = classes[1]["fraction"].as_f64().unwrap();
    assert!((f - 0.4913).abs() < 1e-3, "{f}");
    let mask = r["segmentation"]["mask"].as_str().unwrap();
    assert!(Path::new(mask).exists());
    tensorcv_imgproc::io::imread(mask, &Default::default()).unwrap();
}

#[test]
fn classify_and_run_use_the_card() {
    let o = tensorcv(&[
        "classify",
        "-m",
        "shapes",
        "--top-k",
        "2",
        "tests/data/models",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (stdout, _) = text(&o);
    // the folder is walked in sorted order; each drawn shape is its own top class
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    for line in &lines {
        let (path, classes) = line.split_once(": ").unwrap();
        let drawn = path.rsplit('_').next().unwrap().trim_end_matches(".png");
        assert!(classes.starts_with(drawn), "{line}");
        assert_eq!(classes.matches(", ").count(), 1, "top-k 2: {line}");
    }
    // `run` takes the task from the card; the int8 TFLite model agrees
    let o = tensorcv(&[
        "run",
        "-m",
        "shapes_int8",
        "--json",
        "tests/data/models/shapes_3_square.png",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(json_lines(&o)[0]["classes"][0]["label"], "square");
}

#[test]
fn run_without_a_card_prints_raw_outputs() {
    let dir = scratch("raw");
    std::fs::copy(root().join("models/shapes.onnx"), dir.join("nocard.onnx")).unwrap();
    let model = dir.join("nocard.onnx");
    let o = tensorcv(&[
        "run",
        "-m",
        model.to_str().unwrap(),
        "--json",
        "tests/data/models/shapes_3_square.png",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let r = &json_lines(&o)[0];
    assert_eq!(r["outputs"][0]["name"], "probabilities");
    assert_eq!(r["outputs"][0]["shape"], serde_json::json!([1, 3]));
    let o = tensorcv(&["inspect", model.to_str().unwrap()]);
    let (stdout, _) = text(&o);
    assert!(
        stdout.contains("card: none") && stdout.contains("image [unk__"),
        "{stdout}"
    );
    let o = tensorcv(&["inspect", "--json", "--fit", "letterbox", "emotion"]);
    let v: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(v["preprocessing"]["fit"]["from"], "flag");
    assert_eq!(v["preprocessing"]["channels"]["from"], "card (built-in)");
    assert_eq!(
        v["preprocessing"]["size"]["from"],
        "inferred from the input shape"
    );
    let o = tensorcv(&["inspect", "--json", model.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    let channels = v["preprocessing"]["channels"]["from"].as_str().unwrap();
    assert!(channels.starts_with("guessed: 3 channels"), "{channels}");
    assert_eq!(v["preprocessing"]["mean"]["from"], "default");
}

#[test]
fn bad_inputs_give_one_line_messages_and_exit_codes() {
    let bad = scratch("bad");
    std::fs::write(bad.join("text.jpg"), "hello").unwrap();
    let jpeg = std::fs::read(root().join("tests/data/imgproc/bench_1080p.jpg")).unwrap();
    std::fs::write(bad.join("trunc.jpg"), &jpeg[..3000]).unwrap();
    let empty = scratch("empty");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["detect".into(), "/no/such.png".into()],
            1,
            "No such file",
        ),
        (
            vec!["detect".into(), p(&bad.join("text.jpg"))],
            1,
            "unrecognised format",
        ),
        (
            vec!["detect".into(), p(&bad.join("trunc.jpg"))],
            1,
            "truncated JPEG",
        ),
        (vec!["detect".into(), p(&empty)], 1, "holds no images"),
        (
            vec![
                "detect".into(),
                "-m".into(),
                p(&bad.join("text.jpg")),
                "x.png".into(),
            ],
            1,
            "cannot load model",
        ),
        (
            vec!["detect".into(), "-m".into(), "facex".into(), "x.png".into()],
            1,
            "built-ins: face, selfie",
        ),
        (
            vec![
                "detect".into(),
                "-m".into(),
                "emotion".into(),
                "x.png".into(),
            ],
            1,
            "not detection",
        ),
        (vec!["classify".into(), "x.png".into()], 1, "which model?"),
        (vec!["detect".into()], 2, "required"),
        (
            vec![
                "detect".into(),
                "--size".into(),
                "0x3".into(),
                "x.png".into(),
            ],
            2,
            "not a size",
        ),
        (
            vec![
                "detect".into(),
                "--fit".into(),
                "squash".into(),
                "x.png".into(),
            ],
            2,
            "letterbox",
        ),
    ];
    for (args, code, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = tensorcv(&args);
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // several inputs: the good one is still processed, the failures listed at the end
    let o = tensorcv(&[
        "detect",
        bad.join("text.jpg").to_str().unwrap(),
        "tests/data/imgproc/astronaut.png",
        bad.join("trunc.jpg").to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout.contains("astronaut.png: 1 detection"), "{stdout}");
    assert!(stderr.contains("2 inputs or frames failed"), "{stderr}");
}

#[path = "../../imgproc/tests/common/mod.rs"]
mod imgproc_common;

#[test]
fn dump_writes_npy_that_match_the_references() {
    let out = scratch("dump");
    let o = tensorcv(&[
        "detect",
        "--dump",
        out.to_str().unwrap(),
        "tests/data/imgproc/astronaut.png",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let refs = root().join("tests/data/models");
    for name in ["regressors", "classificators"] {
        let got = imgproc_common::read_npy(&out.join(format!("astronaut.{name}.npy")));
        let want = imgproc_common::read_npy(&refs.join(format!("face_astronaut_ort_{name}.npy")));
        assert_eq!(got.shape, want.shape, "{name}");
        let (g, w) = (got.values_f32(), want.values_f32());
        let diff = g
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "{name}: {diff}");
    }
    // the model input: the photo letterboxed to 128x128 in [-1, 1]
    let input = imgproc_common::read_npy(&out.join("astronaut.input.npy"));
    assert_eq!(input.shape, [1, 128, 128, 3]);
    assert_eq!(input.descr, "<f4");
    let u8_ref = imgproc_common::read_npy(&refs.join("face_astronaut_input_u8.npy"));
    let want: Vec<f32> = u8_ref
        .values_f32()
        .iter()
        .map(|v| v / 127.5 - 1.0)
        .collect();
    let diff = input
        .values_f32()
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-6, "input {diff}");
}

#[test]
fn roi_from_classifies_each_detected_face_like_tensorflow() {
    // TensorFlow (Keras) on the face MediaPipe found, cropped as the emotion card says
    // (tests/data/tasks/emotion_roi.json, tools/make_emotion_ref.py)
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/data/tasks/emotion_roi.json")).unwrap(),
    )
    .unwrap();
    let o = tensorcv(&[
        "classify",
        "-m",
        "emotion",
        "--roi-from",
        "face",
        "--json",
        "tests/data/imgproc/astronaut.png",
        "tests/data/imgproc/coffee.png",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let records = json_lines(&o);
    let faces = records[0]["detections"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    assert!(faces[0]["box"].is_array(), "each result carries its box");
    let top = &faces[0]["classes"][0];
    let top1 = want["top1"].as_str().unwrap();
    assert_eq!(top["label"], top1);
    // the crops differ by our box's sub-pixel distance from MediaPipe's
    let p = want["probabilities"][top1].as_f64().unwrap();
    assert!(
        (top["score"].as_f64().unwrap() - p).abs() < 5e-3,
        "{top} vs {p}"
    );
    assert_eq!(records[1]["detections"].as_array().unwrap().len(), 0);
}

/// IoU of two `[x1, y1, x2, y2]` JSON boxes.
fn iou(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let v = |x: &serde_json::Value| -> Vec<f64> {
        x.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (a, b) = (v(a), v(b));
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: &[f64]| (r[2] - r[0]) * (r[3] - r[1]);
    iw * ih / (area(&a) + area(&b) - iw * ih)
}

#[test]
fn roi_from_runs_detection_and_segmentation_inside_regions() {
    // the face detector again on each face, cropped 2.5x larger and square (flags override
    // the card's roi settings): it finds the same face, reported in image pixels
    let o = tensorcv(&[
        "detect",
        "-m",
        "face",
        "--roi-from",
        "face",
        "--roi-scale",
        "2.5",
        "--roi-square",
        "--json",
        "tests/data/imgproc/astronaut.png",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let r = &json_lines(&o)[0];
    let regions = r["detections"].as_array().unwrap();
    assert_eq!(regions.len(), 1);
    let region = regions[0]["region"].as_array().unwrap();
    let side = region[2].as_f64().unwrap() - region[0].as_f64().unwrap();
    assert!(side > 200.0, "grown 2.5x from a ~100 px face: {region:?}");
    let inner = regions[0]["detections"].as_array().unwrap();
    assert_eq!(inner.len(), 1, "{inner:?}");
    let overlap = iou(&inner[0]["box"], &regions[0]["box"]);
    println!("face in the face region: IoU {overlap:.3} with the first detection");
    assert!(overlap > 0.8, "{overlap}");

    // the selfie segmenter on the face region: the composed mask covers only the region
    let out = scratch("roi-seg");
    let o = tensorcv(&[
        "segment",
        "--roi-from",
        "face",
        "--roi-scale",
        "1.5",
        "--json",
        "--save",
        out.to_str().unwrap(),
        "tests/data/imgproc/astronaut.png",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let r = &json_lines(&o)[0];
    let in_region = r["detections"][0]["segmentation"]["classes"][1]["fraction"]
        .as_f64()
        .unwrap();
    let whole = r["segmentation"]["classes"][1]["fraction"]
        .as_f64()
        .unwrap();
    let reg = r["detections"][0]["region"].as_array().unwrap();
    let region_area = (reg[2].as_f64().unwrap() - reg[0].as_f64().unwrap())
        * (reg[3].as_f64().unwrap() - reg[1].as_f64().unwrap());
    let share = region_area / (320.0 * 320.0); // astronaut.png is 320x320
    println!(
        "person: {in_region:.4} of the face region, {whole:.4} of the image (region {share:.4})"
    );
    assert!(in_region > 0.6, "a face crop is mostly person: {in_region}");
    // the whole image's fraction is the region's person pixels over the image
    assert!(
        (whole - in_region * share).abs() < 1e-3,
        "{whole} vs {}",
        in_region * share
    );
    let mask =
        tensorcv_imgproc::io::imread(out.join("astronaut.mask.png"), &Default::default()).unwrap();
    assert_eq!((mask.width(), mask.height()), (320, 320));
    assert_eq!(
        mask.view().pixel(5, 315).unwrap(),
        &[0, 0, 0],
        "outside the region"
    );
}

#[test]
fn background_effects_keep_the_person_and_change_the_rest() {
    let photo = tensorcv_imgproc::io::imread(
        root().join("tests/data/imgproc/astronaut.png"),
        &Default::default(),
    )
    .unwrap();
    let seg_dir = scratch("bg-mask");
    let o = tensorcv(&[
        "segment",
        "--save",
        seg_dir.to_str().unwrap(),
        "tests/data/imgproc/astronaut.png",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let mask =
        tensorcv_imgproc::io::imread(seg_dir.join("astronaut.mask.png"), &Default::default())
            .unwrap();
    let person = |x: usize, y: usize| mask.view().pixel(x, y).unwrap() != [0, 0, 0];
    // what the background should become: cv2.GaussianBlur(photo, (k, k), 0) (imgproc's blur is
    // bit-exact with it, tests/parity.rs) or the color; `blur` alone takes a tenth of the side
    let blurred = |k: usize| {
        tensorcv_imgproc::filter::gaussian_blur(&photo.view(), (k, k), (0.0, 0.0)).unwrap()
    };
    let green = tensorcv_imgproc::Image::from_vec(
        [0u8, 255, 0].repeat(320 * 320),
        320,
        320,
        tensorcv_imgproc::PixelFormat::Bgr8,
    )
    .unwrap();
    for (effect, name, want) in [
        ("blur", "blur", blurred(33)),
        ("blur:9", "blur9", blurred(9)),
        ("#00ff00", "green", green),
    ] {
        let out = scratch(name);
        let o = tensorcv(&[
            "segment",
            "--background",
            effect,
            "--save",
            out.to_str().unwrap(),
            "tests/data/imgproc/astronaut.png",
        ]);
        assert!(o.status.success(), "{effect}: {:?}", text(&o));
        let got =
            tensorcv_imgproc::io::imread(out.join("astronaut.png"), &Default::default()).unwrap();
        let (mut kept, mut person_px, mut replaced, mut background_px) = (0, 0, 0, 0);
        for y in (0..320usize).step_by(4) {
            for x in (0..320usize).step_by(4) {
                // away from the mask's edge, where the probability blends the two
                let solid = (0..9).all(|i| {
                    let (dx, dy) = ((i % 3) * 6usize, (i / 3) * 6usize);
                    let (xx, yy) = (
                        (x + dx).saturating_sub(6).min(319),
                        (y + dy).saturating_sub(6).min(319),
                    );
                    person(xx, yy) == person(x, y)
                });
                if !solid {
                    continue;
                }
                let a = got.view().pixel(x, y).unwrap();
                let diff = |b: &[u8]| a.iter().zip(b).map(|(p, q)| p.abs_diff(*q)).max().unwrap();
                if person(x, y) {
                    person_px += 1;
                    kept += usize::from(diff(photo.view().pixel(x, y).unwrap()) <= 8);
                } else {
                    background_px += 1;
                    replaced += usize::from(diff(want.view().pixel(x, y).unwrap()) <= 8);
                }
            }
        }
        println!(
            "{effect}: person kept {kept}/{person_px}, background replaced {replaced}/{background_px}"
        );
        assert!(kept as f64 > 0.97 * person_px as f64, "{effect}");
        assert!(replaced as f64 > 0.97 * background_px as f64, "{effect}");
    }
    // a replacement image, resized to the photo
    let out = scratch("bg-image");
    let o = tensorcv(&[
        "segment",
        "--background",
        "tests/data/imgproc/chelsea.png",
        "--save",
        out.to_str().unwrap(),
        "tests/data/imgproc/astronaut.png",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    // effects are for segmentation; bad values are usage errors
    for args in [
        &[
            "detect",
            "--background",
            "blur",
            "tests/data/imgproc/astronaut.png",
        ][..],
        &[
            "segment",
            "--background",
            "blur:4",
            "tests/data/imgproc/astronaut.png",
        ],
        &[
            "segment",
            "--background",
            "#12345",
            "tests/data/imgproc/astronaut.png",
        ],
        &[
            "segment",
            "--background",
            "nothing.png",
            "tests/data/imgproc/astronaut.png",
        ],
    ] {
        let o = tensorcv(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {:?}", text(&o));
        assert!(text(&o).1.contains("background"), "{:?}", text(&o));
    }
}

#[test]
fn a_progress_bar_shows_on_a_terminal_only() {
    // `script` gives the command a terminal; without one (every other test) there is no bar
    let Ok(probe) = Command::new("script").arg("--version").output() else {
        println!("skipped: no `script` (util-linux) to make a terminal");
        return;
    };
    assert!(probe.status.success());
    let bin = common::shell_command();
    let o = Command::new("script")
        .args([
            "-qec",
            &format!("{bin} classify -m shapes tests/data/models 2>&1 1>/dev/null"),
            "/dev/null",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{tty}");
    assert!(
        tty.contains("inputs"),
        "the bar's text on the terminal: {tty:?}"
    );
    let o = tensorcv(&["classify", "-m", "shapes", "tests/data/models"]);
    assert!(!text(&o).1.contains("inputs"), "no bar without a terminal");
}

#[test]
fn an_unknown_output_name_lists_the_outputs_that_exist() {
    let dir = scratch("unknown-output");
    std::fs::copy(
        root().join("models/face_detection_short_range.onnx"),
        dir.join("face.onnx"),
    )
    .unwrap();
    let card = std::fs::read_to_string(root().join("models/face_detection_short_range.toml"))
        .unwrap()
        .replace("boxes = \"regressors\"", "boxes = \"boxes\"");
    std::fs::write(dir.join("face.toml"), card).unwrap();
    let o = tensorcv(&[
        "detect",
        "-m",
        dir.join("face.onnx").to_str().unwrap(),
        "tests/data/imgproc/astronaut.png",
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("'boxes'") && stderr.contains("regressors, classificators"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn bench_reports_load_inference_and_the_slowest_operators() {
    let o = tensorcv(&["bench", "-m", "face", "--iterations", "5", "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v = &json_lines(&o)[0];
    for key in ["load_ms", "first_run_ms", "preprocess_ms"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
    let inference = &v["inference_ms"];
    assert_eq!(inference["runs"], 5);
    let (min, median, p95) = (
        inference["min"].as_f64().unwrap(),
        inference["median"].as_f64().unwrap(),
        inference["p95"].as_f64().unwrap(),
    );
    assert!(0.0 < min && min <= median && median <= p95, "{inference}");
    let ops = v["ops"].as_array().unwrap();
    assert!(!ops.is_empty() && ops.len() <= 8);
    // BlazeFace is depthwise and 1x1 convolutions: both among the slowest operators, and
    // tensorcv's own
    let names: Vec<&str> = ops.iter().map(|o| o["op"].as_str().unwrap()).collect();
    assert!(names.contains(&"DepthwiseConv(tensorcv)"), "{names:?}");
    assert!(names.contains(&"PointwiseConv(tensorcv)"), "{names:?}");
    let shares: f64 = ops.iter().map(|o| o["share"].as_f64().unwrap()).sum();
    // each share is rounded to 4 places: the sum may pass 1 by half a unit per operator
    let rounding = 0.00005 * ops.len() as f64;
    assert!(shares > 0.5 && shares <= 1.0 + rounding, "{shares}");
    // WASI has no /proc to read it from
    if !common::wasm() {
        assert!(v["peak_rss_kb"].as_u64().unwrap() > 1000);
    }
}

#[test]
fn bench_can_run_tracts_own_operators_to_compare() {
    let o = tensorcv(&[
        "bench",
        "-m",
        "face",
        "--iterations",
        "3",
        "--json",
        "--tract-kernels",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v = &json_lines(&o)[0];
    let names: Vec<&str> = v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"DepthWiseConv"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("tensorcv")), "{names:?}");
}

#[test]
fn fast_decode_finds_the_same_face_in_a_reduced_jpeg() {
    // a 1080p JPEG with the astronaut's face: her photo enlarged to 1920x1920, the top 1080 rows
    use tensorcv_imgproc::io::{imencode, imread, DecodeOptions, EncodeFormat};
    use tensorcv_imgproc::resize::{resize_to, Interpolation};
    let small = imread(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/imgproc/astronaut.png"
        ),
        &DecodeOptions::default(),
    )
    .unwrap();
    let big = resize_to(&small.view(), 1920, 1920, Interpolation::Linear).unwrap();
    let view = big.view();
    let top = view
        .sub_view(tensorcv_imgproc::Rect {
            x: 0,
            y: 0,
            width: 1920,
            height: 1080,
        })
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tensorcv-fast-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("face_1080p.jpg");
    std::fs::write(&path, imencode(&top, EncodeFormat::Jpeg(90)).unwrap()).unwrap();
    let photo = path.to_str().unwrap();
    let full = tensorcv(&["detect", "--json", photo]);
    let fast = tensorcv(&["detect", "--json", "--fast-decode", photo]);
    assert!(
        full.status.success() && fast.status.success(),
        "{:?}",
        text(&fast)
    );
    let (full, fast) = (&json_lines(&full)[0], &json_lines(&fast)[0]);
    assert_eq!(
        (full["width"].as_u64(), full.get("scale")),
        (Some(1920), None)
    );
    // BlazeFace takes 128x128: 1/8 of 1920x1080 (240x135) is the smallest that keeps it
    assert_eq!(
        (fast["width"].as_u64(), fast["height"].as_u64()),
        (Some(240), Some(135))
    );
    let scale = fast["scale"].as_f64().unwrap();
    assert_eq!(scale, 0.125);
    let (a, b) = (
        full["detections"].as_array().unwrap(),
        fast["detections"].as_array().unwrap(),
    );
    assert!(!a.is_empty() && a.len() == b.len(), "{a:?} vs {b:?}");
    // the reduced image's box, in the file's pixels
    let mapped: Vec<f64> = b[0]["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() / scale)
        .collect();
    let overlap = iou(&a[0]["box"], &serde_json::json!(mapped));
    assert!(
        overlap > 0.85,
        "IoU {overlap}: {} vs {mapped:?}",
        a[0]["box"]
    );
}

#[test]
fn version_names_the_target_the_simd_levels_and_the_built_in_models() {
    let o = tensorcv(&["--version"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let out = text(&o).0;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("tensorcv {}", env!("CARGO_PKG_VERSION")));
    let target = lines[1].strip_prefix("target: ").expect("a target line");
    let (triple, linking) = target.split_once(' ').expect("triple (linking)");
    assert!(
        triple.contains("-linux-") || triple.starts_with("wasm32-"),
        "{triple}"
    );
    assert!(matches!(linking, "(static)" | "(dynamic)"), "{linking}");
    // `.ci/run` names what the static builds must say
    if let Ok(want) = std::env::var("TENSORCV_TEST_TARGET") {
        assert_eq!(target, format!("{want} (static)"));
    }
    let simd = lines[2]
        .strip_prefix("simd: kernels ")
        .expect("a simd line");
    let kernels = simd.split(',').next().unwrap();
    assert!(
        ["avx512f", "avx2+fma", "neon", "simd128", "portable"].contains(&kernels),
        "{simd}"
    );
    // every built-in model `tensorcv models` lists, and only those
    let models = tensorcv(&["models"]);
    let names: Vec<String> = text(&models)
        .0
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(!names.is_empty());
    let listed = lines[3]
        .strip_prefix("built-in models: ")
        .expect("a models line");
    assert_eq!(listed, names.join(", "));
    // the level is chosen at run time: TENSORCV_NO_SIMD takes the portable copies
    let o = common::command()
        .arg("--version")
        .env("TENSORCV_NO_SIMD", "1")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("simd: kernels portable,"),
        "{:?}",
        text(&o)
    );
}
