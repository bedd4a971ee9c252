//! `tensorcv`: run TensorFlow-trained vision models (exported to ONNX or TFLite) on images —
//! classify, detect, segment — with the preprocessing and post-processing their model cards
//! describe. Thin: it parses flags, wires the library crates, and prints.

mod builtin;
mod options;
mod output;

use clap::Parser;
use options::{Background as BackgroundFlag, Cli, Command, TaskArgs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tensorcv_imgproc::draw::Color;
use tensorcv_imgproc::io::{imread, imwrite, DecodeOptions};
use tensorcv_infer::Task;
use tensorcv_tasks::pipeline::{Outcome, Pipeline};
use tensorcv_tasks::segmentation::{Background, Segmentation};
use tensorcv_tasks::visualize::draw_outcome;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Models => {
            output::models();
            Ok(true)
        }
        Command::Inspect(args) => {
            options::load(&args.model, &args.pre, None, 1).map(|(model, from)| {
                output::inspect(&model, &from, &args.pre, args.json);
                true
            })
        }
        Command::Classify(args) => run(args, Some(Task::Classification)),
        Command::Detect(args) => run(args, Some(Task::Detection)),
        Command::Segment(args) => run(args, Some(Task::Segmentation)),
        Command::Run(args) => run(args, None),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("tensorcv: {message}");
            ExitCode::from(1)
        }
    }
}

/// The image files an INPUT names: a file as is, a folder walked (sorted, images only).
fn expand(input: &Path) -> Result<Vec<PathBuf>, String> {
    const EXTENSIONS: &[&str] = &[
        "jpg", "jpeg", "png", "bmp", "webp", "gif", "tif", "tiff", "pgm", "ppm", "pnm", "pbm",
    ];
    if !input.is_dir() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut dirs = vec![input.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("cannot read folder '{}': {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(format!("folder '{}' holds no images", input.display()));
    }
    Ok(found)
}

/// Run the task on every input; `Ok(false)` when some inputs failed (they are listed).
fn run(args: &TaskArgs, task: Option<Task>) -> Result<bool, String> {
    let default = match task {
        Some(Task::Detection) => Some("face"),
        Some(Task::Segmentation) => Some("selfie"),
        _ => None,
    };
    let spec = match (&args.model, default) {
        (Some(m), _) => m.as_str(),
        (None, Some(d)) => d,
        (None, None) => return Err("which model? give one with -m (see `tensorcv models`)".into()),
    };
    if args.dump.is_some() && args.roi_from.is_some() {
        usage("--dump writes one model's tensors per image; it cannot be used with --roi-from");
    }
    let (model, _) = options::load(spec, &args.pre, Some(args), args.threads)?;
    let mut pipeline = Pipeline::new(&model, task).map_err(|e| format!("model '{spec}': {e}"))?;
    if let Some(det) = &args.roi_from {
        let (m, _) = options::load(det, &options::Preprocess::default(), None, args.threads)?;
        pipeline = pipeline
            .with_regions_from(&m)
            .map_err(|e| format!("model '{det}': {e}"))?;
    }
    if args.background.is_some() && pipeline.postprocess().task() != Task::Segmentation {
        usage("--background needs a segmentation model");
    }
    let mut effect = match &args.background {
        Some(BackgroundFlag::Image(path)) => Some(Background::picture(
            imread(path, &DecodeOptions::default())
                .map_err(|e| format!("background '{}': {e}", path.display()))?,
        )),
        Some(BackgroundFlag::Color([r, g, b])) => Some(Background::color(Color::rgb(*r, *g, *b))),
        Some(BackgroundFlag::Blur(k)) => Some(Background::blur(*k).map_err(|e| e.to_string())?),
        None => None,
    };
    for dir in [&args.save, &args.dump].into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    }
    let mut failures = Vec::new();
    let mut files = Vec::new();
    for input in &args.inputs {
        match expand(input) {
            Ok(f) => files.extend(f),
            Err(e) => {
                eprintln!("tensorcv: {e}");
                failures.push(e);
            }
        }
    }
    let progress = output::Progress::new(files.len());
    for file in &files {
        let result = process(file, args, &mut pipeline, &mut effect);
        match result {
            Ok(record) => progress.println(|| output::print(&record, args.json)),
            Err(e) => {
                progress.println(|| eprintln!("tensorcv: {e}"));
                failures.push(e);
            }
        }
        progress.inc();
    }
    progress.finish();
    if failures.len() > 1 {
        eprintln!("tensorcv: {} inputs failed:", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
    }
    Ok(failures.is_empty())
}

/// A usage error found after parsing: clap's message format and exit code 2.
fn usage(message: &str) -> ! {
    use clap::CommandFactory;
    Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, message)
        .exit()
}

/// One input file: decode, analyse, write what was asked for; its JSON record.
fn process(
    file: &Path,
    args: &TaskArgs,
    pipeline: &mut Pipeline,
    effect: &mut Option<Background>,
) -> Result<serde_json::Value, String> {
    let name = file.display().to_string();
    let err = |e: &dyn std::fmt::Display| format!("{name}: {e}");
    let t0 = Instant::now();
    let mut image = imread(file, &DecodeOptions::default()).map_err(|e| err(&e))?;
    let decode = t0.elapsed().as_secs_f64() * 1e3;
    let analysis = pipeline.process(&image.view()).map_err(|e| err(&e))?;
    let t1 = Instant::now();
    let stem = file
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    if let (Some(dir), Some(outputs)) = (&args.dump, pipeline.last_outputs()) {
        dump(dir, &stem, pipeline.input(), outputs).map_err(|e| err(&e))?;
    }
    let labels = pipeline.postprocess().labels().to_vec();
    let (w, h) = (image.width(), image.height());
    // the whole image's segmentation, when there is one (regions: composed)
    let seg = match &analysis.outcome {
        Outcome::Segmentation(s) => Some(std::borrow::Cow::Borrowed(s)),
        Outcome::Regions(r) if pipeline.postprocess().task() == Task::Segmentation => Some(
            std::borrow::Cow::Owned(Segmentation::compose(w, h, r).map_err(|e| err(&e))?),
        ),
        _ => None,
    };
    let mut mask_path = None;
    if let (Some(dir), Some(seg)) = (&args.save, &seg) {
        let p = dir.join(format!("{stem}.mask.png"));
        let colors = seg.colorized().map_err(|e| err(&e))?;
        imwrite(&p, &colors.view()).map_err(|e| err(&e))?;
        mask_path = Some(p.display().to_string());
    }
    let mut record = output::Record::new(&name, w, h);
    record.outcome(&analysis.outcome, seg.as_deref(), &labels, mask_path);
    if let Some(dir) = &args.save {
        match (effect.as_mut(), &seg) {
            (Some(effect), Some(seg)) => effect
                .apply(seg, &mut image.view_mut())
                .map_err(|e| err(&e))?,
            _ => draw_outcome(&mut image.view_mut(), &analysis.outcome, &labels, 0.5)
                .map_err(|e| err(&e))?,
        }
        imwrite(dir.join(format!("{stem}.png")), &image.view()).map_err(|e| err(&e))?;
    }
    let t = analysis.timings;
    let post = t.postprocess + t1.elapsed().as_secs_f64() * 1e3;
    record.timings(decode, t.preprocess, t.inference, post);
    Ok(record.into_json())
}

/// `--dump`: the model input and every output of one image as `.npy`
/// (`DIR/<image>.input.npy`, `DIR/<image>.<output>.npy`, output names made file-safe).
fn dump(
    dir: &Path,
    stem: &str,
    input: &tensorcv_imgproc::tensor::Tensor,
    outputs: &tensorcv_infer::Outputs,
) -> Result<(), String> {
    use tensorcv_infer::npy::{tensor_to_npy, to_npy};
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(format!("{stem}.{name}.npy"));
        std::fs::write(&path, bytes).map_err(|e| format!("cannot write '{}': {e}", path.display()))
    };
    write("input", tensor_to_npy(input))?;
    for (i, name) in outputs.names().iter().enumerate() {
        let Some(a) = outputs.by_index(i) else {
            continue;
        };
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        write(&safe, to_npy(a.shape(), a.iter().copied()))?;
    }
    Ok(())
}
