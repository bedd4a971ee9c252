//! Shared inputs of the criterion benches in this directory.
//!
//! The 1920×1080 JPEG is `tests/data/imgproc/bench_1080p.jpg`, made by
//! `tools/make_imgproc_refs.py`; `tools/bench_imgproc.py` times OpenCV on the same file.

use std::path::PathBuf;
use tensorcv_imgproc::io::{imdecode, DecodeOptions};
use tensorcv_imgproc::Image;

/// The workspace's `tests/data/imgproc` directory.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/imgproc")
}

/// The encoded 1080p JPEG.
pub fn jpeg_1080p() -> Vec<u8> {
    let path = data_dir().join("bench_1080p.jpg");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The 1080p frame decoded to BGR, as `cv2.imread` gives it.
pub fn frame_1080p_bgr() -> Image {
    imdecode(&jpeg_1080p(), &DecodeOptions::default()).expect("the bench JPEG decodes")
}

/// The workspace's `models` directory.
pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// The models the `infer` bench times: every zoo model, plus MobileNetV2 (random weights, for
/// speed only) when `tools/bench_zoo.py` has exported it to `tools/.cache/mobilenet_v2.onnx`.
pub fn bench_models() -> Vec<PathBuf> {
    let mut models = [
        "face_detection_short_range.onnx",
        "selfie_segmentation.onnx",
        "face_landmark.onnx",
        "emotion.onnx",
        "emotion_int8.onnx",
        "shapes.onnx",
        "shapes_int8.tflite",
    ]
    .iter()
    .map(|m| models_dir().join(m))
    .collect::<Vec<_>>();
    let mobilenet = models_dir().join("../tools/.cache/mobilenet_v2.onnx");
    if mobilenet.exists() {
        models.push(mobilenet);
    }
    models
}
