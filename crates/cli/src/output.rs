//! What the command prints: a readable table by default, JSON Lines with `--json`.

use crate::builtin::BUILTINS;
use crate::options::{Origin, Preprocess};
use serde_json::{json, Map, Value};
use std::io::{self, Write};
use tensorcv_capture::camera::CameraInfo;
use tensorcv_capture::runner::{StageStats, Summary};
use tensorcv_infer::{Model, ModelCard};
use tensorcv_tasks::classification::Class;
use tensorcv_tasks::pipeline::Outcome;
use tensorcv_tasks::segmentation::{ClassShare, Segmentation};
use tensorcv_tasks::Detection;

/// One input's result, in the JSON shape of the README (keys that do not apply are left out).
#[derive(Clone)]
pub struct Record(Map<String, Value>);

fn round(v: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (v * p).round() / p
}

impl Record {
    pub fn new(source: &str, frame: u64, width: usize, height: usize) -> Self {
        let mut m = Map::new();
        m.insert("source".into(), json!(source));
        m.insert("frame".into(), json!(frame));
        m.insert("width".into(), json!(width));
        m.insert("height".into(), json!(height));
        Record(m)
    }

    /// The outcome's keys: `classes`, `detections` (regions: each with what the second model
    /// found in it), `segmentation` (the whole image's, with the mask file), `outputs`.
    pub fn outcome(
        &mut self,
        outcome: &Outcome,
        segmentation: Option<&Segmentation>,
        labels: &[String],
        mask: Option<String>,
    ) {
        match outcome {
            Outcome::Classes(classes) => {
                self.0.insert("classes".into(), classes_json(classes));
            }
            Outcome::Detections(found) => {
                self.0.insert("detections".into(), detections_json(found));
            }
            Outcome::Outputs(outputs) => {
                let v: Vec<Value> = outputs
                    .iter()
                    .map(|o| {
                        json!({"name": o.name, "shape": o.shape, "min": o.min, "max": o.max,
                               "mean": round(o.mean, 6)})
                    })
                    .collect();
                self.0.insert("outputs".into(), Value::Array(v));
            }
            Outcome::Segmentation(_) => {}
            Outcome::Regions(regions) => {
                let found: Vec<Detection> = regions.iter().map(|r| r.detection.clone()).collect();
                let mut list = detections_json(&found);
                if let Value::Array(entries) = &mut list {
                    for (entry, r) in entries.iter_mut().zip(regions) {
                        let rect = r.rect;
                        entry["region"] =
                            json!([rect.x, rect.y, rect.x + rect.width, rect.y + rect.height]);
                        match &r.outcome {
                            Outcome::Classes(c) => entry["classes"] = classes_json(c),
                            Outcome::Detections(d) => entry["detections"] = detections_json(d),
                            Outcome::Segmentation(s) => {
                                entry["segmentation"] =
                                    json!({"classes": shares_json(&s.fractions(labels))})
                            }
                            Outcome::Outputs(_) | Outcome::Regions(_) => {}
                        }
                    }
                }
                self.0.insert("detections".into(), list);
            }
        }
        if let Some(seg) = segmentation {
            let mut o = json!({ "classes": shares_json(&seg.fractions(labels)) });
            if let Some(m) = mask {
                o["mask"] = json!(m);
            }
            self.0.insert("segmentation".into(), o);
        }
    }

    /// The image was decoded reduced (`--fast-decode`): `width`, `height` and every coordinate
    /// are the decoded image's; divided by `scale` they are the file's.
    pub fn scale(&mut self, scale: f32) {
        self.0.insert("scale".into(), json!(scale));
    }

    /// When the frame is shown in its stream.
    pub fn timestamp(&mut self, ms: f64) {
        self.0.insert("timestamp_ms".into(), json!(round(ms, 3)));
    }

    pub fn timings(&mut self, decode: f64, preprocess: f64, inference: f64, post: f64) {
        self.0.insert(
            "timings_ms".into(),
            json!({"decode": round(decode, 3), "preprocess": round(preprocess, 3),
                   "inference": round(inference, 3), "postprocess": round(post, 3)}),
        );
    }

    pub fn into_json(self) -> Value {
        Value::Object(self.0)
    }
}

fn classes_json(classes: &[Class]) -> Value {
    classes
        .iter()
        .map(|c| json!({"index": c.index, "label": c.label, "score": round(c.score as f64, 5)}))
        .collect()
}

fn shares_json(shares: &[ClassShare]) -> Value {
    shares
        .iter()
        .map(|s| json!({"index": s.index, "label": s.label, "fraction": round(s.fraction as f64, 5)}))
        .collect()
}

fn detections_json(detections: &[Detection]) -> Value {
    detections
        .iter()
        .map(|d| {
            let mut o = json!({
                "box": d.bbox.map(|v| round(v as f64, 2)),
                "score": round(d.score as f64, 5),
                "class": d.class,
                "label": d.label,
            });
            if !d.keypoints.is_empty() {
                let k: Vec<[f64; 2]> = d
                    .keypoints
                    .iter()
                    .map(|k| [round(k[0] as f64, 2), round(k[1] as f64, 2)])
                    .collect();
                o["keypoints"] = json!(k);
            }
            o
        })
        .collect()
}

/// A progress bar on stderr while many inputs are processed, only when stderr is a terminal
/// (never in output that a program reads).
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub fn new(inputs: usize) -> Self {
        use std::io::IsTerminal;
        let show = inputs > 1 && std::io::stderr().is_terminal();
        Progress(show.then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(inputs as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} inputs, {per_sec}, eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar.tick();
            bar
        }))
    }

    /// Print around the bar (it is hidden while `print` writes).
    pub fn println<R>(&self, print: impl FnOnce() -> R) -> R {
        match &self.0 {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    pub fn inc(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// One input's record as text: a JSON line, or a few readable lines.
pub fn render(record: &Value, json: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if json {
        let _ = writeln!(out, "{record}");
        return out;
    }
    let source = record["source"].as_str().unwrap_or_default();
    let label = |v: &Value| {
        v["label"].as_str().map(String::from).unwrap_or_else(|| {
            format!(
                "class {}",
                v["index"].as_u64().or(v["class"].as_u64()).unwrap_or(0)
            )
        })
    };
    if let Some(classes) = record["classes"].as_array() {
        let text: Vec<String> = classes
            .iter()
            .map(|c| format!("{} {:.3}", label(c), c["score"].as_f64().unwrap_or(0.0)))
            .collect();
        let _ = writeln!(
            out,
            "{source}: {}",
            if text.is_empty() {
                "no class above the threshold".into()
            } else {
                text.join(", ")
            }
        );
    }
    if let Some(dets) = record["detections"].as_array() {
        let _ = writeln!(
            out,
            "{source}: {} detection{}",
            dets.len(),
            if dets.len() == 1 { "" } else { "s" }
        );
        for d in dets {
            let _ = writeln!(out, "  {}", detection_line(d, &label));
            // what a second model found in this region
            for inner in d["detections"].as_array().into_iter().flatten() {
                let _ = writeln!(out, "    {}", detection_line(inner, &label));
            }
            if let Some(shares) = d["segmentation"]["classes"].as_array() {
                let _ = writeln!(out, "    {}", shares_line(shares, &label));
            }
        }
    }
    if let Some(seg) = record["segmentation"].as_object() {
        let shares = seg["classes"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(out, "{source}: {}", shares_line(&shares, &label));
        if let Some(m) = seg.get("mask").and_then(Value::as_str) {
            let _ = writeln!(out, "  mask: {m}");
        }
    }
    if let Some(outputs) = record["outputs"].as_array() {
        let _ = writeln!(out, "{source}:");
        for o in outputs {
            let _ = writeln!(
                out,
                "  {} {} min {:.4} max {:.4} mean {:.4}",
                o["name"].as_str().unwrap_or_default(),
                o["shape"],
                o["min"].as_f64().unwrap_or(0.0),
                o["max"].as_f64().unwrap_or(0.0),
                o["mean"].as_f64().unwrap_or(0.0)
            );
        }
    }
    out
}

/// `label 0.970 [x1, y1, x2, y2]: class 0.9, ...` for one detection.
fn detection_line(d: &Value, label: &dyn Fn(&Value) -> String) -> String {
    let b: Vec<String> = d["box"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| format!("{:.1}", v.as_f64().unwrap_or(0.0)))
        .collect();
    let classes: Vec<String> = d["classes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {:.3}", label(c), c["score"].as_f64().unwrap_or(0.0)))
        .collect();
    format!(
        "{} {:.3} [{}]{}",
        label(d),
        d["score"].as_f64().unwrap_or(0.0),
        b.join(", "),
        if classes.is_empty() {
            String::new()
        } else {
            format!(": {}", classes.join(", "))
        }
    )
}

/// `person 49.1%, background 50.9%` for a segmentation's class shares.
fn shares_line(shares: &[Value], label: &dyn Fn(&Value) -> String) -> String {
    shares
        .iter()
        .map(|c| {
            format!(
                "{} {:.1}%",
                label(c),
                c["fraction"].as_f64().unwrap_or(0.0) * 100.0
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The run's summary: readable lines on stderr, or (`json`) a `{"summary": ...}` line on
/// stdout.
pub fn summary(s: &Summary, json: bool) -> io::Result<()> {
    let stage = |st: &StageStats| {
        json!({"mean": round(st.mean, 3), "p50": round(st.p50, 3), "p95": round(st.p95, 3),
               "max": round(st.max, 3)})
    };
    if json {
        let stages: Map<String, Value> = s
            .stages
            .iter()
            .map(|(name, st)| (name.to_string(), stage(st)))
            .collect();
        let v = json!({"summary": {
            "source": s.source, "frames_in": s.frames_in, "processed": s.processed,
            "dropped": s.dropped, "skipped": s.skipped, "failed": s.failed,
            "seconds": round(s.seconds, 3), "fps": round(s.fps, 2),
            "stages_ms": stages, "latency_ms": stage(&s.latency),
            "interrupted": s.interrupted}});
        let mut out = io::stdout().lock();
        writeln!(out, "{v}")?;
        return out.flush();
    }
    // stderr: a closed or full stderr is ignored
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "tensorcv: {}: {} frames in, {} processed, {} dropped, {} skipped, {} failed in {:.2} s \
         ({:.1} fps){}",
        s.source,
        s.frames_in,
        s.processed,
        s.dropped,
        s.skipped,
        s.failed,
        s.seconds,
        s.fps,
        if s.interrupted { ", interrupted" } else { "" }
    );
    let row = |st: &StageStats| format!("{:.2} / {:.2} / {:.2}", st.p50, st.p95, st.max);
    let stages: Vec<String> = s
        .stages
        .iter()
        .map(|(name, st)| format!("{name} {}", row(st)))
        .collect();
    let _ = writeln!(err, "  ms p50 / p95 / max: {}", stages.join(", "));
    let _ = writeln!(err, "  latency {} ms", row(&s.latency));
    Ok(())
}

/// What `tensorcv bench` measured.
pub struct BenchReport<'a> {
    pub model: &'a str,
    pub threads: usize,
    pub image: (usize, usize),
    pub load_ms: f64,
    pub preprocess_ms: f64,
    pub runs: &'a tensorcv_infer::RunTimes,
    pub ops: &'a [tensorcv_infer::OpTime],
    pub profile_runs: usize,
    pub top: usize,
    pub peak_rss_kb: Option<u64>,
    pub json: bool,
}

/// `tensorcv bench`.
pub fn bench(out: &mut dyn Write, r: &BenchReport<'_>) -> io::Result<()> {
    let total: f64 = r
        .ops
        .iter()
        .map(|o| o.time.as_secs_f64())
        .sum::<f64>()
        .max(1e-12);
    let per_run = |o: &tensorcv_infer::OpTime| o.time.as_secs_f64() * 1e3;
    if r.json {
        let ops: Vec<Value> = r
            .ops
            .iter()
            .take(r.top)
            .map(|o| {
                json!({"op": o.op, "ms": round(per_run(o), 4),
                       "share": round(o.time.as_secs_f64() / total, 4)})
            })
            .collect();
        let v = json!({"model": r.model, "threads": r.threads,
            "image": [r.image.0, r.image.1],
            "load_ms": round(r.load_ms, 2), "first_run_ms": round(r.runs.first, 3),
            "inference_ms": {"median": round(r.runs.median, 3), "p95": round(r.runs.p95, 3),
                             "min": round(r.runs.min, 3), "mean": round(r.runs.mean, 3),
                             "runs": r.runs.runs},
            "preprocess_ms": round(r.preprocess_ms, 3), "peak_rss_kb": r.peak_rss_kb,
            "ops": ops});
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(
        out,
        "{} ({} thread{})",
        r.model,
        r.threads,
        if r.threads == 1 { "" } else { "s" }
    )?;
    writeln!(out, "  load (parse + optimize)  {:>9.2} ms", r.load_ms)?;
    writeln!(out, "  first run                {:>9.3} ms", r.runs.first)?;
    writeln!(
        out,
        "  inference                {:>9.3} ms median, {:.3} p95, {:.3} min ({} runs)",
        r.runs.median, r.runs.p95, r.runs.min, r.runs.runs
    )?;
    writeln!(
        out,
        "  preprocess {}x{}      {:>9.3} ms median",
        r.image.0, r.image.1, r.preprocess_ms
    )?;
    if let Some(kb) = r.peak_rss_kb {
        writeln!(
            out,
            "  peak RSS                 {:>9.1} MB",
            kb as f64 / 1024.0
        )?;
    }
    writeln!(
        out,
        "  where the time goes (per run, mean of {} profiled runs):",
        r.profile_runs
    )?;
    for o in r.ops.iter().take(r.top) {
        writeln!(
            out,
            "    {:<24} {:>8.3} ms {:>5.1} %",
            o.op,
            per_run(o),
            100.0 * o.time.as_secs_f64() / total
        )?;
    }
    Ok(())
}

/// `tensorcv cameras`.
pub fn cameras(out: &mut dyn Write, cameras: &[CameraInfo]) -> io::Result<()> {
    if cameras.is_empty() {
        writeln!(out, "no cameras found")?;
    }
    for c in cameras {
        writeln!(out, "camera:{} {} ({})", c.index, c.name, c.path)?;
        for m in &c.modes {
            writeln!(
                out,
                "  {}x{} {:.1} fps {:?}",
                m.width, m.height, m.fps, m.format
            )?;
        }
    }
    Ok(())
}

/// `tensorcv models`.
pub fn models(out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<14} {:<15} {:>8}  description",
        "name", "task", "size"
    )?;
    for b in BUILTINS {
        let card = ModelCard::parse(b.card, b.name).unwrap_or_default();
        writeln!(
            out,
            "{:<14} {:<15} {:>6.0}kB  {}",
            b.name,
            card.model.task.name(),
            b.bytes.len() as f64 / 1e3,
            card.model.description.unwrap_or_default()
        )?;
    }
    Ok(())
}

/// `tensorcv inspect`: the model, and each preprocessing setting with where it came from.
pub fn inspect(
    out: &mut dyn Write,
    model: &Model,
    origin: &Origin,
    flags: &Preprocess,
    json: bool,
) -> io::Result<()> {
    let card = model.card();
    let spec = model.input_spec();
    let info = model.info();
    let from_card = origin.card.clone().unwrap_or_else(|| "default".into());
    let source = |flag: bool, in_card: bool, otherwise: &str| {
        if flag {
            "flag".to_string()
        } else if in_card {
            format!("card ({from_card})")
        } else {
            otherwise.to_string()
        }
    };
    let c = &card.input;
    // what the loader concluded from the model itself when neither flag nor card said
    let input = &info.inputs[0];
    let dim = |i: usize| match input.shape.get(i) {
        Some(tensorcv_infer::Dim::Fixed(n)) => Some(*n),
        _ => None,
    };
    let channel_dim = match spec.layout {
        tensorcv_imgproc::tensor::Layout::Nhwc => dim(3),
        tensorcv_imgproc::tensor::Layout::Nchw => dim(1),
    };
    let layout_inferred = if matches!(dim(3), Some(1 | 3)) || matches!(dim(1), Some(1 | 3)) {
        "inferred from the input shape"
    } else {
        "default (the shape does not show the channels)"
    };
    let channels_inferred = match channel_dim {
        Some(1) => "inferred: 1 channel",
        Some(_) => "guessed: 3 channels, RGB assumed (a BGR-trained model needs a card)",
        None => "default (the channel dimension is open)",
    };
    let range_inferred = match (spec.dtype, input.quantization.is_some()) {
        (tensorcv_imgproc::tensor::DType::F32, _) => {
            "default for f32 input (a guess: check the training code)"
        }
        (_, true) => "default for a quantized input",
        _ => "inferred: integer input without quantization takes raw pixels",
    };
    let settings = [
        (
            "size",
            format!("{}x{}", spec.width, spec.height),
            source(
                flags.size.is_some(),
                c.width.is_some(),
                "inferred from the input shape",
            ),
        ),
        (
            "layout",
            spec.layout.to_string(),
            source(flags.layout.is_some(), c.layout.is_some(), layout_inferred),
        ),
        (
            "dtype",
            format!("{:?}", spec.dtype),
            "inferred from the input type".to_string(),
        ),
        (
            "channels",
            spec.channels.to_string(),
            source(
                flags.color.is_some(),
                c.channels.is_some(),
                channels_inferred,
            ),
        ),
        (
            "range",
            spec.range.to_string(),
            source(flags.range.is_some(), c.range.is_some(), range_inferred),
        ),
        (
            "mean",
            format!("{:?}", spec.mean),
            source(flags.mean.is_some(), c.mean.is_some(), "default"),
        ),
        (
            "std",
            format!("{:?}", spec.std),
            source(flags.std.is_some(), c.std.is_some(), "default"),
        ),
        (
            "interpolation",
            spec.interp.to_string(),
            source(flags.interp.is_some(), c.interpolation.is_some(), "default"),
        ),
        (
            "fit",
            spec.fit.to_string(),
            source(flags.fit.is_some(), c.fit.is_some(), "default"),
        ),
    ];
    if json {
        let tensor = |t: &tensorcv_infer::TensorInfo| {
            json!({"name": t.name, "shape": t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                   "dtype": t.dtype,
                   "quantization": t.quantization.map(|q| json!({"scale": q.scale, "zero_point": q.zero_point}))})
        };
        let pre: Map<String, Value> = settings
            .iter()
            .map(|(k, v, s)| (k.to_string(), json!({"value": v, "from": s})))
            .collect();
        let v = json!({
            "model": origin.name,
            "format": format!("{:?}", info.format),
            "task": card.model.task.name(),
            "description": card.model.description,
            "card": origin.card,
            "inputs": info.inputs.iter().map(tensor).collect::<Vec<_>>(),
            "outputs": info.outputs.iter().map(tensor).collect::<Vec<_>>(),
            "preprocessing": pre,
            "labels": card.labels,
            "metadata": info.metadata,
        });
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(
        out,
        "{}: {:?}, task {}",
        origin.name,
        info.format,
        card.model.task.name()
    )?;
    if let Some(d) = &card.model.description {
        writeln!(out, "  {d}")?;
    }
    writeln!(
        out,
        "card: {}",
        origin
            .card
            .as_deref()
            .unwrap_or("none (defaults inferred from the model)")
    )?;
    writeln!(out, "inputs:")?;
    for i in &info.inputs {
        writeln!(out, "  {i}")?;
    }
    writeln!(out, "outputs:")?;
    for o in &info.outputs {
        writeln!(out, "  {o}")?;
    }
    writeln!(out, "preprocessing:")?;
    for (k, v, s) in &settings {
        writeln!(out, "  {k:<14} {v:<28} ({s})")?;
    }
    if !card.labels.is_empty() {
        writeln!(out, "labels: {}", card.labels.join(", "))?;
    }
    for (name, table) in [
        ("classification", &card.classification),
        ("detection", &card.detection),
        ("segmentation", &card.segmentation),
    ] {
        if let Some(t) = table {
            writeln!(out, "[{name}]")?;
            for (k, v) in t {
                writeln!(out, "  {k} = {}", toml_value(v))?;
            }
        }
    }
    for (k, v) in &info.metadata {
        if k != "metadata_props.tensorcv.card" {
            writeln!(out, "metadata {k}: {v}")?;
        }
    }
    Ok(())
}

/// A card value as TOML-like text.
fn toml_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => format!("{d:?}"),
        toml::Value::Array(a) => {
            format!(
                "[{}]",
                a.iter().map(toml_value).collect::<Vec<_>>().join(", ")
            )
        }
        toml::Value::Table(t) => format!(
            "{{ {} }}",
            t.iter()
                .map(|(k, v)| format!("{k} = {}", toml_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
