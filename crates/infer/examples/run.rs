//! Load a model (ONNX or TFLite) with its card, describe it, run it on an image and print what
//! came out: `cargo run --release -p tensorcv-infer --example run -- MODEL IMAGE`.
//! Classification models print their top classes with the card's labels.

use tensorcv_imgproc::io::{imread, DecodeOptions};
use tensorcv_infer::{Model, Task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_path, image_path] = &args[..] else {
        return Err("usage: run MODEL IMAGE".into());
    };
    let model = Model::load(model_path)?;
    let card = model.card();
    println!(
        "{model_path}: {:?}, task {:?}{}",
        model.info().format,
        card.model.task,
        card.model
            .description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    );
    for input in &model.info().inputs {
        println!("  input  {input}");
    }
    for output in &model.info().outputs {
        println!("  output {output}");
    }
    let spec = model.input_spec();
    println!(
        "  preprocessing: {} {}x{} {}, range {}, {} resize, fit {}",
        spec.channels, spec.width, spec.height, spec.layout, spec.range, spec.interp, spec.fit
    );
    let image = imread(image_path, &DecodeOptions::default())?;
    let (outputs, _) = model.session()?.run(&image.view())?;
    for name in outputs.names() {
        let v = outputs.get(name)?;
        let (min, max) = v
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        println!("{name}: {:?}, min {min:.4} max {max:.4}", v.shape());
    }
    if card.model.task == Task::Classification {
        let output = card
            .classification
            .as_ref()
            .and_then(|t| t.get("output"))
            .and_then(|o| o.as_str())
            .unwrap_or(&outputs.names()[0]);
        let scores = outputs.get(output)?;
        let mut ranked: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (i, score) in ranked.iter().take(3) {
            let label = card.labels.get(*i).map(String::as_str).unwrap_or("?");
            println!("  {label:<10} {score:.4}");
        }
    }
    Ok(())
}
