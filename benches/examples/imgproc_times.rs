//! `cargo run --release -p tensorcv-benches --example imgproc_times -- [--iterations N]`:
//! the single imgproc operations of `benches/imgproc.rs` on the 1080p frame, at one thread and
//! (keys ending `@2`) two, as one JSON object of median milliseconds. `tools/bench_imgproc.py` runs it between its
//! OpenCV rounds (criterion's minutes-long runs cannot be interleaved). It also times
//! `fast_image_resize`'s `Interpolation(Bilinear)` mode, the candidate the README evaluates.

use fast_image_resize::{
    images::Image as FirImage, FilterType, PixelType, ResizeAlg, ResizeOptions,
};
use std::hint::black_box;
use std::time::Instant;
use tensorcv_benches::{frame_1080p_bgr, jpeg_1080p};
use tensorcv_imgproc::color;
use tensorcv_imgproc::io::{imdecode, DecodeOptions};
use tensorcv_imgproc::resize::pil::{PilFilter, PilResizer};
use tensorcv_imgproc::resize::{Interpolation, Resizer};
use tensorcv_imgproc::tensor::{Preprocessor, TensorSpec};
use tensorcv_imgproc::{Image, PixelFormat};

fn median_ms(iterations: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut iterations = 200usize;
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--iterations", Some(n)) if (1..=100_000).contains(&n) => iterations = n,
            _ => {
                eprintln!("usage: imgproc_times [--iterations 1..=100000]");
                std::process::exit(2);
            }
        }
    }
    let frame = frame_1080p_bgr();
    let view = frame.view();
    let mut out: Vec<(String, f64)> = Vec::new();
    let jpeg = jpeg_1080p();
    out.push((
        "decode/1080p_jpeg/bgr".into(),
        median_ms(iterations / 10 + 1, || {
            imdecode(black_box(&jpeg), &DecodeOptions::default())
                .map(drop)
                .unwrap()
        }),
    ));
    let mut small = Image::new(224, 224, PixelFormat::Bgr8).unwrap();
    // the single operations at 1 thread, then at 2 (keys with a `@2` suffix)
    for threads in [1, 2] {
        let at = if threads == 1 {
            String::new()
        } else {
            format!("@{threads}")
        };
        let mut rgb = Image::new(1920, 1080, PixelFormat::Rgb8).unwrap();
        out.push((
            format!("color/1080p/bgr_to_rgb{at}"),
            median_ms(iterations, || {
                color::convert_threads(black_box(&view), &mut rgb.view_mut(), threads).unwrap()
            }),
        ));
        let mut gray = Image::new(1920, 1080, PixelFormat::Gray8).unwrap();
        out.push((
            format!("color/1080p/bgr_to_gray{at}"),
            median_ms(iterations, || {
                color::convert_threads(black_box(&view), &mut gray.view_mut(), threads).unwrap()
            }),
        ));
        for interp in [
            Interpolation::Linear,
            Interpolation::Area,
            Interpolation::Cubic,
        ] {
            let mut resizer = Resizer::new();
            resizer.set_threads(threads).unwrap();
            let n = if interp == Interpolation::Area {
                iterations / 10 + 1
            } else {
                iterations
            };
            out.push((
                format!("resize/1080p_to_224/{interp}{at}"),
                median_ms(n, || {
                    resizer
                        .resize(black_box(&view), &mut small.view_mut(), interp)
                        .unwrap()
                }),
            ));
        }
    }
    let mut pil = PilResizer::new();
    out.push((
        "resize/1080p_to_224/pil_bilinear".into(),
        median_ms(iterations / 10 + 1, || {
            pil.resize(black_box(&view), &mut small.view_mut(), PilFilter::Bilinear)
                .unwrap()
        }),
    ));
    let fir_src = FirImage::from_vec_u8(1920, 1080, frame.as_bytes().to_vec(), PixelType::U8x3)
        .expect("a 1080p BGR frame");
    let mut fir_dst = FirImage::new(224, 224, PixelType::U8x3);
    let mut fir = fast_image_resize::Resizer::new();
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Interpolation(FilterType::Bilinear));
    out.push((
        "resize/1080p_to_224/fir_interpolation_bilinear".into(),
        median_ms(iterations, || {
            fir.resize(black_box(&fir_src), &mut fir_dst, &options)
                .unwrap()
        }),
    ));
    let spec =
        TensorSpec::new(224, 224).with_mean_std([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    let mut pre = Preprocessor::new(spec.clone());
    let mut tensor = spec.alloc(1);
    out.push((
        "preprocess/1080p_bgr_to_224_f32/fused".into(),
        median_ms(iterations, || {
            pre.run(black_box(&view), &mut tensor, 0).map(drop).unwrap()
        }),
    ));
    let body: Vec<String> = out
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v:.4}"))
        .collect();
    println!("{{{}}}", body.join(", "));
}
