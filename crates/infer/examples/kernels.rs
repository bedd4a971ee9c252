//! tensorcv's kernels against tract's own on one model: `cargo run --release -p tensorcv-infer
//! --example kernels -- MODEL [THREADS] [RUNS]`. Prints the largest output difference and the
//! median inference time of both.

use tensorcv_imgproc::{Image, PixelFormat};
use tensorcv_infer::{LoadOptions, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: kernels MODEL [THREADS] [RUNS]")?;
    let threads = args.next().map(|t| t.parse()).transpose()?.unwrap_or(1);
    let runs = args.next().map(|t| t.parse()).transpose()?.unwrap_or(200);
    let load = |tract_only| {
        Model::load_with(
            &path,
            LoadOptions {
                threads,
                tract_only,
                ..Default::default()
            },
        )
    };
    let (ours, theirs) = (load(false)?, load(true)?);
    let mut image = Image::new(640, 480, PixelFormat::Bgr8)?;
    let mut x = 1u32;
    for e in image.as_bytes_mut() {
        x = x.wrapping_mul(1664525).wrapping_add(1013904223);
        *e = (x >> 24) as u8;
    }
    let tensor = ours.session()?.preprocess(&image.view())?.clone();
    let a = ours.run_tensor(&tensor)?;
    let b = theirs.run_tensor(&tensor)?;
    for name in a.names() {
        let (x, y) = (a.get(name)?, b.get(name)?);
        let diff = x
            .iter()
            .zip(y.iter())
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        let scale = y.iter().map(|q| q.abs()).fold(0f32, f32::max);
        println!("{name}: max |diff| {diff:e} (largest value {scale})");
    }
    for (label, m) in [
        ("tensorcv kernels", &ours),
        ("tract only", &theirs),
        ("tensorcv kernels", &ours),
        ("tract only", &theirs),
    ] {
        let t = m.time_runs(&tensor, runs)?;
        println!(
            "{label:>17}: median {:.3} ms, min {:.3} ms",
            t.median, t.min
        );
    }
    Ok(())
}
