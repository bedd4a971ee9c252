//! TF Serving's REST API, as TensorFlow clients already call it:
//!
//! - `GET /v1/models/NAME[/versions/1]`: the version's status
//! - `GET /v1/models/NAME[/versions/1]/metadata`: the `serving_default` signature
//! - `POST /v1/models/NAME[/versions/1]:predict` with `{"instances": [...]}` (row format: one
//!   batch entry each) or `{"inputs": ...}` (columnar: the whole tensor), answered with
//!   `{"predictions": [...]}` / `{"outputs": ...}`. A value `{"b64": "…"}` is an encoded image,
//!   preprocessed as the model's card says (what an `image_bytes` signature does in
//!   TensorFlow).
//!
//! `POST /v1/models/NAME:analyze` (tensorcv's own: an image in, the command's record out) shares
//! the path and is handled by [`super::vision`].

use super::{answer, json_response, model_of, observe, read_body, AppState, Params};
use crate::error::{bad, Result};
use crate::infer::{self, Work};
use crate::json::{Flat, TfValue};
use crate::model::Served;
use crate::tensor::{Elements, OutputTensor};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::ser::{Serialize, SerializeSeq, Serializer};
use std::collections::HashMap;
use std::time::Instant;

const PROTOCOL: &str = "tfserving";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/models/{target}", get(status).post(verb))
        .route("/v1/models/{name}/metadata", get(metadata))
        .route(
            "/v1/models/{name}/versions/{target}",
            get(status_v).post(verb_v),
        )
        .route(
            "/v1/models/{name}/versions/{version}/metadata",
            get(metadata),
        )
}

async fn status(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    answer(status_of(&st, &name, None))
}

async fn status_v(
    State(st): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    answer(status_of(&st, &name, Some(&version)))
}

fn status_of(st: &AppState, name: &str, version: Option<&str>) -> Result<Response> {
    st.repo.get_version(name, version)?;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "model_version_status": [{
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }]
        }),
    ))
}

async fn metadata(State(st): State<AppState>, Path(params): Params) -> Response {
    let (name, version) = model_of(&params);
    answer(metadata_of(&st, name, version))
}

fn metadata_of(st: &AppState, name: &str, version: Option<&str>) -> Result<Response> {
    let m = st.repo.get_version(name, version)?;
    let tensor = |t: &crate::tensor::TensorMeta| {
        serde_json::json!({
            "dtype": t.datatype.tf_name(),
            "tensor_shape": {
                "dim": t.shape.iter().map(|d| serde_json::json!({"size": d.to_string(), "name": ""})).collect::<Vec<_>>(),
                "unknown_rank": false,
            },
            "name": format!("{}:0", t.name),
        })
    };
    let outputs: serde_json::Map<String, serde_json::Value> = m
        .outputs
        .iter()
        .map(|o| (o.name.clone(), tensor(o)))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "model_spec": {"name": m.name, "signature_name": "", "version": "1"},
            "metadata": {"signature_def": {
                "signature_def": {
                    "serving_default": {
                        "inputs": {m.input.name.clone(): tensor(&m.input)},
                        "outputs": outputs,
                        "method_name": "tensorflow/serving/predict",
                        "defaults": {},
                    }
                }
            }},
        }),
    ))
}

async fn verb(
    State(st): State<AppState>,
    Path(target): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    dispatch(st, target, None, query, headers, body).await
}

async fn verb_v(
    State(st): State<AppState>,
    Path((name, target)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // `/v1/models/NAME/versions/1:predict`
    let (version, verb) = target.split_once(':').unwrap_or((&target, ""));
    let target = format!("{name}:{verb}");
    dispatch(st, target, Some(version.to_string()), query, headers, body).await
}

/// `NAME:predict` or `NAME:analyze`.
async fn dispatch(
    st: AppState,
    target: String,
    version: Option<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some((name, verb)) = target.rsplit_once(':') else {
        return answer(Err(bad(format!(
            "POST /v1/models/{target} needs a verb: NAME:predict or NAME:analyze"
        ))));
    };
    let (name, verb) = (name.to_string(), verb.to_string());
    match verb.as_str() {
        "predict" => {
            let started = Instant::now();
            let flight = st.metrics.in_flight();
            let result = predict(&st, &name, version.as_deref(), &headers, body).await;
            drop(flight);
            observe(&st, &name, PROTOCOL, started, &result);
            answer(result)
        }
        "analyze" => super::vision::analyze(st, name, version, query, headers, body).await,
        other => answer(Err(bad(format!(
            "'{other}' is not a verb served here (predict, analyze)"
        )))),
    }
}

/// Nested arrays of `data` in `shape` (a scalar for an empty shape).
struct Nested<'a> {
    shape: &'a [usize],
    data: &'a [f32],
}

impl Serialize for Nested<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.shape.split_first() {
            None => self.data.first().copied().unwrap_or(0.0).serialize(s),
            Some((&n, rest)) => {
                let per: usize = rest.iter().product();
                let mut seq = s.serialize_seq(Some(n))?;
                for i in 0..n {
                    let data = self.data.get(i * per..(i + 1) * per).unwrap_or(&[]);
                    seq.serialize_element(&Nested { shape: rest, data })?;
                }
                seq.end()
            }
        }
    }
}

/// Standard base64, padded or not (TF Serving's clients send both).
pub(crate) fn decode_b64(text: &str) -> Result<Bytes> {
    use base64::engine::{general_purpose, DecodePaddingMode, Engine as _, GeneralPurpose};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    ENGINE
        .decode(text.trim())
        .map(Bytes::from)
        .map_err(|e| bad(format!("b64 is not base64: {e}")))
}

/// A value given by input name: the model's one input.
fn unnamed(model: &Served, v: TfValue) -> Result<TfValue> {
    match v {
        TfValue::Named(mut named) => {
            if named.len() != 1 {
                return Err(bad(format!(
                    "{} inputs named; model '{}' takes one, '{}'",
                    named.len(),
                    model.name,
                    model.input.name
                )));
            }
            let (name, value) = named.remove(0);
            if name != model.input.name {
                return Err(bad(format!(
                    "input '{name}' named; model '{}' takes '{}'",
                    model.name, model.input.name
                )));
            }
            match value {
                TfValue::Named(_) => Err(bad(format!("input '{name}' holds named values"))),
                v => Ok(v),
            }
        }
        v => Ok(v),
    }
}

/// Batches of `per` entries at most.
fn per_run(model: &Served) -> usize {
    if model.batch_dim {
        model.settings.max_batch_size
    } else {
        1
    }
}

/// The request's instances (row format: each one batch entry) as runs, in order.
fn instances(model: &Served, list: Vec<TfValue>) -> Result<Vec<Work>> {
    if list.is_empty() {
        return Err(bad("'instances' is empty"));
    }
    let values: Vec<TfValue> = list
        .into_iter()
        .map(|v| unnamed(model, v))
        .collect::<Result<_>>()?;
    let per = per_run(model);
    if values.iter().all(|v| matches!(v, TfValue::Image(_))) {
        let images = values
            .iter()
            .filter_map(|v| match v {
                TfValue::Image(b64) => Some(decode_b64(b64)),
                _ => None,
            })
            .collect::<Result<Vec<Bytes>>>()?;
        return Ok(images
            .chunks(per)
            .map(|c| Work::Images(c.to_vec()))
            .collect());
    }
    let tensors: Vec<&Flat> = values
        .iter()
        .map(|v| match v {
            TfValue::Tensor(t) => Ok(t),
            _ => Err(bad(
                "instances mix b64 images and tensors (or hold lists of images)",
            )),
        })
        .collect::<Result<_>>()?;
    let dtype = model.input.datatype;
    let name = &model.input.name;
    tensors
        .chunks(per)
        .map(|chunk| {
            let mut e = Elements::new(dtype, chunk.len() * model.item_elements());
            for t in chunk {
                if t.values.len() != model.item_elements() {
                    return Err(bad(format!(
                        "an instance of input '{name}' has {} elements, one batch entry has {}",
                        t.values.len(),
                        model.item_elements()
                    )));
                }
                e.push_all(name, &t.values)?;
            }
            Ok(Work::Tensor {
                data: e.finish(name)?,
                items: chunk.len(),
            })
        })
        .collect()
}

/// The columnar `inputs`: the whole tensor (batch first, where the model has a batch
/// dimension), `{NAME: tensor}`, or `{"b64": …}` / a list of them.
fn columnar(model: &Served, v: TfValue) -> Result<Work> {
    match unnamed(model, v)? {
        TfValue::Image(b64) => Ok(Work::Images(vec![decode_b64(&b64)?])),
        TfValue::Images(list) => {
            if list.len() > per_run(model) {
                return Err(bad(format!(
                    "{} images is more than model '{}' takes at once ({})",
                    list.len(),
                    model.name,
                    per_run(model)
                )));
            }
            let images = list
                .iter()
                .map(|b| decode_b64(b))
                .collect::<Result<Vec<Bytes>>>()?;
            Ok(Work::Images(images))
        }
        TfValue::Tensor(t) => {
            let items = if model.batch_dim {
                t.outer
                    .ok_or_else(|| bad("'inputs' is not a tensor with its batch first"))?
            } else {
                1
            };
            if items == 0 || items > model.settings.max_batch_size {
                return Err(bad(format!(
                    "a batch of {items} is not in 1..={} (the model's max_batch_size)",
                    model.settings.max_batch_size
                )));
            }
            let mut e = Elements::new(model.input.datatype, items * model.item_elements());
            e.push_all(&model.input.name, &t.values)?;
            Ok(Work::Tensor {
                data: e.finish(&model.input.name)?,
                items,
            })
        }
        TfValue::Named(_) => Err(bad("'inputs' holds named values twice")),
    }
}

/// The rows of one run, each a tensor per output: the first dimension of each output split
/// off (an output of one run of a model without a batch dimension is one row, its leading 1
/// dropped).
fn rows(model: &Served, outputs: &[OutputTensor]) -> Vec<Vec<OutputTensor>> {
    let n = if model.batch_dim {
        outputs
            .first()
            .and_then(|o| o.shape.first())
            .copied()
            .unwrap_or(1)
    } else {
        1
    };
    (0..n)
        .map(|i| {
            outputs
                .iter()
                .map(|o| {
                    let (shape, per) = if model.batch_dim || o.shape.first() == Some(&1) {
                        let rest = o.shape.get(1..).unwrap_or(&[]).to_vec();
                        let per = rest.iter().product::<usize>();
                        (rest, per)
                    } else {
                        (o.shape.clone(), o.data.len())
                    };
                    let data = o.data.get(i * per..(i + 1) * per).unwrap_or(&[]).to_vec();
                    OutputTensor {
                        name: o.name.clone(),
                        shape,
                        data,
                    }
                })
                .collect()
        })
        .collect()
}

/// A `:predict` request.
#[derive(serde::Deserialize)]
struct PredictRequest {
    signature_name: Option<String>,
    instances: Option<Vec<TfValue>>,
    inputs: Option<TfValue>,
}

async fn predict(
    st: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let model = st.repo.get_version(name, version)?;
    let received = read_body(st, headers, body, model.settings.timeout).await?;
    let body = &received.bytes;
    let request: PredictRequest = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the request is not a predict request: {e}")))?;
    if let Some(sig) = &request.signature_name {
        if !sig.is_empty() && sig != "serving_default" {
            return Err(bad(format!(
                "signature_name '{sig}' is not served: the model has 'serving_default'"
            )));
        }
    }
    match (request.instances, request.inputs) {
        (Some(list), None) => {
            let works = instances(&model, list)?;
            let runs = works.into_iter().map(|w| infer::run(&model, w, None));
            let answers = futures_util::future::try_join_all(runs).await?;
            let predictions: Vec<_> = answers.iter().flat_map(|a| rows(&model, a)).collect();
            let single = model.outputs.len() == 1;
            let body: Vec<Named<'_>> = predictions
                .iter()
                .map(|row| Named {
                    single,
                    outputs: row
                        .iter()
                        .map(|t| {
                            (
                                t.name.as_str(),
                                Nested {
                                    shape: &t.shape,
                                    data: &t.data,
                                },
                            )
                        })
                        .collect(),
                })
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &Predictions { predictions: body },
            ))
        }
        (None, Some(inputs)) => {
            let work = columnar(&model, inputs)?;
            let outputs = infer::run(&model, work, None).await?;
            let value = Named {
                single: outputs.len() == 1,
                outputs: outputs
                    .iter()
                    .map(|o| {
                        (
                            o.name.as_str(),
                            Nested {
                                shape: &o.shape,
                                data: &o.data,
                            },
                        )
                    })
                    .collect(),
            };
            Ok(json_response(StatusCode::OK, &Outputs { outputs: value }))
        }
        (Some(_), Some(_)) => Err(bad("give 'instances' or 'inputs', not both")),
        (None, None) => Err(bad(
            "the request has neither 'instances' (row format) nor 'inputs' (columnar)",
        )),
    }
}

/// One output's tensor (`single`) or every output's by name.
struct Named<'a> {
    single: bool,
    outputs: Vec<(&'a str, Nested<'a>)>,
}

impl Serialize for Named<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match (self.single, self.outputs.first()) {
            (true, Some((_, t))) => t.serialize(s),
            _ => {
                let mut map = s.serialize_map(Some(self.outputs.len()))?;
                for (name, t) in &self.outputs {
                    map.serialize_entry(name, t)?;
                }
                map.end()
            }
        }
    }
}

#[derive(serde::Serialize)]
struct Predictions<'a> {
    predictions: Vec<Named<'a>>,
}

#[derive(serde::Serialize)]
struct Outputs<'a> {
    outputs: Named<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(shape: &[usize], data: &[f32]) -> String {
        serde_json::to_string(&Nested { shape, data }).unwrap()
    }

    #[test]
    fn nested_values_follow_the_shape() {
        let data = [1.0, 2.0, 3.0, 4.0, 5.0, 0.3];
        assert_eq!(nested(&[2, 3], &data), "[[1.0,2.0,3.0],[4.0,5.0,0.3]]");
        assert_eq!(nested(&[], &data[..1]), "1.0");
        assert_eq!(nested(&[0], &[]), "[]");
    }

    #[test]
    fn base64_is_read_padded_or_not() {
        assert_eq!(&decode_b64("aGk=").unwrap()[..], b"hi");
        assert_eq!(&decode_b64("aGk").unwrap()[..], b"hi");
        assert!(decode_b64("a*b").is_err());
    }
}
