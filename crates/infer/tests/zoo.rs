//! The model zoo against TensorFlow / TFLite and onnxruntime: `tests/data/models` holds, for
//! each model and image, the input tensor OpenCV made the model's own way and the references'
//! outputs (made by `tools/build_zoo.py`). Here imgproc remakes the input from the image,
//! tract runs the model, and both must agree.

#[path = "../../imgproc/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use tensorcv_imgproc::io::{imread, DecodeOptions};
use tensorcv_imgproc::tensor::TensorData;
use tensorcv_infer::{Error, Format, LoadOptions, Model, ModelCard};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `.npy` file as its shape and f32 values (from f4, i1 or u1), with imgproc's reader.
fn npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let npy = common::read_npy(path);
    let values = npy.values_f32();
    (npy.shape, values)
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `tests/data/models/manifest.json`: every reference case.
fn manifest(refs: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(refs.join("manifest.json")).unwrap()).unwrap()
}

/// The zoo's rule for float models, as a multiple of it: 1e-4 absolute on values in [-1, 1]
/// (probabilities, masks), 1e-4 relative beyond (logits, box regressors).
fn float_rule(got: &[f32], want: &[f32]) -> f32 {
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / (1e-4 * b.abs().max(1.0)))
        .fold(0f32, f32::max)
}

fn top1(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap()
}

fn values(data: &TensorData) -> Vec<f32> {
    match data {
        TensorData::F32(v) => v.clone(),
        TensorData::U8(v) => v.iter().map(|&x| x as f32).collect(),
        TensorData::I8(v) => v.iter().map(|&x| x as f32).collect(),
    }
}

#[test]
fn zoo_models_match_tensorflow_and_onnxruntime() {
    let refs = root().join("tests/data/models");
    let manifest = manifest(&refs);
    let cases = manifest["cases"].as_array().unwrap();
    let mut models: Vec<&str> = cases.iter().map(|c| c["model"].as_str().unwrap()).collect();
    models.dedup();
    for m in [
        "face",
        "selfie",
        "emotion",
        "emotion_int8",
        "shapes",
        "shapes_int8",
    ] {
        assert!(models.contains(&m), "no references for {m}");
    }
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut loaded: Vec<(String, Model)> = Vec::new();
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let model_name = case["model"].as_str().unwrap();
        let model = match loaded.iter().find(|(f, _)| f == file) {
            Some((_, m)) => m.clone(),
            None => {
                let m = Model::load(root().join("models").join(file)).unwrap();
                loaded.push((file.to_string(), m.clone()));
                m
            }
        };
        let mut session = model.session().unwrap();
        let image = case["image"].as_str().unwrap();
        let photo = Path::new(image).file_stem().unwrap().to_str().unwrap();
        let img = imread(root().join(image), &DecodeOptions::default()).unwrap();

        // preprocessing: imgproc from the image vs OpenCV's tensor
        let ours = session.preprocess(&img.view()).unwrap().clone();
        let got_input = values(ours.data());
        let (shape, want_input) = match (case.get("input"), case.get("input_u8")) {
            (Some(f), _) => npy(&refs.join(f.as_str().unwrap())),
            (None, Some(f)) => {
                // OpenCV's resized uint8 image; the reference's float tensor is its
                // normalization (x / 255, x / 127.5 - 1), which imgproc's scalar formula gives
                let (shape, u8s) = npy(&refs.join(f.as_str().unwrap()));
                let spec = model.input_spec();
                let c = shape[3];
                let v = u8s
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| spec.normalize(x as u8, i % c))
                    .collect();
                (shape, v)
            }
            _ => panic!("case without input"),
        };
        assert_eq!(ours.shape().to_vec(), shape, "{model_name} input shape");
        let input_diff = max_abs(&got_input, &want_input);
        assert!(
            input_diff <= 1e-6,
            "{model_name}/{photo}: input differs by {input_diff}"
        );

        // the model: tract vs the references
        let outputs = model.run_tensor(&ours).unwrap();
        let quant = case.get("quantization");
        let step = quant
            .and_then(|q| q["output_step"].as_f64())
            .map(|s| s as f32);
        let dynamic = quant.is_some_and(|q| q["kind"] == "dynamic-range");
        for (name, refs_of) in case["outputs"].as_object().unwrap() {
            let got = outputs.get(name).unwrap();
            let got = got.as_slice().unwrap();
            let load = |engine: &str| {
                refs_of
                    .get(engine)
                    .map(|f| npy(&refs.join(f.as_str().unwrap())))
            };
            // dynamic-range models (int8 weights, activations quantized at run time): TFLite's
            // two kernel sets disagree with each other by up to 2e-2; onnxruntime, on the
            // converted graph, lands elsewhere again. tract must equal onnxruntime (1e-4) and be
            // no further from each TFLite kernel set than onnxruntime is.
            let ort_ref = load("ort").map(|(_, v)| v);
            for engine in refs_of.as_object().unwrap().keys() {
                let (shape, want) = load(engine).unwrap();
                assert_eq!(
                    outputs.get(name).unwrap().shape(),
                    &shape[..],
                    "{model_name} {name}"
                );
                let diff = max_abs(got, &want);
                let (ratio, rule) = match (step, &ort_ref) {
                    // fully quantized: one step of the output's quantization
                    (Some(step), _) => (diff / (step * 1.001), "one quantization step"),
                    (None, Some(ort)) if dynamic && engine != "ort" => (
                        diff / (max_abs(ort, &want) + 1e-4),
                        "onnxruntime's distance + 1e-4",
                    ),
                    _ => (float_rule(got, &want), "1e-4 (relative beyond 1)"),
                };
                report.push(format!(
                    "{model_name:>12} {photo:<16} {name:<15} vs {engine:<10}: max abs diff {diff:.2e} = {ratio:.2} x {rule}"
                ));
                if ratio > 1.0 {
                    failures.push(report.last().unwrap().clone());
                }
                // and the same answer
                if want.len() < 16 {
                    assert_eq!(
                        top1(got),
                        top1(&want),
                        "{model_name}/{photo}: top-1 differs from {engine}"
                    );
                }
            }
            if let Some(label) = case.get("label").and_then(|l| l.as_str()) {
                let labels = &model.card().labels;
                assert_eq!(
                    labels[top1(got)],
                    label,
                    "{model_name}/{photo}: wrong class"
                );
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "beyond tolerance:\n{}",
        failures.join("\n")
    );
}

#[test]
fn introspection_and_errors_name_things() {
    let model = Model::load(root().join("models/face_detection_short_range.onnx")).unwrap();
    let info = model.info();
    assert_eq!(info.format, Format::Onnx);
    assert_eq!(info.inputs.len(), 1);
    assert_eq!(info.inputs[0].to_string(), "input [1, 128, 128, 3] F32");
    let names: Vec<_> = info.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["regressors", "classificators"]);
    assert_eq!(model.card().model.name.as_deref(), Some("face"));
    let spec = model.input_spec();
    assert_eq!(
        (spec.width, spec.height, spec.fit.name()),
        (128, 128, "letterbox")
    );

    let img = tensorcv_imgproc::Image::new(200, 100, tensorcv_imgproc::PixelFormat::Bgr8).unwrap();
    let (outputs, tf) = model.session().unwrap().run(&img.view()).unwrap();
    assert_eq!(tf.scale_x, 128.0 / 200.0);
    let err = outputs.get("boxes").unwrap_err().to_string();
    assert!(
        err.contains("'boxes'") && err.contains("regressors, classificators"),
        "{err}"
    );

    // tf2onnx leaves the batch symbolic
    let emotion = Model::load(root().join("models/emotion.onnx")).unwrap();
    let shape: Vec<String> = emotion.info().inputs[0]
        .shape
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(shape[1..], ["64", "64", "1"]);
    assert!(
        matches!(
            emotion.info().inputs[0].shape[0],
            tensorcv_infer::Dim::Symbol(_)
        ),
        "{shape:?}"
    );
    assert_eq!(
        emotion
            .info()
            .metadata
            .get("producer_name")
            .map(String::as_str),
        Some("tf2onnx")
    );

    match Model::load(root().join("README.md")) {
        Err(Error::Load { what, .. }) => assert!(what.contains("README.md")),
        other => panic!("expected a load error, got {other:?}"),
    }
    assert!(matches!(
        Model::load(root().join("nope.onnx")),
        Err(Error::Io { .. })
    ));
    let bytes = std::fs::read(root().join("models/emotion.onnx")).unwrap();
    for cut in [0, 7, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let r = Model::from_bytes(&bytes[..cut], Default::default());
        assert!(matches!(r, Err(Error::Load { .. })), "cut at {cut}: {r:?}");
    }
}

#[test]
fn cards_that_do_not_fit_the_model_are_errors_naming_the_dimension() {
    let path = root().join("models/face_detection_short_range.onnx");
    let card = |text: &str| LoadOptions {
        card: Some(ModelCard::parse(text, "test.toml").unwrap()),
        ..Default::default()
    };
    let e = Model::load_with(&path, card("[input]\nwidth = 100\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("width 100") && e.contains("128"), "{e}");
    let e = Model::load_with(&path, card("[input]\nchannels = \"gray\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gray") && e.contains("3"), "{e}");
    let e = Model::load_with(&path, card("[input]\nname = \"images\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("images") && e.contains("'input'"), "{e}");
    // the face model's batch is fixed at 1 in the file
    let e = Model::load_with(
        &path,
        LoadOptions {
            batch: 2,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Input { .. }), "{e}");
    // a wrong tensor for run_tensor
    let emotion = Model::load(root().join("models/emotion.onnx")).unwrap();
    let wrong = tensorcv_imgproc::tensor::TensorSpec::new(32, 32).alloc(1);
    let e = emotion.run_tensor(&wrong).unwrap_err().to_string();
    assert!(
        e.contains("[1, 64, 64, 1]") && e.contains("[1, 32, 32, 3]"),
        "{e}"
    );
}

#[test]
fn tflite_loads_directly_and_unsupported_ops_are_named() {
    let model = Model::load(root().join("models/shapes_int8.tflite")).unwrap();
    let info = model.info();
    assert_eq!(info.format, Format::Tflite);
    let input = &info.inputs[0];
    assert_eq!(input.dtype, "I8");
    let q = input.quantization.expect("a quantized input");
    assert_eq!(model.input_spec().quantization, Some(q));
    assert!(input.to_string().contains("zero point"), "{input}");
    // int8 MEAN and SOFTMAX mended: the output has TFLite's declared softmax quantization
    // (tract-tflite 0.23.9 would give it the logits' and saturate the mean's sum)
    let q = info.outputs[0].quantization.expect("a quantized output");
    assert_eq!((q.scale, q.zero_point), (1.0 / 256.0, -128), "{q:?}");
    let photo = imread(
        root().join("tests/data/models/shapes_3_square.png"),
        &DecodeOptions::default(),
    )
    .unwrap();
    let (out, _) = model.session().unwrap().run(&photo.view()).unwrap();
    let p = out.by_index(0).unwrap();
    let sum: f32 = p.iter().sum();
    assert!((sum - 1.0).abs() <= 3.0 / 256.0, "{p}");

    // float16 weights (behind DEQUANTIZE) are widened as the file loads: the same answer
    let fp16 = Model::load(root().join("tests/data/models/shapes_fp16.tflite")).unwrap();
    let (out, _) = fp16.session().unwrap().run(&photo.view()).unwrap();
    let p16 = out.by_index(0).unwrap();
    assert_eq!(top1(p16.as_slice().unwrap()), 1, "a square: {p16}");

    let e = Model::load(root().join("tests/data/tflite/depth_to_space.tflite"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("DEPTH_TO_SPACE (node '"), "{e}");
    assert!(
        e.contains("depth_to_space.tflite") && !e.contains('\n'),
        "{e}"
    );
}

/// MediaPipe's way of storing a model: float16 weights and PReLU slopes behind DEQUANTIZE
/// operators, PRELU, a float MEAN (global average pooling): the TFLite interpreter's reference
/// kernels' answers (`tools/make_tflite_refs.py`), with tensorcv's kernels (the lowered PRELU
/// found by the PReLU rewrite) at 1 and 2 threads, and with tract's operators alone.
#[test]
fn float16_prelu_tflite_matches_the_tflite_interpreter() {
    let dir = root().join("tests/data/tflite");
    let card = ModelCard::parse(
        "[input]\nchannels = \"rgb\"\nrange = \"[-1,1]\"\ninterpolation = \"linear\"\nfit = \"stretch\"\n",
        "test.toml",
    )
    .unwrap();
    let load = |threads: usize, tract_only: bool| {
        Model::load_with(
            dir.join("prelu_fp16.tflite"),
            LoadOptions {
                card: Some(card.clone()),
                threads,
                tract_only,
                ..LoadOptions::default()
            },
        )
        .unwrap()
    };
    let models = [load(1, false), load(2, false), load(1, true)];
    let mut checked_profile = false;
    for photo in ["astronaut", "chelsea", "coffee"] {
        let img = imread(
            root().join(format!("tests/data/imgproc/{photo}.png")),
            &DecodeOptions::default(),
        )
        .unwrap();
        let (_, want_input) = npy(&dir.join(format!("prelu_fp16_{photo}_input.npy")));
        let (shape, want) = npy(&dir.join(format!("prelu_fp16_{photo}_tflite.npy")));
        let mut answers = Vec::new();
        for model in &models {
            let mut session = model.session().unwrap();
            let input = session.preprocess(&img.view()).unwrap().clone();
            let d = max_abs(&values(input.data()), &want_input);
            assert!(d <= 1e-6, "{photo}: input differs by {d}");
            if !checked_profile {
                let profile = model.profile(&input, 2).unwrap();
                assert!(
                    profile.iter().any(|op| op.op == "Prelu(tensorcv)"),
                    "the lowered PRELU runs on tensorcv's kernel: {profile:?}"
                );
                checked_profile = true;
            }
            let out = session.run_tensor(&input).unwrap();
            let got = out.by_index(0).unwrap();
            assert_eq!(got.shape(), &shape[..], "{photo}");
            let got = got.as_slice().unwrap().to_vec();
            let d = max_abs(&got, &want);
            assert!(
                d <= 1e-5,
                "{photo}: differs from TFLite by {d}: {got:?} / {want:?}"
            );
            answers.push(got);
        }
        assert_eq!(answers[0], answers[1], "{photo}: 1 and 2 threads");
    }
}

#[test]
fn batches_and_threads_give_the_same_numbers() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Model>();

    let photos: Vec<_> = ["astronaut", "coffee", "chelsea"]
        .iter()
        .map(|p| {
            imread(
                root().join(format!("tests/data/imgproc/{p}.png")),
                &DecodeOptions::default(),
            )
            .unwrap()
        })
        .collect();
    let path = root().join("models/emotion.onnx");
    let one = Model::load(&path).unwrap();
    let mut session = one.session().unwrap();
    let singles: Vec<Vec<f32>> = photos
        .iter()
        .map(|p| {
            session
                .run(&p.view())
                .unwrap()
                .0
                .get("predictions")
                .unwrap()
                .iter()
                .copied()
                .collect()
        })
        .collect();
    // a batch of 3 on 2 threads
    let three = Model::load_with(
        &path,
        LoadOptions {
            batch: 3,
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let views: Vec<_> = photos.iter().map(|p| p.view()).collect();
    let (outputs, transforms) = three.session().unwrap().run_batch(&views).unwrap();
    assert_eq!(transforms.len(), 3);
    let batch = outputs.get("predictions").unwrap();
    assert_eq!(batch.shape(), [3, 7]);
    for (i, single) in singles.iter().enumerate() {
        let row: Vec<f32> = batch
            .index_axis(tensorcv_infer::ndarray::Axis(0), i)
            .iter()
            .copied()
            .collect();
        assert!(max_abs(&row, single) < 1e-6, "{row:?} vs {single:?}");
    }
    // `run` on a batch model puts the one image in every slot (none left from the last batch)
    let mut session3 = three.session().unwrap();
    session3.run_batch(&views).unwrap();
    let (outputs, _) = session3.run(&views[2]).unwrap();
    let batch = outputs.get("predictions").unwrap();
    for row in batch.outer_iter() {
        let row: Vec<f32> = row.iter().copied().collect();
        assert!(
            max_abs(&row, &singles[2]) < 1e-6,
            "{row:?} vs {:?}",
            singles[2]
        );
    }
    let e = three
        .session()
        .unwrap()
        .run_batch(&views[..2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("batches of 3") && e.contains("2 images"), "{e}");
    // one model shared by threads, each with its own session
    std::thread::scope(|s| {
        for (photo, want) in photos.iter().zip(&singles) {
            let model = one.clone();
            s.spawn(move || {
                let (out, _) = model.session().unwrap().run(&photo.view()).unwrap();
                let got: Vec<f32> = out.get("predictions").unwrap().iter().copied().collect();
                assert_eq!(&got, want);
            });
        }
    });
}

/// MediaPipe's BlazeFace as the wheel ships it (`.tflite`, float16 weights behind 74
/// DEQUANTIZEs), loaded directly with the zoo's card: the TFLite interpreter's outputs (the
/// zoo's `tf` references are exactly this file run by TFLite) within the zoo's 1e-4, at 1 and 2
/// threads.
#[test]
fn mediapipe_float16_tflite_matches_the_tflite_interpreter() {
    let refs = root().join("tests/data/models");
    let manifest = manifest(&refs);
    let card_text =
        std::fs::read_to_string(root().join("models/face_detection_short_range.toml")).unwrap();
    let card = ModelCard::parse(&card_text, "face_detection_short_range.toml").unwrap();
    let load = |threads: usize| {
        Model::load_with(
            root().join("tests/data/tflite/face_detection_short_range.tflite"),
            LoadOptions {
                card: Some(card.clone()),
                threads,
                ..LoadOptions::default()
            },
        )
        .unwrap()
    };
    let (one, two) = (load(1), load(2));
    assert_eq!(one.info().format, Format::Tflite);
    let mut cases = 0;
    for case in manifest["cases"].as_array().unwrap() {
        if case["model"] != "face" {
            continue;
        }
        cases += 1;
        let image = case["image"].as_str().unwrap();
        let img = imread(root().join(image), &DecodeOptions::default()).unwrap();
        let input = one
            .session()
            .unwrap()
            .preprocess(&img.view())
            .unwrap()
            .clone();
        let (a, b) = (
            one.run_tensor(&input).unwrap(),
            two.run_tensor(&input).unwrap(),
        );
        for (name, refs_of) in case["outputs"].as_object().unwrap() {
            let (shape, want) = npy(&refs.join(refs_of["tf"].as_str().unwrap()));
            let got = a.get(name).unwrap();
            assert_eq!(got.shape(), &shape[..], "{image} {name}");
            let ratio = float_rule(got.as_slice().unwrap(), &want);
            assert!(
                ratio <= 1.0,
                "{image} {name}: {ratio} x 1e-4 (relative beyond 1) from TFLite"
            );
            assert_eq!(got, b.get(name).unwrap(), "{image} {name}: 1 and 2 threads");
        }
    }
    assert!(cases >= 3, "{cases} face cases");
}
