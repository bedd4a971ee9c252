//! What the tensor protocols (KServe v2 over HTTP and gRPC, TF Serving) share once their
//! requests are parsed: the input checked against the model (name, datatype, shape), run —
//! as one tensor, or as encoded images (`BYTES` elements) preprocessed by the card — and the
//! outputs picked, with Triton's classification extension.

use crate::error::{bad, Error, Result};
use crate::model::Served;
use crate::tensor::{element_count, DataType, Elements, OutputTensor};
use bytes::Bytes;
use std::time::Duration;

/// One input of a request, as the protocol gave it.
pub(crate) enum InputData<'a> {
    /// JSON numbers, nested or flat ([`crate::json::Flat`])
    Json(&'a [f32]),
    /// raw little-endian bytes (the binary extension, gRPC `raw_input_contents`); for `BYTES`,
    /// each element a 4-byte little-endian length and its bytes
    Raw(Bytes),
    /// numbers from gRPC's typed contents
    Numbers(Vec<f64>),
    /// byte strings (gRPC `bytes_contents`): encoded images
    Strings(Vec<Bytes>),
}

/// What a request asks the model to run on.
#[derive(Debug)]
pub(crate) enum Work {
    /// `items` batch entries of the input's type
    Tensor { data: Bytes, items: usize },
    /// encoded images, each preprocessed by the card and run as one batch entry
    Images(Vec<Bytes>),
}

/// Check an input against `model` and read its elements.
pub(crate) fn input(
    model: &Served,
    name: &str,
    datatype: &str,
    shape: &[i64],
    data: InputData<'_>,
) -> Result<Work> {
    if name != model.input.name {
        return Err(bad(format!(
            "model '{}' has no input '{name}'; its input is '{}'",
            model.name, model.input.name
        )));
    }
    let dtype = DataType::parse(datatype)
        .ok_or_else(|| bad(format!("input '{name}': '{datatype}' is not a datatype")))?;
    if dtype == DataType::Bytes {
        return images(model, name, shape, data);
    }
    if dtype != model.input.datatype {
        return Err(bad(format!(
            "input '{name}' is {}, not {dtype} (or BYTES: encoded images)",
            model.input.datatype
        )));
    }
    let items = check_shape(model, name, shape)?;
    let count = items * model.item_elements();
    match data {
        InputData::Raw(raw) => Ok(Work::Tensor {
            data: Elements::from_raw(dtype, count, name, raw)?,
            items,
        }),
        InputData::Json(v) => {
            let mut e = Elements::new(dtype, count);
            e.push_all(name, v)?;
            Ok(Work::Tensor {
                data: e.finish(name)?,
                items,
            })
        }
        InputData::Numbers(v) => {
            let mut e = Elements::new(dtype, count);
            for x in v {
                e.push(name, x)?;
            }
            Ok(Work::Tensor {
                data: e.finish(name)?,
                items,
            })
        }
        InputData::Strings(_) => Err(bad(format!(
            "input '{name}' holds byte strings, its datatype says {dtype}"
        ))),
    }
}

/// The batch entries a tensor of `shape` holds: the model's input shape, its batch dimension
/// (where it has one) from 1 to `max_batch_size`.
fn check_shape(model: &Served, name: &str, shape: &[i64]) -> Result<usize> {
    let want = &model.input.shape;
    let mismatch = || {
        bad(format!(
            "input '{name}' has shape {shape:?}, the model takes {want:?}{}",
            if model.batch_dim {
                format!(" (-1: a batch of 1 to {})", model.settings.max_batch_size)
            } else {
                String::new()
            }
        ))
    };
    if shape.len() != want.len() {
        return Err(mismatch());
    }
    if shape
        .iter()
        .zip(want)
        .enumerate()
        .any(|(i, (&got, &want))| (i > 0 || !model.batch_dim) && got != want)
    {
        return Err(mismatch());
    }
    if !model.batch_dim {
        return Ok(1);
    }
    let items = shape[0];
    if items < 1 || items as usize > model.settings.max_batch_size {
        return Err(bad(format!(
            "input '{name}': a batch of {items} is not in 1..={} (the model's max_batch_size)",
            model.settings.max_batch_size
        )));
    }
    Ok(items as usize)
}

/// Encoded images of a `BYTES` input: shape `[n]` or `[n, 1]`, n from 1 to the largest batch.
fn images(model: &Served, name: &str, shape: &[i64], data: InputData<'_>) -> Result<Work> {
    let n = match shape {
        [n] | [n, 1] => *n,
        _ => {
            return Err(bad(format!(
                "input '{name}': BYTES (encoded images) take shape [n] or [n, 1], not {shape:?}"
            )))
        }
    };
    let max = model.settings.max_batch_size;
    if n < 1 || n as usize > max {
        return Err(bad(format!(
            "input '{name}': {n} images is not in 1..={max} (the model's max_batch_size)"
        )));
    }
    let n = element_count(name, &[n], max)?;
    let images: Vec<Bytes> = match data {
        InputData::Raw(raw) => {
            let mut out = Vec::with_capacity(n);
            let mut at = 0;
            while at < raw.len() {
                let len = raw
                    .get(at..at + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    .ok_or_else(|| bad(format!("input '{name}': a BYTES element is cut short")))?;
                at += 4;
                if len > raw.len() - at {
                    return Err(bad(format!(
                        "input '{name}': a BYTES element of {len} bytes is cut short"
                    )));
                }
                // a view of the request's bytes, not a copy
                out.push(raw.slice(at..at + len));
                at += len;
            }
            out
        }
        InputData::Strings(v) => v,
        InputData::Json(_) | InputData::Numbers(_) => {
            return Err(bad(format!(
                "input '{name}': BYTES images are sent as binary data (binary_data_size), \
                 not JSON"
            )))
        }
    };
    if images.len() != n {
        return Err(bad(format!(
            "input '{name}' holds {} byte strings, its shape says {n}",
            images.len()
        )));
    }
    Ok(Work::Images(images))
}

/// Run `work` on `model`: every output, the request's batch first.
pub(crate) async fn run(
    model: &Served,
    work: Work,
    timeout: Option<Duration>,
) -> Result<Vec<OutputTensor>> {
    match work {
        Work::Tensor { data, items } => model.infer(data, items, timeout).await,
        Work::Images(images) => {
            if images.len() > 1 && !model.batch_dim {
                return Err(bad(format!(
                    "model '{}' has no batch dimension: one image per request",
                    model.name
                )));
            }
            let runs = images.into_iter().map(|i| model.infer_image(i, timeout));
            let answers = futures_util::future::try_join_all(runs).await?;
            concat(answers)
        }
    }
}

/// Each output's rows of several runs, one after another (the batch dimension).
fn concat(mut answers: Vec<Vec<OutputTensor>>) -> Result<Vec<OutputTensor>> {
    if answers.len() == 1 {
        return Ok(answers.remove(0));
    }
    let mut iter = answers.into_iter();
    let Some(mut first) = iter.next() else {
        return Ok(Vec::new());
    };
    for answer in iter {
        for (acc, part) in first.iter_mut().zip(answer) {
            if acc.shape.get(1..) != part.shape.get(1..) || acc.shape.is_empty() {
                return Err(Error::Internal(format!(
                    "output '{}' changed shape between images",
                    acc.name
                )));
            }
            acc.shape[0] += part.shape[0];
            acc.data.extend(part.data);
        }
    }
    Ok(first)
}

/// An output a request asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Wanted {
    pub name: String,
    /// binary data (KServe HTTP)
    pub binary: bool,
    /// Triton's classification extension: the top `k` classes as `score:index[:label]`
    pub classes: Option<usize>,
}

/// An answer's output: numbers, or the classification extension's strings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Picked {
    Numbers(OutputTensor),
    Classes {
        name: String,
        shape: Vec<usize>,
        values: Vec<String>,
    },
}

impl Picked {
    /// The output's name.
    pub fn name(&self) -> &str {
        match self {
            Picked::Numbers(t) => &t.name,
            Picked::Classes { name, .. } => name,
        }
    }
    /// The output's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Picked::Numbers(t) => &t.shape,
            Picked::Classes { shape, .. } => shape,
        }
    }
    /// `FP32` or `BYTES`.
    pub fn datatype(&self) -> DataType {
        match self {
            Picked::Numbers(_) => DataType::Fp32,
            Picked::Classes { .. } => DataType::Bytes,
        }
    }
    /// The raw bytes (BYTES: each string's 4-byte little-endian length first).
    pub fn raw(&self) -> Vec<u8> {
        match self {
            Picked::Numbers(t) => t.bytes().to_vec(),
            Picked::Classes { values, .. } => {
                let mut out = Vec::new();
                for v in values {
                    out.extend((v.len() as u32).to_le_bytes());
                    out.extend(v.as_bytes());
                }
                out
            }
        }
    }
}

/// The outputs `wanted` (all, in the model's order, when empty), the classification
/// extension applied.
pub(crate) fn pick(
    model: &Served,
    outputs: Vec<OutputTensor>,
    wanted: &[Wanted],
) -> Result<Vec<Picked>> {
    if wanted.is_empty() {
        return Ok(outputs.into_iter().map(Picked::Numbers).collect());
    }
    wanted
        .iter()
        .map(|w| {
            let out = outputs.iter().find(|o| o.name == w.name).ok_or_else(|| {
                bad(format!(
                    "model '{}' has no output '{}'; its outputs are {}",
                    model.name,
                    w.name,
                    outputs
                        .iter()
                        .map(|o| o.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            match w.classes {
                Some(k) => classify(model, out, k),
                None => Ok(Picked::Numbers(out.clone())),
            }
        })
        .collect()
}

/// The top `k` classes of each batch entry of `out`: `score:index[:label]`, best first.
fn classify(model: &Served, out: &OutputTensor, k: usize) -> Result<Picked> {
    let rows = if model.batch_dim {
        out.shape.first().copied().unwrap_or(1)
    } else {
        1
    };
    let per = out.data.len() / rows.max(1);
    if k == 0 || per == 0 {
        return Err(bad(format!(
            "output '{}': classification needs a count of at least 1 and scores",
            out.name
        )));
    }
    let k = k.min(per);
    let mut values = Vec::with_capacity(rows * k);
    for row in out.data.chunks(per) {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        for &i in &order[..k] {
            values.push(match model.labels.get(i) {
                Some(label) => format!("{}:{i}:{label}", row[i]),
                None => format!("{}:{i}", row[i]),
            });
        }
    }
    Ok(Picked::Classes {
        name: out.name.clone(),
        shape: if model.batch_dim {
            vec![rows, k]
        } else {
            vec![k]
        },
        values,
    })
}

/// A request's timeout from Triton's `timeout` parameter (microseconds).
pub(crate) fn timeout_param(us: Option<i64>) -> Result<Option<Duration>> {
    match us {
        None | Some(0) => Ok(None),
        Some(us) if us > 0 => Ok(Some(Duration::from_micros(us as u64))),
        Some(us) => Err(bad(format!(
            "parameter 'timeout' = {us} is not a number of microseconds"
        ))),
    }
}
