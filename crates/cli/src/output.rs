//! What the command prints: a readable table by default, JSON Lines with `--json`.

use crate::flags::Preprocess;
use crate::load::Origin;
use serde::Serialize;
use std::io::{self, Write};
use tensorcv_capture::camera::CameraInfo;
use tensorcv_capture::runner::{StageStats, Summary, SummaryRecord};
use tensorcv_infer::{Model, ModelCard};
use tensorcv_tasks::record::{round, DetectionRecord, Record, ShareRecord};

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
/// One JSON line of a record (these hold only numbers, strings and string-keyed maps, which
/// always serialize).
pub fn json_line(record: &impl Serialize) -> String {
    serde_json::to_string(record).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// A record as printed: its JSON line (`json`), else readable lines.
pub fn render(record: &Record, json: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if json {
        let _ = writeln!(out, "{}", json_line(record));
        return out;
    }
    let source = &record.source;
    if let Some(classes) = &record.classes {
        let text: Vec<String> = classes
            .iter()
            .map(|c| format!("{} {:.3}", label(&c.label, c.index), c.score))
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
    if let Some(dets) = &record.detections {
        let _ = writeln!(
            out,
            "{source}: {} detection{}",
            dets.len(),
            if dets.len() == 1 { "" } else { "s" }
        );
        for d in dets {
            let _ = writeln!(out, "  {}", detection_line(d));
            // what a second model found in this region
            for inner in d.detections.iter().flatten() {
                let _ = writeln!(out, "    {}", detection_line(inner));
            }
            if let Some(seg) = &d.segmentation {
                let _ = writeln!(out, "    {}", shares_line(&seg.classes));
            }
            for o in d.outputs.iter().flatten() {
                let _ = writeln!(out, "    {}", output_line(o));
            }
        }
    }
    if let Some(found) = &record.landmarks {
        let _ = writeln!(
            out,
            "{source}: landmarks on {} object{}",
            found.len(),
            if found.len() == 1 { "" } else { "s" }
        );
        for l in found {
            let b = l.bbox;
            let mut line = format!(
                "  {} points in [{:.1}, {:.1}, {:.1}, {:.1}], crop turned {:.1}°",
                l.points.len(),
                b[0],
                b[1],
                b[2],
                b[3],
                l.roi.angle
            );
            if let Some(s) = l.score {
                let _ = write!(line, ", presence {s:.3}");
            }
            if let (Some(t), Some(p)) = (&l.label, l.label_score) {
                let _ = write!(line, ", {t} {p:.3}");
            }
            let _ = writeln!(out, "{line}");
        }
    }
    if let Some(seg) = &record.segmentation {
        let _ = writeln!(out, "{source}: {}", shares_line(&seg.classes));
        if let Some(m) = &seg.mask {
            let _ = writeln!(out, "  mask: {m}");
        }
    }
    if let Some(outputs) = &record.outputs {
        let _ = writeln!(out, "{source}:");
        for o in outputs {
            let _ = writeln!(out, "  {}", output_line(o));
        }
    }
    out
}

/// An output summarised: `name [shape] min … max … mean …`.
fn output_line(o: &tensorcv_tasks::record::OutputRecord) -> String {
    format!(
        "{} {} min {:.4} max {:.4} mean {:.4}",
        o.name,
        json_line(&o.shape),
        o.min,
        o.max,
        o.mean
    )
}

/// A class's label, or `class N`.
fn label(label: &Option<String>, index: usize) -> String {
    label.clone().unwrap_or_else(|| format!("class {index}"))
}

/// `label 0.970 [x1, y1, x2, y2]: class 0.9, ...` for one detection.
fn detection_line(d: &DetectionRecord) -> String {
    let b: Vec<String> = d.bbox.iter().map(|v| format!("{v:.1}")).collect();
    let classes: Vec<String> = d
        .classes
        .iter()
        .flatten()
        .map(|c| format!("{} {:.3}", label(&c.label, c.index), c.score))
        .collect();
    format!(
        "{} {:.3} [{}]{}",
        label(&d.label, d.class),
        d.score,
        b.join(", "),
        if classes.is_empty() {
            String::new()
        } else {
            format!(": {}", classes.join(", "))
        }
    )
}

/// `person 49.1%, background 50.9%` for a segmentation's class shares.
fn shares_line(shares: &[ShareRecord]) -> String {
    shares
        .iter()
        .map(|c| format!("{} {:.1}%", label(&c.label, c.index), c.fraction * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The run's summary: readable lines on stderr, or (`json`) a `{"summary": ...}` line on
/// stdout.
pub fn summary(s: &Summary, json: bool) -> io::Result<()> {
    if json {
        let record = json_line(&SummaryRecord::from(s));
        let mut out = io::stdout().lock();
        writeln!(out, "{record}")?;
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

/// `tensorcv bench --json`, fields in printed order.
#[derive(Serialize)]
struct BenchRecord<'a> {
    first_run_ms: f64,
    image: [usize; 2],
    inference_ms: InferenceMs,
    load_ms: f64,
    model: &'a str,
    ops: Vec<OpRecord<'a>>,
    peak_rss_kb: Option<u64>,
    preprocess_ms: f64,
    threads: usize,
}

/// The timed runs of [`BenchRecord`].
#[derive(Serialize)]
struct InferenceMs {
    mean: f64,
    median: f64,
    min: f64,
    p95: f64,
    runs: usize,
}

/// One kind of operator in [`BenchRecord`].
#[derive(Serialize)]
struct OpRecord<'a> {
    ms: f64,
    op: &'a str,
    share: f64,
}

/// `tensorcv inspect --json`, fields in printed order.
#[derive(Serialize)]
struct InspectRecord<'a> {
    card: Option<&'a str>,
    description: Option<&'a str>,
    format: String,
    inputs: Vec<TensorRecord>,
    labels: &'a [String],
    metadata: &'a std::collections::BTreeMap<String, String>,
    model: &'a str,
    outputs: Vec<TensorRecord>,
    preprocessing: std::collections::BTreeMap<&'static str, Setting>,
    task: &'a str,
}

/// An input or output in [`InspectRecord`].
#[derive(Serialize)]
struct TensorRecord {
    dtype: String,
    name: String,
    quantization: Option<QuantizationRecord>,
    shape: Vec<String>,
}

/// A quantized tensor's parameters.
#[derive(Serialize)]
struct QuantizationRecord {
    scale: f64,
    zero_point: i32,
}

/// A preprocessing setting in effect and where it came from.
#[derive(Serialize)]
struct Setting {
    from: String,
    value: String,
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
        let record = BenchRecord {
            first_run_ms: round(r.runs.first, 3),
            image: [r.image.0, r.image.1],
            inference_ms: InferenceMs {
                mean: round(r.runs.mean, 3),
                median: round(r.runs.median, 3),
                min: round(r.runs.min, 3),
                p95: round(r.runs.p95, 3),
                runs: r.runs.runs,
            },
            load_ms: round(r.load_ms, 2),
            model: r.model,
            ops: r
                .ops
                .iter()
                .take(r.top)
                .map(|o| OpRecord {
                    ms: round(per_run(o), 4),
                    op: &o.op,
                    share: round(o.time.as_secs_f64() / total, 4),
                })
                .collect(),
            peak_rss_kb: r.peak_rss_kb,
            preprocess_ms: round(r.preprocess_ms, 3),
            threads: r.threads,
        };
        let v = json_line(&record);
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
    for b in tensorcv_zoo::all() {
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
        (
            "resample",
            spec.resample.to_string(),
            source(false, c.resample.is_some(), "default"),
        ),
    ];
    if json {
        let tensor = |t: &tensorcv_infer::TensorInfo| TensorRecord {
            dtype: t.dtype.clone(),
            name: t.name.clone(),
            quantization: t.quantization.map(|q| QuantizationRecord {
                scale: q.scale as f64,
                zero_point: q.zero_point,
            }),
            shape: t.shape.iter().map(|d| d.to_string()).collect(),
        };
        let record = InspectRecord {
            card: origin.card.as_deref(),
            description: card.model.description.as_deref(),
            format: format!("{:?}", info.format),
            inputs: info.inputs.iter().map(tensor).collect(),
            labels: &card.labels,
            metadata: &info.metadata,
            model: &origin.name,
            outputs: info.outputs.iter().map(tensor).collect(),
            preprocessing: settings
                .iter()
                .map(|(k, v, s)| {
                    (
                        *k,
                        Setting {
                            from: s.clone(),
                            value: v.clone(),
                        },
                    )
                })
                .collect(),
            task: card.model.task.name(),
        };
        let v = json_line(&record);
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
