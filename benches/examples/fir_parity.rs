//! `cargo run --release -p tensorcv-benches --example fir_parity`: how far
//! `fast_image_resize`'s `ResizeAlg::Interpolation(FilterType::Bilinear)` (no antialiasing,
//! like `cv2.INTER_LINEAR`) lands from OpenCV 4.10's `INTER_LINEAR` on every linear case of
//! the imgproc references (`tests/data/imgproc`, made by `tools/make_imgproc_refs.py`), beside
//! tensorcv's own resize. The README's evaluation quotes this output.

use fast_image_resize::{
    images::Image as FirImage, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
};
use tensorcv_benches::data_dir;
use tensorcv_imgproc::io::{imread, DecodeOptions, ImreadMode};
use tensorcv_imgproc::resize::{self, Interpolation};

/// (largest difference, bytes that differ)
fn diff(a: &[u8], b: &[u8]) -> (u8, usize) {
    a.iter().zip(b).fold((0, 0), |(m, n), (x, y)| {
        let d = x.abs_diff(*y);
        (m.max(d), n + usize::from(d > 0))
    })
}

fn main() {
    let dir = data_dir();
    let text =
        std::fs::read_to_string(dir.join("manifest.json")).expect("the references' manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("a JSON manifest");
    let load = |name: &serde_json::Value| {
        let name = name.as_str().expect("a file name");
        imread(dir.join(name), &DecodeOptions::new(ImreadMode::Unchanged))
            .expect("a reference image")
    };
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Interpolation(FilterType::Bilinear))
        .use_alpha(false);
    let mut fir = Resizer::new();
    let (mut total, mut fir_differ, mut fir_max, mut ours_differ, mut exact_cases) =
        (0, 0, 0, 0, 0);
    let cases = manifest["resize"].as_array().expect("resize cases");
    for case in cases.iter().filter(|c| c["interp"] == "LINEAR") {
        let (src, want) = (load(&case["input"]), load(&case["output"]));
        let (w, h) = (want.width(), want.height());
        let pixel = match src.channels() {
            1 => PixelType::U8,
            3 => PixelType::U8x3,
            _ => PixelType::U8x4,
        };
        let fir_src = FirImage::from_vec_u8(
            src.width() as u32,
            src.height() as u32,
            src.as_bytes().to_vec(),
            pixel,
        )
        .expect("a reference image");
        let mut fir_dst = FirImage::new(w as u32, h as u32, pixel);
        fir.resize(&fir_src, &mut fir_dst, &options)
            .expect("fast_image_resize resizes");
        let ours =
            resize::resize_to(&src.view(), w, h, Interpolation::Linear).expect("tensorcv resizes");
        let (fm, fc) = diff(fir_dst.buffer(), want.as_bytes());
        let (om, oc) = diff(ours.as_bytes(), want.as_bytes());
        println!(
            "{:<20} {:>4}x{:<4} {}ch  fast_image_resize: max {fm}, {fc:>6} of {:>6} bytes differ ({:5.2} %)  tensorcv: max {om}, {oc} differ",
            case["input"].as_str().unwrap_or("?"),
            w,
            h,
            src.channels(),
            want.as_bytes().len(),
            100.0 * fc as f64 / want.as_bytes().len() as f64
        );
        total += want.as_bytes().len();
        fir_differ += fc;
        fir_max = fir_max.max(fm);
        ours_differ += oc;
        exact_cases += usize::from(fc == 0);
    }
    println!(
        "all linear cases: fast_image_resize max {fir_max}, {fir_differ} of {total} bytes differ ({:.1} %), {exact_cases} cases exact; tensorcv {ours_differ} bytes differ",
        100.0 * fir_differ as f64 / total as f64
    );
}
