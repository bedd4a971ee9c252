//! A live preview over HTTP: `GET /` is a small page showing the annotated stream with the
//! latest results and the frame rate; `GET /stream` is the MJPEG stream itself
//! (`multipart/x-mixed-replace`, what browsers, VLC and [`crate::http`] read); `GET /frame.jpg`
//! the newest frame; `GET /results` the newest results as JSON. Each client gets the newest
//! frame whenever it is ready for one, so a slow client never holds the run back.
//!
//! It is hyper's HTTP/1.1 server on a tokio runtime of its own thread, with limits a hostile
//! or broken client cannot get around ([`Limits`]): at most [`Limits::connections`]
//! connections (more get `503` at once) of which [`Limits::streams`] may be streams, a request
//! head of at most [`Limits::head_bytes`] within [`Limits::head_timeout`] (a client trickling
//! its headers is cut off), and writes that stall for [`Limits::write_timeout`] close the
//! connection. Connections serve one request (no keep-alive), so nothing idles. Only `GET`
//! and `HEAD` of the routes above are answered (`405` for other methods, `404` for other
//! paths). Behind the `net` feature.

use crate::error::{Error, Result};
use std::net::SocketAddr;
use tensorcv_imgproc::ImageView;

/// The limits of the preview server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// connections served at once; more are answered `503` and closed
    pub connections: usize,
    /// `/stream` clients at once; more are answered `503`
    pub streams: usize,
    /// the largest request head (request line and headers), bytes (at least 8192)
    pub head_bytes: usize,
    /// the most header lines of a request
    pub headers: usize,
    /// the time a client has to send its request head
    pub head_timeout: std::time::Duration,
    /// a write that makes no progress for this long closes the connection
    pub write_timeout: std::time::Duration,
}

impl Default for Limits {
    /// 1024 connections, 64 streams, 16 kB and 64 header lines in 5 s, 10 s write stalls.
    fn default() -> Self {
        Limits {
            connections: 1024,
            streams: 64,
            head_bytes: 16 << 10,
            headers: 64,
            head_timeout: std::time::Duration::from_secs(5),
            write_timeout: std::time::Duration::from_secs(10),
        }
    }
}

#[cfg(feature = "net")]
pub use net::PreviewServer;

/// Without the `net` feature there is no preview server: binding says so.
#[cfg(not(feature = "net"))]
pub struct PreviewServer(std::convert::Infallible);

#[cfg(not(feature = "net"))]
impl PreviewServer {
    /// Always an error: this build has no network support.
    pub fn bind(addr: &str) -> Result<Self> {
        Self::bind_with(addr, Limits::default())
    }
    /// Always an error: this build has no network support.
    pub fn bind_with(addr: &str, _limits: Limits) -> Result<Self> {
        Err(Error::Sink {
            path: format!("http://{addr}"),
            message: "this build has no network support (tensorcv-capture's `net` feature)".into(),
        })
    }
    /// Never called: no value of this type exists.
    pub fn local_addr(&self) -> SocketAddr {
        match self.0 {}
    }
    /// Never called: no value of this type exists.
    pub fn watched(&self) -> bool {
        match self.0 {}
    }
    /// Never called: no value of this type exists.
    pub fn publish(&self, _: &ImageView<'_>, _: u64, _: &str, _: f64) -> Result<()> {
        match self.0 {}
    }
    /// Never called: no value of this type exists.
    pub fn close(self) {
        match self.0 {}
    }
}

/// The page at `/`.
#[cfg(feature = "net")]
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>tensorcv preview</title>
<style>body{font-family:sans-serif;background:#111;color:#eee;margin:1em}
img{max-width:100%;border:1px solid #444}pre{background:#222;padding:.5em;white-space:pre-wrap}</style>
</head><body>
<h1>tensorcv</h1>
<p id="status">waiting for frames…</p>
<img id="stream" src="/stream" alt="annotated stream">
<pre id="results"></pre>
<script>
async function poll() {
  try {
    const r = await fetch('/results', {cache: 'no-store'});
    const j = await r.json();
    document.getElementById('status').textContent =
      'frame ' + j.frame + ' · ' + j.fps.toFixed(1) + ' fps';
    document.getElementById('results').textContent = JSON.stringify(j.results, null, 1);
  } catch (e) {
    document.getElementById('status').textContent = 'stream ended';
  }
}
setInterval(poll, 500); poll();
</script></body></html>
"#;

#[cfg(feature = "net")]
mod net {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::body::{Frame, Incoming};
    use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
    use hyper::{Method, Request, Response, StatusCode};
    use hyper_util::rt::{TokioIo, TokioTimer};
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;
    use tensorcv_imgproc::io::{imencode, EncodeFormat};
    use tokio::sync::{mpsc, watch, Semaphore};

    /// The newest frame and results.
    #[derive(Clone, Default)]
    struct Snapshot {
        jpeg: Option<Bytes>,
        results: Bytes,
        seq: u64,
        closed: bool,
    }

    struct Shared {
        latest: watch::Sender<Snapshot>,
        /// clients that want frames (streams, and `/frame.jpg` waiting): frames are only
        /// encoded to JPEG then
        viewers: AtomicUsize,
        streams: Arc<Semaphore>,
        limits: Limits,
    }

    /// The preview server; it runs on its own thread until [`PreviewServer::close`] or drop.
    pub struct PreviewServer {
        addr: SocketAddr,
        shared: Arc<Shared>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    /// The body of every answer.
    type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

    fn full(bytes: impl Into<Bytes>) -> Body {
        Full::new(bytes.into()).boxed()
    }

    fn answer(status: StatusCode, kind: &'static str, body: impl Into<Bytes>) -> Response<Body> {
        let mut r = Response::new(full(body));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
        r.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    impl PreviewServer {
        /// Listen on `addr` (`127.0.0.1:8080`; a bare port means loopback) with the default
        /// [`Limits`].
        pub fn bind(addr: &str) -> Result<Self> {
            Self::bind_with(addr, Limits::default())
        }

        /// [`PreviewServer::bind`] with other limits.
        pub fn bind_with(addr: &str, limits: Limits) -> Result<Self> {
            let addr = if addr.parse::<u16>().is_ok() {
                format!("127.0.0.1:{addr}")
            } else {
                addr.to_string()
            };
            let sink = |message: String| Error::Sink {
                path: format!("http://{addr}"),
                message,
            };
            let listener = std::net::TcpListener::bind(&addr)
                .map_err(|e| sink(format!("cannot listen: {e}")))?;
            let local = listener.local_addr().map_err(|e| sink(e.to_string()))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| sink(e.to_string()))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| sink(format!("cannot start the server's runtime: {e}")))?;
            let (latest, _) = watch::channel(Snapshot {
                results: Bytes::from_static(b"null"),
                ..Snapshot::default()
            });
            let shared = Arc::new(Shared {
                latest,
                viewers: AtomicUsize::new(0),
                streams: Arc::new(Semaphore::new(limits.streams.max(1))),
                limits,
            });
            let (stop, stopped) = tokio::sync::oneshot::channel();
            let s = shared.clone();
            let thread = std::thread::Builder::new()
                .name("tensorcv-preview".into())
                .spawn(move || {
                    rt.block_on(async move {
                        if let Ok(l) = tokio::net::TcpListener::from_std(listener) {
                            accept(l, s, stopped).await
                        }
                    })
                })
                .map_err(|e| sink(format!("cannot start the server's thread: {e}")))?;
            Ok(PreviewServer {
                addr: local,
                shared,
                stop: Some(stop),
                thread: Some(thread),
            })
        }

        /// Where it listens.
        pub fn local_addr(&self) -> SocketAddr {
            self.addr
        }

        /// Whether any client wants frames (frames are only encoded to JPEG then).
        pub fn watched(&self) -> bool {
            self.shared.viewers.load(Ordering::Relaxed) > 0
        }

        /// Show a new frame with its results (a JSON value as text) and the frame rate.
        pub fn publish(
            &self,
            frame: &ImageView<'_>,
            index: u64,
            results: &str,
            fps: f64,
        ) -> Result<()> {
            let jpeg = if self.watched() {
                Some(Bytes::from(imencode(frame, EncodeFormat::Jpeg(80))?))
            } else {
                None
            };
            let results = Bytes::from(format!(
                "{{\"frame\":{index},\"fps\":{:.3},\"results\":{results}}}",
                if fps.is_finite() { fps } else { 0.0 }
            ));
            self.shared.latest.send_modify(|s| {
                if jpeg.is_some() {
                    s.jpeg = jpeg;
                }
                s.results = results;
                s.seq += 1;
            });
            Ok(())
        }

        /// Stop serving: streams end with their closing boundary, the listener closes.
        pub fn close(mut self) {
            self.shutdown();
        }

        fn shutdown(&mut self) {
            self.shared.latest.send_modify(|s| s.closed = true);
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    impl Drop for PreviewServer {
        fn drop(&mut self) {
            self.shutdown();
        }
    }

    /// Accept connections until stopped; then give open streams a moment to end.
    async fn accept(
        listener: tokio::net::TcpListener,
        shared: Arc<Shared>,
        mut stopped: tokio::sync::oneshot::Receiver<()>,
    ) {
        let limits = shared.limits;
        let connections = Arc::new(Semaphore::new(limits.connections.max(1)));
        loop {
            let tcp = tokio::select! {
                r = listener.accept() => match r {
                    Ok((tcp, _)) => tcp,
                    // out of file descriptors, a connection reset before accept: go on
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
                _ = &mut stopped => break,
            };
            let _ = tcp.set_nodelay(true);
            match connections.clone().try_acquire_owned() {
                Ok(permit) => {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        connection(tcp, shared).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    tokio::spawn(busy(tcp));
                }
            }
        }
        drop(listener);
        // streams see `closed` and send their closing boundary; wait for them, briefly
        let all = limits.connections.max(1);
        for _ in 0..100 {
            if connections.available_permits() == all {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Too many connections: a `503` without reading the request, then close.
    async fn busy(mut tcp: tokio::net::TcpStream) {
        use tokio::io::AsyncWriteExt;
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            tcp.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ),
        )
        .await;
    }

    /// One connection: one request, within the limits.
    async fn connection(tcp: tokio::net::TcpStream, shared: Arc<Shared>) {
        let limits = shared.limits;
        let mut io = tokio_io_timeout::TimeoutStream::new(tcp);
        io.set_write_timeout(Some(limits.write_timeout));
        let io = TokioIo::new(Box::pin(io));
        let service = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(route(req, &shared).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.head_timeout)
            .max_buf_size(limits.head_bytes.max(8192))
            .max_headers(limits.headers.max(1))
            .keep_alive(false)
            .serve_connection(io, service)
            .await;
    }

    async fn route(req: Request<Incoming>, shared: &Arc<Shared>) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = answer(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "only GET and HEAD",
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let head = req.method() == Method::HEAD;
        match req.uri().path() {
            "/" | "/index.html" => answer(StatusCode::OK, "text/html; charset=utf-8", PAGE),
            "/results" => {
                let results = shared.latest.borrow().results.clone();
                answer(StatusCode::OK, "application/json", results)
            }
            "/frame.jpg" => match newest_frame(shared).await {
                Some(jpeg) => answer(StatusCode::OK, "image/jpeg", jpeg),
                None => answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "no frame yet",
                ),
            },
            "/stream" if head => answer(
                StatusCode::OK,
                "multipart/x-mixed-replace; boundary=frame",
                Bytes::new(),
            ),
            "/stream" => match shared.streams.clone().try_acquire_owned() {
                Ok(permit) => {
                    let mut r = Response::new(stream(shared, permit));
                    r.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("multipart/x-mixed-replace; boundary=frame"),
                    );
                    r.headers_mut()
                        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    r
                }
                Err(_) => answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "too many streams",
                ),
            },
            _ => answer(StatusCode::NOT_FOUND, "text/plain", "not found"),
        }
    }

    /// Counts a client that wants frames while it lives.
    struct Viewer(Arc<Shared>);

    impl Viewer {
        fn new(shared: &Arc<Shared>) -> Self {
            shared.viewers.fetch_add(1, Ordering::Relaxed);
            Viewer(shared.clone())
        }
    }

    impl Drop for Viewer {
        fn drop(&mut self) {
            self.0.viewers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The newest frame, waiting up to 5 s for the first one.
    async fn newest_frame(shared: &Arc<Shared>) -> Option<Bytes> {
        let _viewer = Viewer::new(shared);
        let mut rx = shared.latest.subscribe();
        let wait = async {
            loop {
                {
                    let s = rx.borrow_and_update();
                    if let Some(j) = &s.jpeg {
                        return Some(j.clone());
                    }
                    if s.closed {
                        return None;
                    }
                }
                rx.changed().await.ok()?;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .ok()
            .flatten()
    }

    /// The MJPEG stream of one client: a feeder task hands it the newest frame whenever it
    /// has taken the previous one (a queue of one), and the closing boundary at the end.
    fn stream(shared: &Arc<Shared>, permit: tokio::sync::OwnedSemaphorePermit) -> Body {
        let (tx, rx) = mpsc::channel::<Bytes>(1);
        let viewer = Viewer::new(shared);
        let mut latest = shared.latest.subscribe();
        tokio::spawn(async move {
            let _hold = (viewer, permit);
            let mut seen = 0;
            loop {
                let (jpeg, closed) = {
                    let s = latest.borrow_and_update();
                    let fresh = s.jpeg.clone().filter(|_| s.seq > seen);
                    seen = s.seq;
                    (fresh, s.closed)
                };
                if closed {
                    let _ = tx.send(Bytes::from_static(b"--frame--\r\n")).await;
                    return;
                }
                if let Some(jpeg) = jpeg {
                    let mut part = format!(
                        "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                        jpeg.len()
                    )
                    .into_bytes();
                    part.extend_from_slice(&jpeg);
                    part.extend_from_slice(b"\r\n");
                    if tx.send(Bytes::from(part)).await.is_err() {
                        return; // the client is gone
                    }
                }
                tokio::select! {
                    r = latest.changed() => if r.is_err() { return },
                    _ = tx.closed() => return,
                }
            }
        });
        Parts(rx).boxed()
    }

    /// A body made of the parts a feeder sends.
    struct Parts(mpsc::Receiver<Bytes>);

    impl hyper::body::Body for Parts {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
            self.0.poll_recv(cx).map(|p| p.map(|b| Ok(Frame::data(b))))
        }
    }
}
