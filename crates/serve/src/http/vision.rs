//! Images in, answers out.
//!
//! - DeepStack's vision API (what Blue Iris, Agent DVR and Home Assistant integrations call):
//!   `POST /v1/vision/detection`, `/v1/vision/face`, `/v1/vision/scene`,
//!   `/v1/vision/custom/NAME`, a multipart form with the image in `image` (and optionally
//!   `min_confidence`), answered `{"success": true, "predictions": [{"label", "confidence",
//!   "x_min", "y_min", "x_max", "y_max"}], …}`; errors `{"success": false, "error": "…"}`.
//! - tensorcv's own `POST /v1/models/NAME:analyze`: an image (the body, or a form's `image`)
//!   in, the record `tensorcv run --json` prints out — classes, detections, masks (`mask=png`
//!   or `rle`), landmarks — with thresholds from the query (`score_threshold`, `top_k`,
//!   `iou_threshold`, `max_detections`, `mask_threshold`).
//!
//! The image is preprocessed as the model's card says, so the numbers are `tensorcv detect`'s.

use super::{answer, json_response, observe, read_body, AppState};
use crate::error::{bad, Error, Result};
use crate::model::Served;
use crate::scheduler::{MaskFormat, RecordOptions};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tensorcv_infer::Task;
use tensorcv_tasks::pipeline::Overrides;
use tensorcv_tasks::record::{DetectionRecord, Record};

const DEEPSTACK: &str = "deepstack";
const ANALYZE: &str = "analyze";
/// The most form fields read besides the image, and their largest value.
const MAX_FIELDS: usize = 32;
const MAX_FIELD_BYTES: usize = 4096;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/vision/detection", post(detection))
        .route("/v1/vision/face", post(face))
        .route("/v1/vision/scene", post(scene))
        .route("/v1/vision/custom/{name}", post(custom))
}

/// A form (or a bare body): the image, its file name, the other fields.
struct Form {
    image: Bytes,
    file_name: Option<String>,
    fields: HashMap<String, String>,
    /// the body's share of the byte budget, held while the image is
    _received: super::Received,
}

/// The image of a request: a `multipart/form-data` body's `image` field (the first file if
/// none is called so), or the whole body.
async fn form(st: &AppState, headers: &HeaderMap, body: Body, timeout: Duration) -> Result<Form> {
    let received = read_body(st, headers, body, timeout).await?;
    let body = received.bytes.clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        if body.is_empty() {
            return Err(bad(
                "the request has no image (send it as the body or as a form's 'image')",
            ));
        }
        return Ok(Form {
            image: body,
            file_name: None,
            fields: HashMap::new(),
            _received: received,
        });
    }
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| bad(format!("the form's Content-Type: {e}")))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut image: Option<(Bytes, Option<String>, bool)> = None;
    let mut fields = HashMap::new();
    let form_err = |e: multer::Error| bad(format!("the form is malformed: {e}"));
    while let Some(field) = parts.next_field().await.map_err(form_err)? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let is_file = file_name.is_some();
        let data = field.bytes().await.map_err(form_err)?;
        if name == "image" {
            image = Some((data, file_name, true));
        } else if is_file {
            if image.is_none() {
                image = Some((data, file_name, false));
            }
        } else {
            if fields.len() >= MAX_FIELDS || data.len() > MAX_FIELD_BYTES {
                return Err(bad(format!(
                    "the form has more than {MAX_FIELDS} fields or a field over {MAX_FIELD_BYTES} bytes"
                )));
            }
            let text = String::from_utf8(data.to_vec())
                .map_err(|_| bad(format!("form field '{name}' is not UTF-8 text")))?;
            fields.insert(name, text);
        }
    }
    match image {
        Some((image, file_name, _)) if !image.is_empty() => Ok(Form {
            image,
            file_name,
            fields,
            _received: received,
        }),
        _ => Err(bad("the form has no image (a file field called 'image')")),
    }
}

/// A number from 0 to 1 in a field or query parameter.
fn unit(map: &HashMap<String, String>, key: &str) -> Result<Option<f32>> {
    map.get(key)
        .map(|v| match v.trim().parse::<f32>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
            _ => Err(bad(format!("{key} = '{v}' is not a number from 0 to 1"))),
        })
        .transpose()
}

/// A count from 1 to `max` in a field or query parameter.
fn count(map: &HashMap<String, String>, key: &str, max: usize) -> Result<Option<usize>> {
    map.get(key)
        .map(|v| match v.trim().parse::<usize>() {
            Ok(x) if (1..=max).contains(&x) => Ok(x),
            _ => Err(bad(format!("{key} = '{v}' is not a count from 1 to {max}"))),
        })
        .transpose()
}

/// The record options a query (and form) asks for.
fn options(map: &HashMap<String, String>) -> Result<RecordOptions> {
    let mask = match map.get("mask").map(String::as_str) {
        None | Some("none") | Some("") => MaskFormat::None,
        Some("png") => MaskFormat::Png,
        Some("rle") => MaskFormat::Rle,
        Some(other) => {
            return Err(bad(format!(
                "mask = '{other}' is not one of none, png, rle"
            )))
        }
    };
    Ok(RecordOptions {
        overrides: Overrides {
            score_threshold: unit(map, "score_threshold")?,
            top_k: count(map, "top_k", 10_000)?,
            iou_threshold: unit(map, "iou_threshold")?,
            max_detections: count(map, "max_detections", 10_000)?,
            mask_threshold: unit(map, "mask_threshold")?,
        },
        mask,
    })
}

/// A deadline in a query (`timeout_ms`, 1 to 3600000).
fn timeout(map: &HashMap<String, String>) -> Result<Option<Duration>> {
    Ok(count(map, "timeout_ms", 3_600_000)?.map(|ms| Duration::from_millis(ms as u64)))
}

/// `POST /v1/models/NAME:analyze`.
pub(super) async fn analyze(
    st: AppState,
    name: String,
    version: Option<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let flight = st.metrics.in_flight();
    let result = analyze_request(&st, &name, version.as_deref(), query, &headers, body).await;
    drop(flight);
    observe(&st, &name, ANALYZE, started, &result);
    answer(result)
}

async fn analyze_request(
    st: &AppState,
    name: &str,
    version: Option<&str>,
    mut query: HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let model = st.repo.get_version(name, version)?;
    let limit = timeout(&query)?;
    let form = form(st, headers, body, limit.unwrap_or(model.settings.timeout)).await?;
    // a form's fields are options too (the query wins)
    for (k, v) in form.fields {
        query.entry(k).or_insert(v);
    }
    let options = options(&query)?;
    let source = query
        .get("source")
        .cloned()
        .or(form.file_name)
        .unwrap_or_else(|| "-".into());
    let record = model.analyze(form.image, &source, options, limit).await?;
    Ok(json_response(StatusCode::OK, &record))
}

/// A DeepStack prediction.
#[derive(Serialize)]
struct Prediction {
    label: String,
    confidence: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y_min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y_max: Option<i64>,
}

fn box_prediction(d: &DetectionRecord, w: usize, h: usize) -> Prediction {
    let clamp = |v: f64, max: usize| v.round().clamp(0.0, max as f64) as i64;
    Prediction {
        label: d.label.clone().unwrap_or_else(|| d.class.to_string()),
        confidence: d.score,
        x_min: Some(clamp(d.bbox[0], w)),
        y_min: Some(clamp(d.bbox[1], h)),
        x_max: Some(clamp(d.bbox[2], w)),
        y_max: Some(clamp(d.bbox[3], h)),
    }
}

/// The predictions of a record: boxes, or classes (label and confidence).
fn predictions(record: &Record) -> Vec<Prediction> {
    if let Some(found) = &record.detections {
        return found
            .iter()
            .map(|d| box_prediction(d, record.width, record.height))
            .collect();
    }
    if let Some(classes) = &record.classes {
        return classes
            .iter()
            .map(|c| Prediction {
                label: c.label.clone().unwrap_or_else(|| c.index.to_string()),
                confidence: c.score,
                x_min: None,
                y_min: None,
                x_max: None,
                y_max: None,
            })
            .collect();
    }
    Vec::new()
}

/// A DeepStack error: `{"success": false, "error": "…"}`.
fn deepstack_error(e: &Error) -> Response {
    json_response(
        e.status(),
        &serde_json::json!({"success": false, "error": e.to_string(), "code": e.status().as_u16()}),
    )
}

/// Which endpoint asked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Detection,
    Face,
    Scene,
    Custom,
}

/// The served model an endpoint uses.
fn endpoint_model(st: &AppState, endpoint: Endpoint, custom: Option<&str>) -> Result<Arc<Served>> {
    let pick = |task: Task, skip_face: bool| {
        let all = st.repo.all();
        all.iter()
            .find(|m| m.task == task && !(skip_face && m.name == "face"))
            .or_else(|| all.iter().find(|m| m.task == task))
            .cloned()
    };
    let (named, flag) = match endpoint {
        Endpoint::Custom => return st.repo.get(custom.unwrap_or_default()),
        Endpoint::Detection => (st.vision.detection.as_deref(), "--detection-model"),
        Endpoint::Face => (st.vision.face.as_deref().or(Some("face")), "--face-model"),
        Endpoint::Scene => (st.vision.scene.as_deref(), "--scene-model"),
    };
    if let Some(name) = named {
        return st.repo.get(name).map_err(|e| match e {
            Error::UnknownModel { served, .. } if endpoint == Endpoint::Face && st.vision.face.is_none() => {
                bad(format!(
                    "no model called 'face' is served for /v1/vision/face (name one with {flag}; served: {served})"
                ))
            }
            e => e,
        });
    }
    let task = match endpoint {
        Endpoint::Scene => Task::Classification,
        _ => Task::Detection,
    };
    pick(task, endpoint == Endpoint::Detection).ok_or_else(|| {
        bad(format!(
            "no {} model is served for this endpoint (name one with {flag})",
            task.name()
        ))
    })
}

async fn deepstack(
    st: AppState,
    endpoint: Endpoint,
    custom: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let flight = st.metrics.in_flight();
    let mut model_name = custom.clone().unwrap_or_default();
    let result = async {
        let model = endpoint_model(&st, endpoint, custom.as_deref())?;
        model_name = model.name.clone();
        let form = form(&st, &headers, body, model.settings.timeout).await?;
        let overrides = Overrides {
            score_threshold: unit(&form.fields, "min_confidence")?,
            ..Overrides::default()
        };
        let source = form.file_name.unwrap_or_else(|| "image".into());
        let options = RecordOptions {
            overrides,
            mask: MaskFormat::None,
        };
        let t = Instant::now();
        let record = model.analyze(form.image, &source, options, None).await?;
        let ms = t.elapsed().as_millis() as u64;
        let found = predictions(&record);
        let body = if endpoint == Endpoint::Scene {
            let best = found.first();
            serde_json::json!({
                "success": true,
                "label": best.map(|p| p.label.clone()),
                "confidence": best.map_or(0.0, |p| p.confidence),
                "duration": ms,
            })
        } else {
            serde_json::json!({
                "success": true,
                "count": found.len(),
                "predictions": found,
                "duration": ms,
            })
        };
        Ok(json_response(StatusCode::OK, &body))
    }
    .await;
    drop(flight);
    observe(&st, &model_name, DEEPSTACK, started, &result);
    result.unwrap_or_else(|e| deepstack_error(&e))
}

async fn detection(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    deepstack(st, Endpoint::Detection, None, headers, body).await
}

async fn face(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    deepstack(st, Endpoint::Face, None, headers, body).await
}

async fn scene(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    deepstack(st, Endpoint::Scene, None, headers, body).await
}

async fn custom(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    deepstack(st, Endpoint::Custom, Some(name), headers, body).await
}
