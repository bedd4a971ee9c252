//! `DecodeOptions::reduce_to`: JPEGs decoded with a scaled inverse DCT.

use std::path::PathBuf;
use tensorcv_imgproc::io::{imdecode_scaled, imread, imread_scaled, DecodeOptions, ImreadMode};
use tensorcv_imgproc::resize::{resize_to, Interpolation};
use tensorcv_imgproc::Image;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/imgproc")
        .join(name)
}

fn reduced(to: (u32, u32)) -> DecodeOptions {
    DecodeOptions {
        reduce_to: Some(to),
        ..DecodeOptions::default()
    }
}

fn mean_abs_diff(a: &Image, b: &Image) -> f64 {
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));
    let (x, y) = (a.as_bytes(), b.as_bytes());
    x.iter()
        .zip(y)
        .map(|(p, q)| (*p as f64 - *q as f64).abs())
        .sum::<f64>()
        / x.len() as f64
}

#[test]
fn picks_the_smallest_scale_that_keeps_the_size_and_looks_like_an_area_resize() {
    let path = data("bench_1080p.jpg");
    let full = imread(&path, &DecodeOptions::default()).unwrap();
    for (to, scale, w, h) in [
        ((128, 128), 0.125, 240, 135),
        // 1/8 is 240 wide, under 300
        ((300, 200), 0.25, 480, 270),
        // 1/4 is 270 tall, under 300
        ((300, 300), 0.5, 960, 540),
        ((640, 480), 0.5, 960, 540),
        ((900, 100), 0.5, 960, 540),
        ((100, 1000), 1.0, 1920, 1080),
    ] {
        let (img, got) = imread_scaled(&path, &reduced(to)).unwrap();
        assert_eq!((img.width(), img.height(), got), (w, h, scale), "{to:?}");
        // the scaled IDCT averages each block's pixels, much as an area resize of the full
        // decode does
        let area = resize_to(&full.view(), w, h, Interpolation::Area).unwrap();
        let diff = mean_abs_diff(&img, &area);
        assert!(diff < 2.5, "{to:?}: mean difference {diff}");
    }
}

#[test]
fn a_size_the_image_does_not_exceed_decodes_it_fully() {
    let path = data("chelsea_q90_420.jpg");
    let full = imread(&path, &DecodeOptions::default()).unwrap();
    let (img, scale) = imread_scaled(&path, &reduced((451, 300))).unwrap();
    assert_eq!(scale, 1.0);
    assert_eq!(
        img.as_bytes(),
        full.as_bytes(),
        "the full decoder, bit for bit"
    );
    // other formats ignore the option
    let png = tensorcv_imgproc::io::imencode(&full.view(), tensorcv_imgproc::io::EncodeFormat::Png)
        .unwrap();
    let (img, scale) = imdecode_scaled(&png, &reduced((10, 10))).unwrap();
    assert_eq!((img.width(), scale), (451, 1.0));
}

#[test]
fn exif_orientation_is_applied_after_reducing() {
    // the files are 16x8 as stored; 5 to 8 turn them a quarter, to 8x16
    for o in 1..=8 {
        let path = data(&format!("exif_orientation_{o}.jpg"));
        let full = imread(&path, &DecodeOptions::default()).unwrap();
        let want = (full.width() / 2, full.height() / 2);
        let (img, scale) = imread_scaled(&path, &reduced((want.0 as u32, want.1 as u32))).unwrap();
        assert_eq!(scale, 0.5, "orientation {o}");
        assert_eq!((img.width(), img.height()), want, "orientation {o}");
        let area = resize_to(&full.view(), want.0, want.1, Interpolation::Area).unwrap();
        let diff = mean_abs_diff(&img, &area);
        assert!(diff < 12.0, "orientation {o}: mean difference {diff}");
        // the unchanged mode keeps the stored orientation
        let raw = DecodeOptions {
            mode: ImreadMode::Unchanged,
            ..reduced((8, 4))
        };
        let (img, _) = imread_scaled(&path, &raw).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (8, 4),
            "orientation {o}, unchanged"
        );
    }
}

#[test]
fn a_truncated_jpeg_is_still_an_error() {
    let bytes = std::fs::read(data("chelsea_q90_420.jpg")).unwrap();
    let cut = &bytes[..bytes.len() / 2];
    assert!(imdecode_scaled(cut, &reduced((50, 50))).is_err());
}
