//! `tensorcv serve`: models behind the inference APIs that scale-out machinery already speaks,
//! so tensorcv drops into KServe, Triton-style deployments, TF Serving clients and the NVR
//! software that calls DeepStack:
//!
//! - **KServe v2 / Open Inference Protocol** over HTTP ([`http::kserve`](crate)) and gRPC
//!   ([`grpc`], the published `grpc_service.proto`): health, metadata, inference with JSON or
//!   binary tensors, Triton's classification, configuration, statistics and repository
//!   extensions;
//! - **TF Serving's REST API**: status, metadata, `:predict` (row and columnar, `b64` images);
//! - **images in, answers out**: DeepStack's `/v1/vision/*` and tensorcv's own
//!   `/v1/models/NAME:analyze`, which returns the record `tensorcv run --json` prints;
//! - `/metrics` for Prometheus.
//!
//! Each model has a bounded queue and instances that batch requests where the model has a free
//! batch dimension ([`settings::ServingSettings`], a card's `[serving]`). A full queue is
//! `503`/`UNAVAILABLE`; every request has a deadline. The HTTP side is axum on hyper, the gRPC
//! side tonic, both on one tokio runtime; the models run on their own threads.
//!
//! ```no_run
//! use tensorcv_serve::{Server, ServerConfig};
//! use tensorcv_serve::repository::{ModelSpec, RepositoryOptions};
//!
//! let server = Server::start(ServerConfig {
//!     repository: RepositoryOptions {
//!         models: vec![ModelSpec::parse("face")],
//!         ..Default::default()
//!     },
//!     http: "127.0.0.1:8000".into(),
//!     ..Default::default()
//! })?;
//! println!("KServe v2 at http://{}/v2", server.http_addr());
//! server.run_until_signal()?; // SIGTERM/SIGINT: graceful shutdown; SIGHUP: reload
//! # Ok::<(), tensorcv_serve::Error>(())
//! ```

mod error;
pub mod grpc;
mod http;
mod infer;
mod json;
pub mod metrics;
mod model;
pub mod repository;
mod scheduler;
pub mod settings;
pub mod tensor;

pub use error::{Error, Result};
pub use http::{Limits, VisionModels};
pub use model::{Served, Source, Stats};
pub use scheduler::{MaskFormat, RecordOptions};

use metrics::Metrics;
use repository::{ReloadReport, Repository, RepositoryOptions};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Everything a server is started with.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// the models
    pub repository: RepositoryOptions,
    /// the HTTP address (`8000` alone means `127.0.0.1:8000`)
    pub http: String,
    /// the gRPC address, if gRPC is served
    pub grpc: Option<String>,
    /// connection, body and time limits
    pub limits: Limits,
    /// the models DeepStack's endpoints use
    pub vision: VisionModels,
    /// threads answering connections (the models have their own), 1 to 64
    pub io_threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            repository: RepositoryOptions::default(),
            http: "127.0.0.1:8000".into(),
            grpc: None,
            limits: Limits::default(),
            vision: VisionModels::default(),
            // half the cores (at most 4): the models' instances take the rest (measured on 2
            // cores, BlazeFace over gRPC: 1 thread 566 requests/s, 2 threads 506)
            io_threads: (tensorcv_infer::available_threads() / 2).clamp(1, 4),
        }
    }
}

/// `addr`, with a bare port meaning `127.0.0.1`.
pub fn resolve(addr: &str) -> Result<SocketAddr> {
    let text = if addr.bytes().all(|b| b.is_ascii_digit()) && !addr.is_empty() {
        format!("127.0.0.1:{addr}")
    } else {
        addr.to_string()
    };
    text.to_socket_addrs()
        .map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })?
        .next()
        .ok_or_else(|| Error::Bind {
            addr: addr.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        })
}

async fn bind(addr: &str, what: &str) -> Result<tokio::net::TcpListener> {
    let at = resolve(addr)?;
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })?;
    if !at.ip().is_loopback() {
        tracing::warn!(
            address = %at,
            "{what} is reachable from other machines; tensorcv serve has no authentication or \
             TLS: put it behind a gateway that has"
        );
    }
    Ok(listener)
}

/// A running server.
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    repo: Arc<Repository>,
    metrics: Arc<Metrics>,
    http_addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    stopping: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("http", &self.http_addr)
            .field("grpc", &self.grpc_addr)
            .finish()
    }
}

impl Server {
    /// Load the models, bind the addresses and start serving (in the background).
    pub fn start(config: ServerConfig) -> Result<Server> {
        if config.limits.inflight_bytes < config.limits.max_body {
            return Err(Error::Invalid {
                setting: "--max-inflight-mib".into(),
                message: format!(
                    "{} bytes is less than one body of --max-body-mib ({} bytes)",
                    config.limits.inflight_bytes, config.limits.max_body
                ),
            });
        }
        if !(1..=64).contains(&config.io_threads) {
            return Err(Error::Invalid {
                setting: "io threads".into(),
                message: format!("{} is not in 1..=64", config.io_threads),
            });
        }
        let metrics = Arc::new(Metrics::new());
        let repo = Arc::new(Repository::open(config.repository, metrics.clone())?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.io_threads)
            .thread_name("serve-io")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
        let (stop, stop_rx) = watch::channel(false);
        let stopping = Arc::new(AtomicBool::new(false));
        let limits = config.limits;
        let http_listener = runtime.block_on(bind(&config.http, "the HTTP server"))?;
        let grpc_listener = match &config.grpc {
            Some(addr) => Some(runtime.block_on(bind(addr, "the gRPC server"))?),
            None => None,
        };
        let http_addr = http_listener
            .local_addr()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let grpc_addr = grpc_listener.as_ref().and_then(|l| l.local_addr().ok());
        // one byte budget for HTTP bodies and gRPC requests
        let budget = Arc::new(tokio::sync::Semaphore::new(
            (limits.inflight_bytes / 1024).clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        let state = http::AppState {
            repo: repo.clone(),
            metrics: metrics.clone(),
            limits,
            vision: Arc::new(config.vision),
            stopping: stopping.clone(),
            body_budget: budget.clone(),
        };
        let mut tasks = vec![runtime.spawn(http::serve(
            http_listener,
            http::router(state),
            limits,
            metrics.clone(),
            stop_rx.clone(),
        ))];
        if let Some(listener) = grpc_listener {
            let service = grpc::Service {
                repo: repo.clone(),
                metrics: metrics.clone(),
                stopping: stopping.clone(),
            };
            let stop_rx = stop_rx.clone();
            tasks.push(runtime.spawn(async move {
                if let Err(e) = grpc::serve(listener, service, limits, budget, stop_rx).await {
                    tracing::error!(error = %e, "the gRPC server stopped");
                }
            }));
        }
        tracing::info!(
            http = %http_addr,
            grpc = ?grpc_addr,
            models = ?repo.all().iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            "serving"
        );
        Ok(Server {
            runtime: Some(runtime),
            repo,
            metrics,
            http_addr,
            grpc_addr,
            stop,
            stopping,
            tasks,
            grace: limits.grace,
        })
    }

    /// The HTTP address bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The gRPC address bound.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The models served.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Read the model directory again (what `SIGHUP` does).
    pub fn reload(&self) -> ReloadReport {
        let report = self.repo.reload();
        tracing::info!(
            added = ?report.added,
            reloaded = ?report.reloaded,
            removed = ?report.removed,
            failed = ?report.failed,
            "models reloaded"
        );
        report
    }

    /// Stop gracefully: readiness fails, no new connection is taken, the requests under way
    /// are answered (at most the grace period), then the models' instances end. Whether
    /// everything ended within the grace period.
    pub fn shutdown(mut self) -> bool {
        self.stop_now()
    }

    fn stop_now(&mut self) -> bool {
        let Some(runtime) = self.runtime.take() else {
            return true;
        };
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.stop.send(true);
        let deadline = Instant::now() + self.grace + Duration::from_secs(1);
        let tasks = std::mem::take(&mut self.tasks);
        let servers_done = runtime.block_on(async {
            tokio::time::timeout_at(deadline.into(), async {
                for t in tasks {
                    let _ = t.await;
                }
            })
            .await
            .is_ok()
        });
        self.repo.close();
        let models_done = self.repo.join(deadline);
        runtime.shutdown_timeout(Duration::from_secs(1));
        tracing::info!(clean = servers_done && models_done, "stopped");
        servers_done && models_done
    }

    /// Serve until `SIGTERM` or `SIGINT` (then [`Server::shutdown`]), reloading the model
    /// directory on `SIGHUP`.
    pub fn run_until_signal(mut self) -> Result<bool> {
        let Some(runtime) = self.runtime.as_ref() else {
            return Ok(true);
        };
        let repo = self.repo.clone();
        runtime.block_on(wait_for_signals(repo))?;
        Ok(self.stop_now())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[cfg(unix)]
async fn wait_for_signals(repo: Arc<Repository>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind| {
        signal(kind).map_err(|e| Error::Internal(format!("cannot watch signals: {e}")))
    };
    let mut term = listen(SignalKind::terminate())?;
    let mut int = listen(SignalKind::interrupt())?;
    let mut hup = listen(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let repo = repo.clone();
                match tokio::task::spawn_blocking(move || repo.reload()).await {
                    Ok(report) => tracing::info!(
                        added = ?report.added,
                        reloaded = ?report.reloaded,
                        removed = ?report.removed,
                        failed = ?report.failed,
                        "SIGHUP: models reloaded"
                    ),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: the reload failed"),
                }
            }
        }
    }
    tracing::info!("shutting down: finishing the requests under way");
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signals(_repo: Arc<Repository>) -> Result<()> {
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Error::Internal(format!("cannot watch signals: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_is_loopback() {
        assert_eq!(resolve("8000").unwrap(), "127.0.0.1:8000".parse().unwrap());
        assert_eq!(resolve("0.0.0.0:9").unwrap(), "0.0.0.0:9".parse().unwrap());
        assert!(resolve("no-such-host.invalid:1").is_err());
        assert!(resolve("").is_err());
    }
}
