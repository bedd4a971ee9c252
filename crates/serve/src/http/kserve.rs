//! KServe v2 / Open Inference Protocol over HTTP, with Triton's extensions that its clients
//! use: binary tensor data (`Inference-Header-Content-Length`), classification, model
//! configuration, statistics and the repository index.
//!
//! - `GET /v2`, `/v2/health/live`, `/v2/health/ready`
//! - `GET /v2/models/NAME[/versions/V]`, `…/ready`, `…/config`, `…/stats`, `/v2/models/stats`
//! - `POST /v2/models/NAME[/versions/V]/infer`
//! - `POST /v2/repository/index`

use super::{answer, json_response, model_of, observe, read_body, ready, AppState, Params};
use crate::error::{bad, Error, Result};
use crate::infer::{self, InputData, Picked, Wanted};
use crate::model::Served;
use crate::tensor::DataType;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::atomic::Ordering;
use std::time::Instant;

const PROTOCOL: &str = "kserve-http";
/// The header that says how much of the body is JSON (the rest: binary tensors).
const HEADER_LENGTH: &str = "inference-header-content-length";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2/models/stats", get(all_stats))
        .route("/v2/models/{name}", get(metadata))
        .route("/v2/models/{name}/versions/{version}", get(metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready),
        )
        .route("/v2/models/{name}/config", get(config))
        .route("/v2/models/{name}/versions/{version}/config", get(config))
        .route("/v2/models/{name}/stats", get(stats))
        .route("/v2/models/{name}/versions/{version}/stats", get(stats))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer))
        .route("/v2/repository/index", post(index))
}

/// The extensions this server speaks.
pub(crate) const EXTENSIONS: [&str; 5] = [
    "classification",
    "binary_tensor_data",
    "model_configuration",
    "statistics",
    "model_repository",
];

async fn server_metadata() -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "name": "tensorcv",
            "version": env!("CARGO_PKG_VERSION"),
            "extensions": EXTENSIONS,
        }),
    )
}

async fn live() -> StatusCode {
    StatusCode::OK
}

async fn server_ready(State(st): State<AppState>) -> StatusCode {
    if ready(&st) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// A model's metadata as the protocol describes it.
pub(crate) fn model_metadata(m: &Served) -> Value {
    let tensor = |t: &crate::tensor::TensorMeta| serde_json::json!({"name": t.name, "datatype": t.datatype.name(), "shape": t.shape});
    serde_json::json!({
        "name": m.name,
        "versions": ["1"],
        "platform": m.platform(),
        "inputs": [tensor(&m.input)],
        "outputs": m.outputs.iter().map(tensor).collect::<Vec<_>>(),
    })
}

async fn metadata(State(st): State<AppState>, Path(params): Params) -> Response {
    let (name, version) = model_of(&params);
    answer(metadata_of(&st, name, version))
}

fn metadata_of(st: &AppState, name: &str, version: Option<&str>) -> Result<Response> {
    let m = st.repo.get_version(name, version)?;
    Ok(json_response(StatusCode::OK, &model_metadata(&m)))
}

async fn model_ready(State(st): State<AppState>, Path(params): Params) -> Response {
    let (name, version) = model_of(&params);
    answer(ready_of(&st, name, version))
}

fn ready_of(st: &AppState, name: &str, version: Option<&str>) -> Result<Response> {
    st.repo.get_version(name, version)?;
    Ok(if st.stopping.load(Ordering::Relaxed) {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    } else {
        StatusCode::OK.into_response()
    })
}

/// A model's configuration in Triton's JSON form (`model_config.proto`).
pub(crate) fn model_config(m: &Served) -> Value {
    let s = &m.settings;
    let mut config = serde_json::json!({
        "name": m.name,
        "platform": m.platform(),
        "backend": "tensorcv",
        "version_policy": {"latest": {"num_versions": 1}},
        "max_batch_size": if m.batch_dim { s.max_batch_size } else { 0 },
        "input": [{
            "name": m.input.name,
            "data_type": m.input.datatype.config_name(),
            "format": m.input_format(),
            "dims": m.config_dims(&m.input.shape),
        }],
        "output": m.outputs.iter().map(|o| serde_json::json!({
            "name": o.name,
            "data_type": o.datatype.config_name(),
            "dims": m.config_dims(&o.shape),
            "label_filename": "",
        })).collect::<Vec<_>>(),
        "instance_group": [{
            "name": m.name,
            "kind": "KIND_CPU",
            "count": s.instances,
        }],
        "parameters": {
            "task": {"string_value": m.task.name()},
            "threads": {"string_value": s.threads.to_string()},
        },
    });
    if m.batch_dim {
        config["dynamic_batching"] = serde_json::json!({
            "preferred_batch_size": m.plans,
            "max_queue_delay_microseconds": s.max_queue_delay.as_micros() as u64,
            "default_queue_policy": {
                "timeout_action": "REJECT",
                "default_timeout_microseconds": s.timeout.as_micros() as u64,
                "allow_timeout_override": true,
                "max_queue_size": s.max_queue_size,
            },
        });
    }
    config
}

async fn config(State(st): State<AppState>, Path(params): Params) -> Response {
    let (name, version) = model_of(&params);
    answer(config_of(&st, name, version))
}

fn config_of(st: &AppState, name: &str, version: Option<&str>) -> Result<Response> {
    let m = st.repo.get_version(name, version)?;
    Ok(json_response(StatusCode::OK, &model_config(&m)))
}

/// A model's statistics in Triton's JSON form.
pub(crate) fn model_stats(m: &Served) -> Value {
    let s = &m.stats;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    serde_json::json!({
        "name": m.name,
        "version": "1",
        "last_inference": get(&s.last_ms),
        "inference_count": get(&s.inferences),
        "execution_count": get(&s.executions),
        "inference_stats": {
            "success": {"count": get(&s.success), "ns": get(&s.success_ns)},
            "fail": {"count": get(&s.failure), "ns": get(&s.failure_ns)},
        },
        "batch_stats": [],
    })
}

async fn stats(State(st): State<AppState>, Path(params): Params) -> Response {
    let (name, version) = model_of(&params);
    answer(stats_of(&st, Some(name), version))
}

async fn all_stats(State(st): State<AppState>) -> Response {
    answer(stats_of(&st, None, None))
}

fn stats_of(st: &AppState, name: Option<&str>, version: Option<&str>) -> Result<Response> {
    let models = match name {
        Some(n) => vec![st.repo.get_version(n, version)?],
        None => st.repo.all(),
    };
    let stats: Vec<Value> = models.iter().map(|m| model_stats(m)).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "model_stats": stats }),
    ))
}

async fn index(State(st): State<AppState>) -> Response {
    let list: Vec<Value> = st
        .repo
        .all()
        .iter()
        .map(
            |m| serde_json::json!({"name": m.name, "version": "1", "state": "READY", "reason": ""}),
        )
        .collect();
    json_response(StatusCode::OK, &list)
}

/// A request of the protocol.
#[derive(Deserialize)]
struct InferRequest {
    id: Option<String>,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<InputJson>,
    #[serde(default)]
    outputs: Vec<OutputJson>,
}

#[derive(Deserialize)]
struct InputJson {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    data: Option<crate::json::Flat>,
}

#[derive(Deserialize)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

#[derive(Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    outputs: Vec<OutputResponse<'a>>,
}

#[derive(Serialize)]
struct OutputResponse<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Data<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Data<'a> {
    Numbers(&'a [f32]),
    Strings(&'a [String]),
}

async fn infer(
    State(st): State<AppState>,
    Path(params): Params,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (name, version) = model_of(&params);
    let started = Instant::now();
    let flight = st.metrics.in_flight();
    let result = infer_request(&st, name, version, &headers, body).await;
    drop(flight);
    observe(&st, name, PROTOCOL, started, &result);
    if let Err(e) = &result {
        tracing::debug!(model = %name, error = %e, "infer refused");
    }
    answer(result)
}

/// A boolean parameter (`true`/`false`).
fn flag(params: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match params.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(bad(format!("parameter '{key}' = {v} is not true or false"))),
    }
}

/// A whole-number parameter.
fn int(params: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match params.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("parameter '{key}' = {v} is not a whole number"))),
    }
}

async fn infer_request(
    st: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let model = st.repo.get_version(name, version)?;
    let received = read_body(st, headers, body, model.settings.timeout).await?;
    let body = &received.bytes;
    let json_len = match headers.get(HEADER_LENGTH) {
        Some(v) => {
            let n = v
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| bad("Inference-Header-Content-Length is not a number"))?;
            if n > body.len() {
                return Err(bad(format!(
                    "Inference-Header-Content-Length {n} is longer than the {} bytes of the body",
                    body.len()
                )));
            }
            n
        }
        None => body.len(),
    };
    let request: InferRequest = serde_json::from_slice(&body[..json_len])
        .map_err(|e| bad(format!("the request is not an inference request: {e}")))?;
    let timeout = infer::timeout_param(int(&request.parameters, "timeout")?)?;
    let [input] = &request.inputs[..] else {
        return Err(bad(format!(
            "model '{}' takes one input ('{}'), the request has {}",
            model.name,
            model.input.name,
            request.inputs.len()
        )));
    };
    // where the binary data not yet given to an input starts
    let mut at = json_len;
    let data = match int(&input.parameters, "binary_data_size")? {
        Some(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= body.len() - at)
                .ok_or_else(|| {
                    bad(format!(
                        "input '{}': binary_data_size {n} is more than the {} bytes of binary \
                         data",
                        input.name,
                        body.len() - at
                    ))
                })?;
            let raw = body.slice(at..at + n);
            at += n;
            InputData::Raw(raw)
        }
        None => InputData::Json(
            &input
                .data
                .as_ref()
                .ok_or_else(|| {
                    bad(format!(
                        "input '{}' has neither data nor binary_data_size",
                        input.name
                    ))
                })?
                .values,
        ),
    };
    if at != body.len() {
        return Err(bad(format!(
            "{} bytes of binary data follow the inputs",
            body.len() - at
        )));
    }
    let work = infer::input(&model, &input.name, &input.datatype, &input.shape, data)?;
    let all_binary = flag(&request.parameters, "binary_data_output")?.unwrap_or(false);
    let wanted = request
        .outputs
        .iter()
        .map(|o| {
            let classes = int(&o.parameters, "classification")?
                .map(|k| {
                    usize::try_from(k)
                        .ok()
                        .filter(|&k| k >= 1)
                        .ok_or_else(|| bad(format!("output '{}': classification {k}", o.name)))
                })
                .transpose()?;
            Ok(Wanted {
                name: o.name.clone(),
                binary: flag(&o.parameters, "binary_data")?.unwrap_or(all_binary),
                classes,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let outputs = infer::run(&model, work, timeout).await?;
    let picked = infer::pick(&model, outputs, &wanted)?;
    response(&model, request.id, &picked, &wanted, all_binary)
}

/// The response: JSON, and the binary outputs after it.
fn response(
    model: &Served,
    id: Option<String>,
    picked: &[Picked],
    wanted: &[Wanted],
    all_binary: bool,
) -> Result<Response> {
    let mut tail: Vec<u8> = Vec::new();
    let mut outputs = Vec::with_capacity(picked.len());
    for (i, p) in picked.iter().enumerate() {
        let binary = wanted.get(i).map_or(all_binary, |w| w.binary);
        let (parameters, data) = if binary {
            let raw = p.raw();
            let n = raw.len();
            tail.extend(raw);
            (Some(serde_json::json!({ "binary_data_size": n })), None)
        } else {
            let data = match p {
                Picked::Numbers(t) => Data::Numbers(&t.data),
                Picked::Classes { values, .. } => Data::Strings(values),
            };
            (None, Some(data))
        };
        outputs.push(OutputResponse {
            name: p.name(),
            datatype: match p.datatype() {
                DataType::Bytes => "BYTES",
                _ => "FP32",
            },
            shape: p.shape(),
            parameters,
            data,
        });
    }
    let json = serde_json::to_vec(&InferResponse {
        model_name: &model.name,
        model_version: "1",
        id,
        outputs,
    })
    .map_err(|e| Error::Internal(e.to_string()))?;
    if tail.is_empty() {
        return Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response());
    }
    let json_len = json.len();
    let mut body = json;
    body.extend(tail);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::HeaderName::from_static(HEADER_LENGTH),
                HeaderValue::from(json_len),
            ),
        ],
        body,
    )
        .into_response())
}
