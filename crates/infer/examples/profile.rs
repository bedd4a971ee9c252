//! Where tract spends its time on a model: `cargo run --release -p tensorcv-infer --example
//! profile -- MODEL [IMAGE] [THREADS]`. Prints the operators, slowest first.

use tensorcv_imgproc::io::{imread, DecodeOptions};
use tensorcv_imgproc::{Image, PixelFormat};
use tensorcv_infer::{LoadOptions, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: profile MODEL [IMAGE] [THREADS]")?;
    let image = match args.next() {
        Some(p) => imread(p, &DecodeOptions::default())?,
        None => Image::new(640, 480, PixelFormat::Bgr8)?,
    };
    let threads = args.next().map(|t| t.parse()).transpose()?.unwrap_or(1);
    let model = Model::load_with(
        &path,
        LoadOptions {
            threads,
            ..Default::default()
        },
    )?;
    let tensor = model.session()?.preprocess(&image.view())?.clone();
    let profile = model.profile(&tensor, 20)?;
    let total: std::time::Duration = profile.iter().map(|t| t.time).sum();
    println!(
        "{path}: {:.3} ms per run, {threads} thread(s)",
        total.as_secs_f64() * 1e3
    );
    for t in &profile {
        println!(
            "{:>8.3} ms {:>5.1}%  {:>3} x {}",
            t.time.as_secs_f64() * 1e3,
            100.0 * t.time.as_secs_f64() / total.as_secs_f64(),
            t.nodes,
            t.op
        );
    }
    Ok(())
}
