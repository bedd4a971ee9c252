//! `cargo bench -p tensorcv-benches`: the imgproc operations on a 1920×1080 frame, named
//! `group/input/variant`. `tools/bench_imgproc.py` runs the same operations with OpenCV and
//! prints both side by side.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tensorcv_benches::{frame_1080p_bgr, jpeg_1080p};
use tensorcv_imgproc::color;
use tensorcv_imgproc::io::{imdecode, DecodeOptions};
use tensorcv_imgproc::resize::pil::{PilFilter, PilResizer};
use tensorcv_imgproc::resize::{Interpolation, Resizer};
use tensorcv_imgproc::tensor::{write_image, Preprocessor, TensorSpec};
use tensorcv_imgproc::{Image, PixelFormat};

fn imagenet_spec() -> TensorSpec {
    TensorSpec::new(224, 224).with_mean_std([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
}

fn benches(c: &mut Criterion) {
    let jpeg = jpeg_1080p();
    let frame = frame_1080p_bgr();
    let view = frame.view();

    c.bench_function("decode/1080p_jpeg/bgr", |b| {
        b.iter(|| imdecode(black_box(&jpeg), &DecodeOptions::default()).unwrap())
    });
    // --fast-decode's lever: the scaled IDCT, for a 128x128 model (1/8) and a 224x224 one (1/4)
    for (name, to) in [("reduced_1_8", (128, 128)), ("reduced_1_4", (224, 224))] {
        let options = DecodeOptions {
            reduce_to: Some(to),
            ..DecodeOptions::default()
        };
        c.bench_function(&format!("decode/1080p_jpeg/{name}"), |b| {
            b.iter(|| imdecode(black_box(&jpeg), &options).unwrap())
        });
    }

    let mut rgb = Image::new(1920, 1080, PixelFormat::Rgb8).unwrap();
    c.bench_function("color/1080p/bgr_to_rgb", |b| {
        b.iter(|| color::convert(black_box(&view), &mut rgb.view_mut()).unwrap())
    });
    let mut gray = Image::new(1920, 1080, PixelFormat::Gray8).unwrap();
    c.bench_function("color/1080p/bgr_to_gray", |b| {
        b.iter(|| color::convert(black_box(&view), &mut gray.view_mut()).unwrap())
    });

    let mut small = Image::new(224, 224, PixelFormat::Bgr8).unwrap();
    for interp in [
        Interpolation::Linear,
        Interpolation::Area,
        Interpolation::Cubic,
    ] {
        let mut resizer = Resizer::new();
        c.bench_function(&format!("resize/1080p_to_224/{interp}"), |b| {
            b.iter(|| {
                resizer
                    .resize(black_box(&view), &mut small.view_mut(), interp)
                    .unwrap()
            })
        });
    }

    let mut pil = PilResizer::new();
    c.bench_function("resize/1080p_to_224/pil_bilinear", |b| {
        b.iter(|| {
            pil.resize(black_box(&view), &mut small.view_mut(), PilFilter::Bilinear)
                .unwrap()
        })
    });

    // The full "BGR frame -> 1x224x224x3 normalized f32" path.
    let spec = imagenet_spec();
    let mut pre = Preprocessor::new(spec.clone());
    let mut tensor = spec.alloc(1);
    c.bench_function("preprocess/1080p_bgr_to_224_f32/fused", |b| {
        b.iter(|| pre.run(black_box(&view), &mut tensor, 0).unwrap())
    });
    let mut resizer = Resizer::new();
    let mut small_rgb = Image::new(224, 224, PixelFormat::Rgb8).unwrap();
    c.bench_function("preprocess/1080p_bgr_to_224_f32/unfused", |b| {
        b.iter(|| {
            color::convert(black_box(&view), &mut rgb.view_mut()).unwrap();
            resizer
                .resize(&rgb.view(), &mut small_rgb.view_mut(), spec.interp)
                .unwrap();
            write_image(&spec, &small_rgb.view(), &mut tensor, 0).unwrap();
        })
    });
}

criterion_group!(imgproc, benches);
criterion_main!(imgproc);
