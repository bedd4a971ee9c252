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
