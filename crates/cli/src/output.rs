//! What the command prints: a readable table by default, JSON Lines with `--json`.

use crate::builtin::BUILTINS;
use crate::options::{Origin, Preprocess};
use serde_json::{json, Map, Value};
use tensorcv_infer::{Model, ModelCard, Outputs};
use tensorcv_tasks::classification::Class;
use tensorcv_tasks::segmentation::ClassShare;
use tensorcv_tasks::Detection;

/// One input's result, in the JSON shape of the README (keys that do not apply are left out).
pub struct Record(Map<String, Value>);

fn round(v: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (v * p).round() / p
}

impl Record {
    pub fn new(source: &str, width: usize, height: usize) -> Self {
        let mut m = Map::new();
        m.insert("source".into(), json!(source));
        m.insert("frame".into(), json!(0));
        m.insert("width".into(), json!(width));
        m.insert("height".into(), json!(height));
        Record(m)
    }

    pub fn classes(&mut self, classes: &[Class]) {
        let v: Vec<Value> = classes.iter().map(class_json).collect();
        self.0.insert("classes".into(), Value::Array(v));
    }

    pub fn detections(&mut self, detections: &[Detection]) {
        let v: Vec<Value> = detections
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
            .collect();
        self.0.insert("detections".into(), Value::Array(v));
    }

    /// Detections from `--roi-from`, each with the classes of its region.
    pub fn regions(&mut self, regions: &[(Detection, Vec<Class>)]) {
        let detections: Vec<Detection> = regions.iter().map(|(d, _)| d.clone()).collect();
        self.detections(&detections);
        if let Some(Value::Array(list)) = self.0.get_mut("detections") {
            for (entry, (_, classes)) in list.iter_mut().zip(regions) {
                entry["classes"] = Value::Array(classes.iter().map(class_json).collect());
            }
        }
    }

    pub fn segmentation(&mut self, shares: &[ClassShare], mask: Option<String>) {
        let classes: Vec<Value> = shares
            .iter()
            .map(|s| json!({"index": s.index, "label": s.label, "fraction": round(s.fraction as f64, 5)}))
            .collect();
        let mut o = json!({ "classes": classes });
        if let Some(m) = mask {
            o["mask"] = json!(m);
        }
        self.0.insert("segmentation".into(), o);
    }

    pub fn raw(&mut self, outputs: &Outputs) {
        let v: Vec<Value> = outputs
            .names()
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let a = outputs.by_index(i)?;
                let n = a.len().max(1) as f64;
                let (min, max, sum) = a.iter().fold(
                    (f32::INFINITY, f32::NEG_INFINITY, 0f64),
                    |(lo, hi, s), &x| (lo.min(x), hi.max(x), s + x as f64),
                );
                Some(
                    json!({"name": name, "shape": a.shape(), "min": min, "max": max,
                            "mean": round(sum / n, 6)}),
                )
            })
            .collect();
        self.0.insert("outputs".into(), Value::Array(v));
    }

    pub fn timings(&mut self, decode: f64, preprocess: f64, inference: f64, post: f64) {
        self.0.insert(
            "timings_ms".into(),
            json!({"decode": round(decode, 3), "preprocess": round(preprocess, 3),
                   "inference": round(inference, 3), "postprocess": round(post, 3)}),
        );
    }

    pub fn timings_roi(&mut self, decode: f64, detection: f64, regions: f64) {
        self.0.insert(
            "timings_ms".into(),
            json!({"decode": round(decode, 3), "detection": round(detection, 3),
                   "regions": round(regions, 3)}),
        );
    }

    pub fn into_json(self) -> Value {
        Value::Object(self.0)
    }
}

fn class_json(c: &Class) -> Value {
    json!({"index": c.index, "label": c.label, "score": round(c.score as f64, 5)})
}

/// Print one input's record: a JSON line, or a few readable lines.
pub fn print(record: &Value, json: bool) {
    if json {
        println!("{record}");
        return;
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
        println!(
            "{source}: {}",
            if text.is_empty() {
                "no class above the threshold".into()
            } else {
                text.join(", ")
            }
        );
    }
    if let Some(dets) = record["detections"].as_array() {
        println!(
            "{source}: {} detection{}",
            dets.len(),
            if dets.len() == 1 { "" } else { "s" }
        );
        for d in dets {
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
            println!(
                "  {} {:.3} [{}]{}",
                label(d),
                d["score"].as_f64().unwrap_or(0.0),
                b.join(", "),
                if classes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", classes.join(", "))
                }
            );
        }
    }
    if let Some(seg) = record["segmentation"].as_object() {
        let text: Vec<String> = seg["classes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                format!(
                    "{} {:.1}%",
                    label(c),
                    c["fraction"].as_f64().unwrap_or(0.0) * 100.0
                )
            })
            .collect();
        println!("{source}: {}", text.join(", "));
        if let Some(m) = seg.get("mask").and_then(Value::as_str) {
            println!("  mask: {m}");
        }
    }
    if let Some(outputs) = record["outputs"].as_array() {
        println!("{source}:");
        for o in outputs {
            println!(
                "  {} {} min {:.4} max {:.4} mean {:.4}",
                o["name"].as_str().unwrap_or_default(),
                o["shape"],
                o["min"].as_f64().unwrap_or(0.0),
                o["max"].as_f64().unwrap_or(0.0),
                o["mean"].as_f64().unwrap_or(0.0)
            );
        }
    }
}

/// `tensorcv models`.
pub fn models() {
    println!("{:<14} {:<15} {:>8}  description", "name", "task", "size");
    for b in BUILTINS {
        let card = ModelCard::parse(b.card, b.name).unwrap_or_default();
        println!(
            "{:<14} {:<15} {:>6.0}kB  {}",
            b.name,
            format!("{:?}", card.model.task).to_lowercase(),
            b.bytes.len() as f64 / 1e3,
            card.model.description.unwrap_or_default()
        );
    }
}

/// `tensorcv inspect`: the model, and each preprocessing setting with where it came from.
pub fn inspect(model: &Model, origin: &Origin, flags: &Preprocess, json: bool) {
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
    let settings = [
        (
            "size",
            format!("{}x{}", spec.width, spec.height),
            source(flags.size.is_some(), c.width.is_some(), "model"),
        ),
        (
            "layout",
            spec.layout.to_string(),
            source(flags.layout.is_some(), c.layout.is_some(), "model"),
        ),
        ("dtype", format!("{:?}", spec.dtype), "model".to_string()),
        (
            "channels",
            spec.channels.to_string(),
            source(
                flags.color.is_some(),
                c.channels.is_some(),
                "inferred from the channel count",
            ),
        ),
        (
            "range",
            spec.range.to_string(),
            source(
                flags.range.is_some(),
                c.range.is_some(),
                "default for the dtype",
            ),
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
            "task": format!("{:?}", card.model.task).to_lowercase(),
            "description": card.model.description,
            "card": origin.card,
            "inputs": info.inputs.iter().map(tensor).collect::<Vec<_>>(),
            "outputs": info.outputs.iter().map(tensor).collect::<Vec<_>>(),
            "preprocessing": pre,
            "labels": card.labels,
            "metadata": info.metadata,
        });
        println!("{v}");
        return;
    }
    println!(
        "{}: {:?}, task {}",
        origin.name,
        info.format,
        format!("{:?}", card.model.task).to_lowercase()
    );
    if let Some(d) = &card.model.description {
        println!("  {d}");
    }
    println!(
        "card: {}",
        origin
            .card
            .as_deref()
            .unwrap_or("none (defaults inferred from the model)")
    );
    println!("inputs:");
    for i in &info.inputs {
        println!("  {i}");
    }
    println!("outputs:");
    for o in &info.outputs {
        println!("  {o}");
    }
    println!("preprocessing:");
    for (k, v, s) in &settings {
        println!("  {k:<14} {v:<28} ({s})");
    }
    if !card.labels.is_empty() {
        println!("labels: {}", card.labels.join(", "));
    }
    for (name, table) in [
        ("classification", &card.classification),
        ("detection", &card.detection),
        ("segmentation", &card.segmentation),
    ] {
        if let Some(t) = table {
            println!("[{name}]");
            for (k, v) in t {
                println!("  {k} = {}", toml_value(v));
            }
        }
    }
    for (k, v) in &info.metadata {
        if k != "metadata_props.tensorcv.card" {
            println!("metadata {k}: {v}");
        }
    }
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
