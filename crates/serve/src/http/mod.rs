//! The HTTP side: one axum router for every protocol ([`kserve`], [`tfserving`], [`vision`],
//! `/metrics`), served by hyper with the limits a hostile or broken client cannot get around:
//! at most [`Limits::connections`] connections (more are answered `503` and closed), a
//! request head within [`Limits::header_timeout`] (idle keep-alive connections included), a
//! body of at most [`Limits::max_body`] bytes read within the request's deadline. On shutdown
//! no connection is taken, readiness turns `503`, and the requests under way are finished.

pub(crate) mod kserve;
pub(crate) mod tfserving;
pub(crate) mod vision;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::repository::Repository;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// The limits of the HTTP and gRPC servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// connections served at once (each protocol); more are refused
    pub connections: usize,
    /// the largest request body (and gRPC message), bytes
    pub max_body: usize,
    /// the time a client has to send a request head (also: an idle keep-alive connection's
    /// life)
    pub header_timeout: Duration,
    /// how long in-flight requests may take to finish on shutdown
    pub grace: Duration,
    /// request bytes held at once, all connections together (bodies being read or answered,
    /// gRPC requests too; `ModelStreamInfer`'s messages are bounded one by one); a request
    /// that would go past it is answered `503` (gRPC: `UNAVAILABLE`)
    pub inflight_bytes: usize,
}

impl Default for Limits {
    /// 1024 connections, 64 MiB bodies, 1 GiB of them at once, 10 s for a request head, 30 s
    /// of grace.
    fn default() -> Self {
        Limits {
            connections: 1024,
            max_body: 64 << 20,
            header_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(30),
            inflight_bytes: 1 << 30,
        }
    }
}

/// Which served models the DeepStack vision endpoints use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VisionModels {
    /// `/v1/vision/detection` (default: the first detection model that is not called `face`,
    /// else the first detection model)
    pub detection: Option<String>,
    /// `/v1/vision/face` (default: `face`)
    pub face: Option<String>,
    /// `/v1/vision/scene` (default: the first classification model)
    pub scene: Option<String>,
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub repo: Arc<Repository>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub vision: Arc<VisionModels>,
    /// set when shutting down: readiness fails, load balancers drain
    pub stopping: Arc<AtomicBool>,
    /// the request bytes that may be held at once, in KiB permits
    pub body_budget: Arc<Semaphore>,
}

/// A request body and its share of the server's byte budget (released when dropped).
pub(crate) struct Received {
    pub bytes: Bytes,
    _held: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The byte budget's permits a request holds (KiB each), given back when dropped.
pub(crate) struct Held {
    budget: Arc<Semaphore>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Held {
    /// Nothing held yet, of `budget`.
    pub fn new(budget: Arc<Semaphore>) -> Self {
        Held {
            budget,
            permit: None,
        }
    }

    /// `n` more bytes held, or [`Error::Busy`].
    pub fn take(&mut self, n: usize) -> Result<()> {
        let kib = u32::try_from(n.div_ceil(1024)).unwrap_or(u32::MAX);
        if kib == 0 {
            return Ok(());
        }
        let p = self
            .budget
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| {
                Error::Busy(
                    "it holds as many request bytes as it may (--max-inflight-mib); try again"
                        .into(),
                )
            })?;
        match &mut self.permit {
            Some(held) => held.merge(p),
            None => self.permit = Some(p),
        }
        Ok(())
    }
}

/// An error as `{"error": "…"}` with its status.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        json_response(
            self.status(),
            &serde_json::json!({ "error": self.to_string() }),
        )
    }
}

/// A JSON body with `status`.
pub(crate) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => Error::Internal(e.to_string()).into_response(),
    }
}

/// Read a request body of at most `max_body` bytes before `deadline`, within the server's
/// byte budget: larger is [`Error::TooLarge`] (refused from its `Content-Length` before
/// reading), past the budget [`Error::Busy`], a body that breaks off or stalls a bad request.
pub(crate) async fn read_body(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
    deadline: Duration,
) -> Result<Received> {
    let limit = st.limits.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::TooLarge { limit });
    }
    let declared = declared.map_or(0, |n| n as usize);
    let mut held = Held::new(st.body_budget.clone());
    held.take(declared)?;
    let read = async {
        let mut body = body;
        let mut buf = bytes::BytesMut::with_capacity(declared);
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| Error::BadRequest(format!("the request body broke off: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let after = buf.len() + data.len();
            if after > limit {
                return Err(Error::TooLarge { limit });
            }
            // a body without a Content-Length takes its share as it arrives
            if after > declared {
                held.take(after - buf.len().max(declared))?;
            }
            buf.extend_from_slice(&data);
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(Ok(bytes)) => Ok(Received {
            bytes,
            _held: held.permit,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::BadRequest(format!(
            "the request body did not arrive within {} ms",
            deadline.as_millis()
        ))),
    }
}

/// Count a request's answer in the metrics.
pub(crate) fn observe(
    st: &AppState,
    model: &str,
    protocol: &'static str,
    started: Instant,
    result: &Result<Response>,
) {
    st.metrics
        .answered(model, protocol, result.as_ref().err(), started.elapsed());
}

/// A route's path parameters: `name`, and `version` where the route has one.
pub(crate) type Params = axum::extract::Path<std::collections::HashMap<String, String>>;

/// The model and version a route names.
pub(crate) fn model_of(params: &std::collections::HashMap<String, String>) -> (&str, Option<&str>) {
    (
        params.get("name").map_or("", String::as_str),
        params.get("version").map(String::as_str),
    )
}

/// Answer `result`, its error as JSON.
pub(crate) fn answer(result: Result<Response>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        st.metrics.render(),
    )
        .into_response()
}

async fn index(State(st): State<AppState>) -> Response {
    let models: Vec<_> = st
        .repo
        .all()
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "task": m.task.name(),
                "platform": m.platform(),
                "input": {"name": m.input.name, "datatype": m.input.datatype.name(), "shape": m.input.shape},
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "name": "tensorcv",
            "version": env!("CARGO_PKG_VERSION"),
            "models": models,
            "endpoints": [
                "GET /v2, /v2/health/live, /v2/health/ready (KServe v2)",
                "GET /v2/models/NAME[/versions/1][/ready|/config|/stats]",
                "POST /v2/models/NAME[/versions/1]/infer",
                "GET /v1/models/NAME[/metadata], POST /v1/models/NAME:predict (TF Serving)",
                "POST /v1/models/NAME:analyze (an image in, the command's JSON record out)",
                "POST /v1/vision/detection, /v1/vision/face, /v1/vision/scene, /v1/vision/custom/NAME (DeepStack)",
                "GET /metrics (Prometheus)",
            ],
        }),
    )
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "no such endpoint (GET / lists them)"}),
    )
}

async fn method_not_allowed() -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &serde_json::json!({"error": "this endpoint does not take that method"}),
    )
}

/// The router of every HTTP endpoint.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .merge(kserve::routes())
        .merge(tfserving::routes())
        .merge(vision::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serve `app` on `listener` until `stop` turns true; then finish the connections under way
/// (at most `limits.grace`).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.connections));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, _peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // out of file descriptors, say: wait a moment instead of spinning
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // over the limit: told so and closed, not queued
            tokio::spawn(refuse(io, builder.clone()));
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let conn = graceful.watch(conn);
        let metrics = metrics.clone();
        metrics.connection("http", 1);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            metrics.connection("http", -1);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.grace) => {
            tracing::warn!("HTTP connections still open after the grace period were closed");
        }
    }
}

/// Answer a connection over the limit with `503` and close it.
async fn refuse(
    io: TokioIo<tokio::net::TcpStream>,
    builder: Arc<hyper_util::server::conn::auto::Builder<TokioExecutor>>,
) {
    let service = hyper::service::service_fn(|_req| async {
        let body = r#"{"error": "too many connections; try again later"}"#;
        Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONNECTION, "close")
            .body(Body::from(body))
    });
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        builder.serve_connection(io, service),
    )
    .await;
}

/// Readiness: models loaded and not shutting down.
pub(crate) fn ready(st: &AppState) -> bool {
    !st.stopping.load(Ordering::Relaxed) && !st.repo.all().is_empty()
}
