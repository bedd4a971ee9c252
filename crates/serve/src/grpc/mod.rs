//! KServe v2 / Open Inference Protocol over gRPC: the `inference.GRPCInferenceService` of the
//! published `grpc_service.proto` (KServe's `grpc_predict_v2.proto` is its first six RPCs, so
//! both protocols' clients are served), on tonic. Served: health, metadata, `ModelInfer`
//! (typed contents or `raw_input_contents`, answered with `raw_output_contents`),
//! `ModelStreamInfer`, `ModelConfig`, `ModelStatistics`, `RepositoryIndex`; the rest (shared
//! memory, tracing, …) answer `UNIMPLEMENTED`. Errors carry the status their kind calls for:
//! `NOT_FOUND`, `INVALID_ARGUMENT`, `UNAVAILABLE` (queue full), `DEADLINE_EXCEEDED`, ….

#[allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all)]
#[rustfmt::skip]
pub mod inference;

use crate::error::{bad, Error, Result};
use crate::http::Limits;
use crate::infer::{self, InputData, Picked, Wanted};
use crate::metrics::Metrics;
use crate::model::Served;
use crate::repository::Repository;
use inference::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use inference::infer_parameter::ParameterChoice;
use inference::model_infer_response::InferOutputTensor;
use inference::*;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tonic::{Request, Response, Status, Streaming};

const PROTOCOL: &str = "kserve-grpc";

/// The service.
pub(crate) struct Service {
    pub repo: Arc<Repository>,
    pub metrics: Arc<Metrics>,
    pub stopping: Arc<AtomicBool>,
}

/// An `int64` parameter.
fn int_param(params: &HashMap<String, InferParameter>, key: &str) -> Result<Option<i64>> {
    match params.get(key).and_then(|p| p.parameter_choice.as_ref()) {
        None => Ok(None),
        Some(ParameterChoice::Int64Param(v)) => Ok(Some(*v)),
        Some(ParameterChoice::Uint64Param(v)) => i64::try_from(*v)
            .map(Some)
            .map_err(|_| bad(format!("parameter '{key}' = {v} is too large"))),
        Some(other) => Err(bad(format!(
            "parameter '{key}' = {other:?} is not a whole number"
        ))),
    }
}

/// The deadline a gRPC client set (`grpc-timeout`: digits and a unit, H M S m u n).
fn grpc_deadline<T>(request: &Request<T>) -> Option<Duration> {
    let v = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The numbers of typed contents (every numeric field; the datatype decides which is used).
fn numbers(c: &InferTensorContents) -> Option<InputData<'static>> {
    let f = |v: Vec<f64>| Some(InputData::Numbers(v));
    if !c.fp32_contents.is_empty() {
        return f(c.fp32_contents.iter().map(|&x| x as f64).collect());
    }
    if !c.fp64_contents.is_empty() {
        return f(c.fp64_contents.clone());
    }
    if !c.int_contents.is_empty() {
        return f(c.int_contents.iter().map(|&x| x as f64).collect());
    }
    if !c.uint_contents.is_empty() {
        return f(c.uint_contents.iter().map(|&x| x as f64).collect());
    }
    if !c.int64_contents.is_empty() {
        return f(c.int64_contents.iter().map(|&x| x as f64).collect());
    }
    if !c.uint64_contents.is_empty() {
        return f(c.uint64_contents.iter().map(|&x| x as f64).collect());
    }
    if !c.bool_contents.is_empty() {
        return f(c
            .bool_contents
            .iter()
            .map(|&x| f64::from(u8::from(x)))
            .collect());
    }
    if !c.bytes_contents.is_empty() {
        return Some(InputData::Strings(
            c.bytes_contents
                .iter()
                .map(|b| bytes::Bytes::copy_from_slice(b))
                .collect(),
        ));
    }
    None
}

/// One inference: the request checked, run, its outputs picked.
async fn infer_one(
    repo: &Repository,
    request: ModelInferRequest,
    deadline: Option<Duration>,
) -> Result<(Arc<Served>, ModelInferResponse)> {
    let version = Some(request.model_version.as_str()).filter(|v| !v.is_empty());
    let model = repo.get_version(&request.model_name, version)?;
    let timeout = match (
        infer::timeout_param(int_param(&request.parameters, "timeout")?)?,
        deadline,
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let [input] = &request.inputs[..] else {
        return Err(bad(format!(
            "model '{}' takes one input ('{}'), the request has {}",
            model.name,
            model.input.name,
            request.inputs.len()
        )));
    };
    let data = match (&request.raw_input_contents[..], &input.contents) {
        ([raw], _) => InputData::Raw(raw.clone()),
        ([], Some(contents)) => numbers(contents)
            .ok_or_else(|| bad(format!("input '{}' has empty contents", input.name)))?,
        ([], None) => {
            return Err(bad(format!(
                "input '{}' has neither contents nor raw_input_contents",
                input.name
            )))
        }
        (raw, _) => {
            return Err(bad(format!(
                "{} raw_input_contents for one input",
                raw.len()
            )))
        }
    };
    let work = infer::input(&model, &input.name, &input.datatype, &input.shape, data)?;
    let wanted = request
        .outputs
        .iter()
        .map(|o| {
            let classes = int_param(&o.parameters, "classification")?
                .map(|k| {
                    usize::try_from(k)
                        .ok()
                        .filter(|&k| k >= 1)
                        .ok_or_else(|| bad(format!("output '{}': classification {k}", o.name)))
                })
                .transpose()?;
            Ok(Wanted {
                name: o.name.clone(),
                binary: true,
                classes,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let outputs = infer::run(&model, work, timeout).await?;
    let picked = infer::pick(&model, outputs, &wanted)?;
    let mut response = ModelInferResponse {
        model_name: model.name.clone(),
        model_version: "1".into(),
        id: request.id,
        ..Default::default()
    };
    for p in &picked {
        response.outputs.push(InferOutputTensor {
            name: p.name().to_string(),
            datatype: p.datatype().name().to_string(),
            shape: p.shape().iter().map(|&d| d as i64).collect(),
            ..Default::default()
        });
        response.raw_output_contents.push(match p {
            Picked::Numbers(t) => bytes::Bytes::copy_from_slice(t.bytes()),
            Picked::Classes { .. } => bytes::Bytes::from(p.raw()),
        });
    }
    Ok((model, response))
}

fn duration(count: u64, ns: u64) -> Option<StatisticDuration> {
    Some(StatisticDuration { count, ns })
}

/// A model's configuration (`model_config.proto`).
fn config(m: &Served) -> ModelConfig {
    let dtype = |d: crate::tensor::DataType| {
        inference::DataType::from_str_name(&d.config_name()).map_or(0, |t| t as i32)
    };
    let s = &m.settings;
    let format =
        model_input::Format::from_str_name(m.input_format()).unwrap_or(model_input::Format::None);
    ModelConfig {
        name: m.name.clone(),
        platform: m.platform().into(),
        backend: "tensorcv".into(),
        max_batch_size: if m.batch_dim {
            s.max_batch_size as i32
        } else {
            0
        },
        input: vec![ModelInput {
            name: m.input.name.clone(),
            data_type: dtype(m.input.datatype),
            format: format as i32,
            dims: m.config_dims(&m.input.shape),
            ..Default::default()
        }],
        output: m
            .outputs
            .iter()
            .map(|o| ModelOutput {
                name: o.name.clone(),
                data_type: dtype(o.datatype),
                dims: m.config_dims(&o.shape),
                ..Default::default()
            })
            .collect(),
        instance_group: vec![ModelInstanceGroup {
            name: m.name.clone(),
            kind: model_instance_group::Kind::Cpu as i32,
            count: s.instances as i32,
            ..Default::default()
        }],
        scheduling_choice: m.batch_dim.then(|| {
            model_config::SchedulingChoice::DynamicBatching(ModelDynamicBatching {
                preferred_batch_size: m.plans.iter().map(|&p| p as i32).collect(),
                max_queue_delay_microseconds: s.max_queue_delay.as_micros() as u64,
                default_queue_policy: Some(ModelQueuePolicy {
                    default_timeout_microseconds: s.timeout.as_micros() as u64,
                    allow_timeout_override: true,
                    max_queue_size: s.max_queue_size.min(u32::MAX as usize) as u32,
                    ..Default::default()
                }),
                ..Default::default()
            })
        }),
        ..Default::default()
    }
}

type InferStream = Pin<
    Box<
        dyn tokio_stream::Stream<Item = std::result::Result<ModelStreamInferResponse, Status>>
            + Send,
    >,
>;

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> std::result::Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> std::result::Result<Response<ServerReadyResponse>, Status> {
        let ready = !self.stopping.load(Ordering::Relaxed) && !self.repo.all().is_empty();
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> std::result::Result<Response<ModelReadyResponse>, Status> {
        let r = request.into_inner();
        let version = Some(r.version.as_str()).filter(|v| !v.is_empty());
        let ready = self.repo.get_version(&r.name, version).is_ok()
            && !self.stopping.load(Ordering::Relaxed);
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> std::result::Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "tensorcv".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: crate::http::kserve::EXTENSIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> std::result::Result<Response<ModelMetadataResponse>, Status> {
        let r = request.into_inner();
        let version = Some(r.version.as_str()).filter(|v| !v.is_empty());
        let m = self.repo.get_version(&r.name, version)?;
        let tensor = |t: &crate::tensor::TensorMeta| model_metadata_response::TensorMetadata {
            name: t.name.clone(),
            datatype: t.datatype.name().into(),
            shape: t.shape.clone(),
        };
        Ok(Response::new(ModelMetadataResponse {
            name: m.name.clone(),
            versions: vec!["1".into()],
            platform: m.platform().into(),
            inputs: vec![tensor(&m.input)],
            outputs: m.outputs.iter().map(tensor).collect(),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> std::result::Result<Response<ModelInferResponse>, Status> {
        let started = Instant::now();
        let deadline = grpc_deadline(&request);
        let request = request.into_inner();
        let name = request.model_name.clone();
        let flight = self.metrics.in_flight();
        let result = infer_one(&self.repo, request, deadline).await;
        drop(flight);
        self.metrics
            .answered(&name, PROTOCOL, result.as_ref().err(), started.elapsed());
        Ok(Response::new(result?.1))
    }

    async fn model_stream_infer(
        &self,
        request: Request<Streaming<ModelInferRequest>>,
    ) -> std::result::Result<Response<InferStream>, Status> {
        let deadline = grpc_deadline(&request);
        let mut incoming = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let repo = self.repo.clone();
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            // each request answered as it finishes, in any order (ids match them up)
            let mut running = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    next = incoming.message(), if running.len() < STREAMS as usize => match next {
                        Ok(Some(request)) => {
                            let (repo, metrics, tx) = (repo.clone(), metrics.clone(), tx.clone());
                            running.spawn(async move {
                                let started = Instant::now();
                                let name = request.model_name.clone();
                                let id = request.id.clone();
                                let result = infer_one(&repo, request, deadline).await;
                                metrics.answered(&name, PROTOCOL, result.as_ref().err(), started.elapsed());
                                let message = match result {
                                    Ok((_, response)) => ModelStreamInferResponse {
                                        error_message: String::new(),
                                        infer_response: Some(response),
                                    },
                                    Err(e) => ModelStreamInferResponse {
                                        error_message: e.to_string(),
                                        infer_response: Some(ModelInferResponse {
                                            model_name: name,
                                            id,
                                            ..Default::default()
                                        }),
                                    },
                                };
                                let _ = tx.send(Ok(message)).await;
                            });
                        }
                        Ok(None) => break,
                        Err(status) => {
                            let _ = tx.send(Err(status)).await;
                            break;
                        }
                    },
                    Some(_) = running.join_next(), if !running.is_empty() => {}
                }
            }
            while running.join_next().await.is_some() {}
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn model_config(
        &self,
        request: Request<ModelConfigRequest>,
    ) -> std::result::Result<Response<ModelConfigResponse>, Status> {
        let r = request.into_inner();
        let version = Some(r.version.as_str()).filter(|v| !v.is_empty());
        let m = self.repo.get_version(&r.name, version)?;
        Ok(Response::new(ModelConfigResponse {
            config: Some(config(&m)),
        }))
    }

    async fn model_statistics(
        &self,
        request: Request<ModelStatisticsRequest>,
    ) -> std::result::Result<Response<ModelStatisticsResponse>, Status> {
        let r = request.into_inner();
        let models = if r.name.is_empty() {
            self.repo.all()
        } else {
            let version = Some(r.version.as_str()).filter(|v| !v.is_empty());
            vec![self.repo.get_version(&r.name, version)?]
        };
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let model_stats = models
            .iter()
            .map(|m| {
                let s = &m.stats;
                ModelStatistics {
                    name: m.name.clone(),
                    version: "1".into(),
                    last_inference: get(&s.last_ms),
                    inference_count: get(&s.inferences),
                    execution_count: get(&s.executions),
                    inference_stats: Some(InferStatistics {
                        success: duration(get(&s.success), get(&s.success_ns)),
                        fail: duration(get(&s.failure), get(&s.failure_ns)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect();
        Ok(Response::new(ModelStatisticsResponse { model_stats }))
    }

    async fn repository_index(
        &self,
        _: Request<RepositoryIndexRequest>,
    ) -> std::result::Result<Response<RepositoryIndexResponse>, Status> {
        let models = self
            .repo
            .all()
            .iter()
            .map(|m| repository_index_response::ModelIndex {
                name: m.name.clone(),
                version: "1".into(),
                state: "READY".into(),
                reason: String::new(),
            })
            .collect();
        Ok(Response::new(RepositoryIndexResponse { models }))
    }
}

/// An accepted connection holding its place under the connection limit.
struct Conn {
    stream: tokio::net::TcpStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.metrics.connection("grpc", -1);
    }
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// The HTTP side's byte budget on gRPC: each call's request bytes are taken from it as they
/// arrive (a call that would go past it ends `UNAVAILABLE`, at once: waiting would hold its
/// unread bytes in the connection's flow-control window, where they stall the calls behind
/// them) and given back when its answer is made. `ModelStreamInfer` is left out: a stream
/// lives long, its messages are bounded one by one (`max_body`) and taken a few at a time.
#[derive(Clone)]
struct Budget {
    bytes: Arc<Semaphore>,
}

impl<S> tower::Layer<S> for Budget {
    type Service = Budgeted<S>;
    fn layer(&self, inner: S) -> Budgeted<S> {
        Budgeted {
            inner,
            bytes: self.bytes.clone(),
        }
    }
}

#[derive(Clone)]
struct Budgeted<S> {
    inner: S,
    bytes: Arc<Semaphore>,
}

type Body = tonic::body::Body;

impl<S> tower::Service<axum::http::Request<Body>> for Budgeted<S>
where
    S: tower::Service<axum::http::Request<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<Body>) -> Self::Future {
        if request.uri().path().ends_with("/ModelStreamInfer") {
            return Box::pin(self.inner.call(request));
        }
        let held = Arc::new(std::sync::Mutex::new(crate::http::Held::new(
            self.bytes.clone(),
        )));
        let counted = held.clone();
        let request = request.map(|inner| {
            Body::new(Counted {
                inner,
                held: counted,
            })
        });
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(held);
            answer
        })
    }
}

/// A request body whose bytes are taken from the budget as they arrive.
struct Counted {
    inner: Body,
    held: Arc<std::sync::Mutex<crate::http::Held>>,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Status>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame {
            if let Some(data) = f.data_ref() {
                let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = held.take(data.len()) {
                    return std::task::Poll::Ready(Some(Err(e.into())));
                }
            }
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Calls at once on one connection (HTTP/2 streams), and messages of one `ModelStreamInfer`
/// being answered at once (the stream is read no further until one is).
const STREAMS: u32 = 256;

/// Serve gRPC on `listener` until `stop` turns true, then finish the calls under way (at most
/// `limits.grace`).
pub(crate) async fn serve(
    listener: TcpListener,
    service: Service,
    limits: Limits,
    budget: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> std::result::Result<(), Error> {
    let metrics = service.metrics.clone();
    let permits = Arc::new(Semaphore::new(limits.connections));
    let max = limits.max_body;
    let server = GrpcInferenceServiceServer::new(service)
        .max_decoding_message_size(max)
        .max_encoding_message_size(usize::MAX);
    let incoming = futures_util::stream::unfold(
        (listener, permits, metrics),
        |(listener, permits, metrics)| async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        // over the limit: closed at once (the client sees UNAVAILABLE)
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            continue;
                        };
                        metrics.connection("grpc", 1);
                        let conn = Conn {
                            stream,
                            _permit: permit,
                            metrics: metrics.clone(),
                        };
                        return Some((Ok::<_, std::io::Error>(conn), (listener, permits, metrics)));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "gRPC accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        },
    );
    let mut watch_grace = stop.clone();
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    let serving = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .tcp_nodelay(true)
        .max_concurrent_streams(Some(STREAMS))
        .layer(Budget { bytes: budget })
        .add_service(server)
        .serve_with_incoming_shutdown(incoming, shutdown);
    // on shutdown the calls under way get the grace period, no more
    let grace = limits.grace;
    tokio::select! {
        r = serving => r.map_err(|e| Error::Internal(format!("gRPC server: {e}"))),
        _ = async {
            let _ = watch_grace.changed().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("gRPC calls still running after the grace period were dropped");
            Ok(())
        }
    }
}
