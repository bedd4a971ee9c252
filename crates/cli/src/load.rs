//! Loading a model for the command: a built-in's bytes and card, or a file with the card the
//! library finds for it (its sidecar `.toml`, its metadata, or defaults), amended by the flags
//! before the model is optimised for it.

use crate::error::{Context, Error, Result};
use crate::flags::{Preprocess, TaskArgs};
use std::path::PathBuf;
use tensorcv_infer::{CardSource, LoadOptions, Model, ModelCard, ModelFile};

/// The largest labels file.
const MAX_LABELS_BYTES: u64 = 16 << 20;

/// Where a model came from, for messages and `inspect`.
pub struct Origin {
    /// the built-in's name or the path
    pub name: String,
    /// the card's source: a path, "built-in", "metadata" or none
    pub card: Option<String>,
}

/// Load `spec` (a built-in name or a path) with its card amended by the flags.
pub fn load(
    spec: &str,
    pre: &Preprocess,
    task: Option<&TaskArgs>,
    threads: usize,
    tract_only: bool,
) -> Result<(Model, Origin)> {
    load_with(spec, threads, tract_only, |card| amend(card, pre, task))
}

/// Load the detector `spec` of a two-stage run, its lowest score set to `threshold` when given
/// (`--detector-threshold`).
pub fn load_detector(
    spec: &str,
    threshold: Option<f32>,
    threads: usize,
    tract_only: bool,
) -> Result<Model> {
    let (model, _) = load_with(spec, threads, tract_only, |card| {
        if let (Some(t), Some(table)) = (threshold, card.detection.as_mut()) {
            table.insert("min_score".into(), toml::Value::Float(t as f64));
        }
        Ok(())
    })?;
    Ok(model)
}

fn load_with(
    spec: &str,
    threads: usize,
    tract_only: bool,
    amend: impl FnOnce(&mut ModelCard) -> Result<()>,
) -> Result<(Model, Origin)> {
    let (mut file, name) = match tensorcv_zoo::find(spec) {
        Some(b) => {
            let what = format!("built-in '{}'", b.name);
            let mut file = ModelFile::from_bytes(b.bytes, &what)?;
            file.set_card(ModelCard::parse(b.card, &what)?);
            (file, format!("{} (built-in '{}')", b.file, b.name))
        }
        None => {
            let path = PathBuf::from(spec);
            if !path.exists() {
                let names: Vec<&str> = tensorcv_zoo::all().map(|b| b.name).collect();
                return Err(Error::UnknownModel {
                    spec: spec.to_string(),
                    builtins: names.join(", "),
                });
            }
            (ModelFile::open(&path)?, spec.to_string())
        }
    };
    let card = match file.card_source() {
        CardSource::Given => Some("built-in".to_string()),
        CardSource::Sidecar(path) => Some(path.clone()),
        CardSource::Metadata => Some("metadata".to_string()),
        CardSource::Defaults => None,
    };
    amend(file.card_mut())?;
    let model = file.build(&LoadOptions {
        threads,
        tract_only,
        ..Default::default()
    })?;
    Ok((model, Origin { name, card }))
}

/// Write the flags into the card, where the libraries read every setting.
fn amend(card: &mut ModelCard, pre: &Preprocess, task: Option<&TaskArgs>) -> Result<()> {
    let input = &mut card.input;
    if let Some((w, h)) = pre.size {
        input.width = Some(w);
        input.height = Some(h);
    }
    input.layout = pre.layout.or(input.layout);
    input.channels = pre.color.or(input.channels);
    input.range = pre.range.or(input.range);
    input.mean = pre.mean.or(input.mean);
    input.std = pre.std.or(input.std);
    input.fit = pre.fit.or(input.fit);
    input.interpolation = pre.interp.or(input.interpolation);
    input.roi_scale = pre.roi_scale.or(input.roi_scale);
    input.roi_pad = pre.roi_pad.or(input.roi_pad);
    if pre.roi_square {
        input.roi_square = Some(true);
    }
    if let Some(path) = &pre.labels {
        let text = tensorcv_infer::read_text_file(path, MAX_LABELS_BYTES).context("labels")?;
        card.labels = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
    }
    let Some(t) = task else { return Ok(()) };
    let set = |table: &mut Option<toml::Table>, key: &str, value: Option<toml::Value>| {
        if let Some(v) = value {
            table
                .get_or_insert_with(Default::default)
                .insert(key.into(), v);
        }
    };
    let int = |v: Option<u64>| v.map(|v| toml::Value::Integer(v.min(i64::MAX as u64) as i64));
    let float = |v: Option<f32>| v.map(|v| toml::Value::Float(v as f64));
    set(&mut card.classification, "top_k", int(t.top_k));
    set(
        &mut card.classification,
        "score_threshold",
        float(t.score_threshold),
    );
    if card.detection.is_some() {
        set(&mut card.detection, "min_score", float(t.score_threshold));
        set(&mut card.detection, "iou_threshold", float(t.iou_threshold));
        set(&mut card.detection, "max_detections", int(t.max_detections));
    }
    set(&mut card.segmentation, "threshold", float(t.threshold));
    // a landmark model's presence threshold (MediaPipe's min_tracking_confidence)
    if card.landmarks.is_some() {
        set(&mut card.landmarks, "min_score", float(t.score_threshold));
    }
    Ok(())
}
