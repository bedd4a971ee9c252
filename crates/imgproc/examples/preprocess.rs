//! Turn a photo into a model input the way a Python/OpenCV pipeline would, and show it.
//!
//! ```text
//! cargo run --release -p tensorcv-imgproc --example preprocess -- tests/data/imgproc/chelsea.png
//! ```
//!
//! Decodes the image (BGR, EXIF-rotated, like `cv2.imread`), letterboxes it into a
//! 1×3×224×224 ImageNet-normalized RGB tensor in one pass, prints what it made, and writes the
//! letterboxed picture with the content area outlined and labelled.

use std::process::ExitCode;
use tensorcv_imgproc::draw::{self, Color};
use tensorcv_imgproc::geometry::{self, Fit};
use tensorcv_imgproc::io::{imread, imwrite, DecodeOptions};
use tensorcv_imgproc::tensor::{Layout, Preprocessor, TensorSpec};
use tensorcv_imgproc::Interpolation;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(input) = args.first() else {
        eprintln!("usage: preprocess IMAGE [OUT.png]");
        return ExitCode::from(2);
    };
    let out = args.get(1).map_or("target/preprocess.png", String::as_str);
    match run(input, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("preprocess: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(input: &str, out: &str) -> Result<(), tensorcv_imgproc::Error> {
    let img = imread(input, &DecodeOptions::default())?;
    println!("{input}: {}x{} {}", img.width(), img.height(), img.format());

    let spec = TensorSpec::new(224, 224)
        .with_layout(Layout::Nchw)
        .with_mean_std([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        .with_fit(Fit::Letterbox, 0);
    let mut pre = Preprocessor::try_new(spec.clone())?;
    let mut tensor = spec.alloc(1);
    let tf = pre.run(&img.view(), &mut tensor, 0)?;
    let data = tensor.as_f32().expect("an f32 spec makes an f32 tensor");
    println!(
        "tensor {:?} {} {}, letterbox scale {:.4} offset ({}, {})",
        tensor.shape(),
        tensor.dtype(),
        tensor.layout(),
        tf.scale_x,
        tf.offset_x,
        tf.offset_y
    );
    for (c, name) in ["R", "G", "B"].iter().enumerate() {
        let plane = &data[c * 224 * 224..(c + 1) * 224 * 224];
        let (min, max) = plane
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let mean = plane.iter().sum::<f32>() / plane.len() as f32;
        println!("  {name}: min {min:+.4} max {max:+.4} mean {mean:+.4}");
    }

    // The same placement as a picture, with the source's corners mapped through the transform.
    let (mut boxed, _) =
        geometry::letterbox_to(&img.view(), 224, 224, Interpolation::Linear, &[0, 0, 0])?;
    let [x1, y1, x2, y2] = tf.box_to_target([0.0, 0.0, img.width() as f64, img.height() as f64]);
    let mut canvas = boxed.view_mut();
    let corners = [x1 as i32, y1 as i32, x2 as i32 - 1, y2 as i32 - 1];
    draw::rectangle(&mut canvas, corners, Color::GREEN, 2);
    draw::label(
        &mut canvas,
        corners[0],
        corners[1],
        "content",
        Color::BLACK,
        Color::GREEN,
        1,
    );
    imwrite(out, &boxed.view())?;
    println!("wrote {out}");
    Ok(())
}
