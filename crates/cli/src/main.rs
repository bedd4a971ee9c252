//! `tensorcv`: run TensorFlow-trained vision models (exported to ONNX or TFLite) on images —
//! classify, detect, segment — with the preprocessing and post-processing their model cards
//! describe. Thin: it parses flags, wires the library crates, and prints.

mod builtin;
mod options;
mod output;

use clap::Parser;
use options::{Cli, Command, TaskArgs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tensorcv_imgproc::io::{imread, imwrite, DecodeOptions};
use tensorcv_infer::Task;
use tensorcv_tasks::classification::{classify_outputs, ClassifySettings};
use tensorcv_tasks::segmentation::{segment, SegmentSettings};
use tensorcv_tasks::visualize::{draw_classes, draw_detections, draw_legend};
use tensorcv_tasks::Detector;

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
    let (model, _) = options::load(spec, &args.pre, Some(args), args.threads)?;
    let task = task.unwrap_or(model.card().model.task);
    if task != Task::Raw && task != model.card().model.task && model.card().model.task != Task::Raw
    {
        return Err(format!(
            "model '{spec}' is a {:?} model, not {task:?} (its card says so)",
            model.card().model.task
        ));
    }
    let labels = model.card().labels.clone();
    let classify_settings = match task {
        Task::Classification => {
            Some(ClassifySettings::from_card(model.card()).map_err(|e| format!("{spec}: {e}"))?)
        }
        _ => None,
    };
    let detector = match task {
        Task::Detection => {
            Some(Detector::for_model(&model).map_err(|e| format!("model '{spec}': {e}"))?)
        }
        _ => None,
    };
    let segment_settings = match task {
        Task::Segmentation => {
            Some(SegmentSettings::from_card(model.card()).map_err(|e| format!("{spec}: {e}"))?)
        }
        _ => None,
    };
    for dir in [&args.save, &args.dump].into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    }
    let mut session = model.session().map_err(|e| e.to_string())?;
    // --roi-from: a detector first, the task model on each region
    let mut roi = match &args.roi_from {
        Some(spec) => {
            if task != Task::Classification {
                return Err(
                    "--roi-from runs classification models on detected regions; detection and \
                     segmentation inside regions are not supported yet"
                        .into(),
                );
            }
            let (m, _) = options::load(spec, &options::Preprocess::default(), None, args.threads)?;
            let d = Detector::for_model(&m).map_err(|e| format!("model '{spec}': {e}"))?;
            Some((d, m.session().map_err(|e| e.to_string())?))
        }
        None => None,
    };
    let c = &model.card().input;
    let (roi_scale, roi_square, roi_pad) = (
        c.roi_scale.unwrap_or(1.0),
        c.roi_square.unwrap_or(false),
        c.roi_pad.unwrap_or(0.0),
    );
    let mut failures = Vec::new();
    for input in &args.inputs {
        let files = match expand(input) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("tensorcv: {e}");
                failures.push(e);
                continue;
            }
        };
        for file in files {
            let result = (|| -> Result<serde_json::Value, String> {
                let name = file.display().to_string();
                let err = |e: &dyn std::fmt::Display| format!("{name}: {e}");
                let t0 = Instant::now();
                let mut image = imread(&file, &DecodeOptions::default()).map_err(|e| err(&e))?;
                let t1 = Instant::now();
                if let Some((detector, det_session)) = roi.as_mut() {
                    let (outs, tr) = det_session.run(&image.view()).map_err(|e| err(&e))?;
                    let found = detector.detect(&outs, &tr).map_err(|e| err(&e))?;
                    let t2 = Instant::now();
                    let s = classify_settings.as_ref().expect("set for classification");
                    let (w, h) = (image.width(), image.height());
                    let mut regions = Vec::new();
                    for d in found {
                        let Some(rect) = d.region(roi_scale, roi_square, roi_pad, w, h) else {
                            continue;
                        };
                        let crop = image.view().sub_view(rect).map_err(|e| err(&e))?;
                        session.prepare(&crop).map_err(|e| err(&e))?;
                        let outputs = session.run_prepared().map_err(|e| err(&e))?;
                        let classes =
                            classify_outputs(&outputs, s, &labels).map_err(|e| err(&e))?;
                        regions.push((d, classes));
                    }
                    let t3 = Instant::now();
                    let shown: Vec<_> = regions
                        .iter()
                        .map(|(d, classes)| {
                            let mut d = d.clone();
                            if let Some(top) = classes.first() {
                                d.label = top.label.clone().or(d.label);
                                d.score = top.score;
                            }
                            d
                        })
                        .collect();
                    draw_detections(&mut image.view_mut(), &shown);
                    let mut record = output::Record::new(&name, w, h);
                    record.regions(&regions);
                    if let Some(dir) = &args.save {
                        let stem = file.file_stem().unwrap_or_default().to_string_lossy();
                        imwrite(dir.join(format!("{stem}.png")), &image.view())
                            .map_err(|e| err(&e))?;
                    }
                    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
                    record.timings_roi(ms(t0, t1), ms(t1, t2), ms(t2, t3));
                    return Ok(record.into_json());
                }
                let transform = session.prepare(&image.view()).map_err(|e| err(&e))?;
                let t2 = Instant::now();
                let outputs = session.run_prepared().map_err(|e| err(&e))?;
                let t3 = Instant::now();
                let mut record = output::Record::new(&name, image.width(), image.height());
                let stem = file
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                if let Some(dir) = &args.dump {
                    dump(dir, &stem, session.input(), &outputs).map_err(|e| err(&e))?;
                }
                match task {
                    Task::Classification => {
                        let s = classify_settings.as_ref().expect("set for classification");
                        let classes =
                            classify_outputs(&outputs, s, &labels).map_err(|e| err(&e))?;
                        draw_classes(&mut image.view_mut(), &classes);
                        record.classes(&classes);
                    }
                    Task::Detection => {
                        let d = detector.as_ref().expect("set for detection");
                        let found = d.detect(&outputs, &transform).map_err(|e| err(&e))?;
                        draw_detections(&mut image.view_mut(), &found);
                        record.detections(&found);
                    }
                    Task::Segmentation => {
                        let s = segment_settings.as_ref().expect("set for segmentation");
                        let (w, h) = (image.width(), image.height());
                        let seg = segment(&outputs, s, &transform, w, h).map_err(|e| err(&e))?;
                        let shares = seg.fractions(&labels);
                        let mut mask_path = None;
                        if let Some(dir) = &args.save {
                            let p = dir.join(format!("{stem}.mask.png"));
                            imwrite(&p, &seg.colorized().map_err(|e| err(&e))?.view())
                                .map_err(|e| err(&e))?;
                            mask_path = Some(p.display().to_string());
                        }
                        seg.overlay(&mut image.view_mut(), 0.5)
                            .map_err(|e| err(&e))?;
                        draw_legend(&mut image.view_mut(), &shares);
                        record.segmentation(&shares, mask_path);
                    }
                    Task::Raw => record.raw(&outputs),
                }
                let t4 = Instant::now();
                if let Some(dir) = &args.save {
                    let p = dir.join(format!("{stem}.png"));
                    imwrite(&p, &image.view()).map_err(|e| err(&e))?;
                }
                let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
                record.timings(ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t3, t4));
                Ok(record.into_json())
            })();
            match result {
                Ok(record) => output::print(&record, args.json),
                Err(e) => {
                    eprintln!("tensorcv: {e}");
                    failures.push(e);
                }
            }
        }
    }
    if failures.len() > 1 {
        eprintln!("tensorcv: {} inputs failed:", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
    }
    Ok(failures.is_empty())
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
