//! The model zoo against TensorFlow / TFLite and onnxruntime: `tests/data/models` holds, for
//! each model and photo, the input tensor OpenCV made the model's own way and both references'
//! outputs (made by `tools/build_zoo.py`). Here imgproc remakes the input from the photo,
//! tract runs the model, and both must agree.

use std::path::PathBuf;
use tensorcv_imgproc::io::{imread, DecodeOptions};
use tensorcv_infer::{Error, Model};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn npy_f32(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains("'<f4'") && header.contains("'fortran_order': False"), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data = bytes[10 + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (shape, data)
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn zoo_models_match_tensorflow_and_onnxruntime() {
    let refs = root().join("tests/data/models");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(refs.join("manifest.json")).unwrap()).unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    assert!(cases.len() >= 9);
    let mut report = Vec::new();
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let model_name = case["model"].as_str().unwrap();
        let model = Model::load(root().join("models").join(file)).unwrap();
        let mut session = model.session().unwrap();
        let photo = case["photo"].as_str().unwrap();
        let img = imread(
            root().join(format!("tests/data/imgproc/{photo}.png")),
            &DecodeOptions::default(),
        )
        .unwrap();
        // preprocessing: imgproc from the photo vs OpenCV's tensor
        let (shape, want_input) = npy_f32(&refs.join(case["input"].as_str().unwrap()));
        let ours = session.preprocess(&img.view()).unwrap().clone();
        assert_eq!(ours.shape().to_vec(), shape, "{model_name} input shape");
        let input_diff = max_abs(ours.as_f32().unwrap(), &want_input);
        assert!(input_diff <= 1e-6, "{model_name}/{photo}: input differs by {input_diff}");
        // the model: tract vs the references
        let outputs = model.run_tensor(&ours).unwrap();
        let quantized = model_name.ends_with("int8");
        for (name, refs_of) in case["outputs"].as_object().unwrap() {
            let got = outputs.get(name).unwrap();
            for (engine, file) in refs_of.as_object().unwrap() {
                let (shape, want) = npy_f32(&refs.join(file.as_str().unwrap()));
                assert_eq!(got.shape(), &shape[..], "{model_name} {name}");
                let got = got.as_slice().unwrap();
                let diff = max_abs(got, &want);
                let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
                // float models: 1e-4 relative to the output's magnitude (probabilities: 1e-4
                // absolute); the int8 model: one step of its uint8 output (1/256)
                let tol = if quantized { 1.0 / 256.0 } else { 1e-4 * scale };
                report.push(format!(
                    "{model_name:>12} {photo:<9} {name:<15} vs {engine:<3}: max abs diff {diff:.2e} (tolerance {tol:.1e})"
                ));
                assert!(diff <= tol, "{}", report.last().unwrap());
                // and the same answer
                if want.len() < 16 {
                    let top = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b]));
                    assert_eq!(top(got), top(&want), "{model_name}/{photo}: top-1 differs from {engine}");
                }
            }
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn introspection_and_errors_name_things() {
    let model = Model::load(root().join("models/face_detection_short_range.onnx")).unwrap();
    let info = model.info();
    assert_eq!(info.inputs.len(), 1);
    assert_eq!(info.inputs[0].to_string(), "input [1, 128, 128, 3] F32");
    let names: Vec<_> = info.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["regressors", "classificators"]);
    assert_eq!(model.card().model.name.as_deref(), Some("face"));
    let spec = model.input_spec();
    assert_eq!((spec.width, spec.height, spec.fit.name()), (128, 128, "letterbox"));

    let img = tensorcv_imgproc::Image::new(200, 100, tensorcv_imgproc::PixelFormat::Bgr8).unwrap();
    let (outputs, tf) = model.session().unwrap().run(&img.view()).unwrap();
    assert_eq!(tf.scale_x, 128.0 / 200.0);
    let err = outputs.get("boxes").unwrap_err().to_string();
    assert!(err.contains("'boxes'") && err.contains("regressors, classificators"), "{err}");

    match Model::load(root().join("README.md")) {
        Err(Error::Load { what, .. }) => assert!(what.contains("README.md")),
        other => panic!("expected a load error, got {other:?}"),
    }
    assert!(matches!(Model::load(root().join("nope.onnx")), Err(Error::Io { .. })));
    let truncated = std::fs::read(root().join("models/emotion.onnx")).unwrap();
    let r = Model::from_bytes(&truncated[..truncated.len() / 2], Default::default());
    assert!(matches!(r, Err(Error::Load { .. })), "{r:?}");
}
