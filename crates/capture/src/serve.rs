//! A live preview over HTTP: `GET /` is a small page showing the annotated stream with the
//! latest results and the frame rate; `GET /stream` is the MJPEG stream itself
//! (`multipart/x-mixed-replace`, what browsers, VLC and [`crate::http`] read); `GET /frame.jpg`
//! the newest frame; `GET /results` the newest results as JSON. Each client gets the newest
//! frame whenever it is ready for one, so a slow client never holds the run back.

use crate::error::{Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tensorcv_imgproc::io::{imencode, EncodeFormat};
use tensorcv_imgproc::ImageView;

/// Most clients served at once; more get `503`.
const MAX_CLIENTS: usize = 16;

#[derive(Default)]
struct State {
    jpeg: Option<Arc<Vec<u8>>>,
    results: String,
    seq: u64,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    fresh: Condvar,
    clients: AtomicUsize,
    stop: AtomicBool,
}

/// The preview server; it runs on its own threads until [`PreviewServer::close`] or drop.
pub struct PreviewServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<std::thread::JoinHandle<()>>,
}

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

impl PreviewServer {
    /// Listen on `addr` (`127.0.0.1:8080`; a bare port means loopback).
    pub fn bind(addr: &str) -> Result<Self> {
        let addr = if addr.parse::<u16>().is_ok() {
            format!("127.0.0.1:{addr}")
        } else {
            addr.to_string()
        };
        let listener = TcpListener::bind(&addr).map_err(|e| Error::Sink {
            path: format!("http://{addr}"),
            message: format!("cannot listen: {e}"),
        })?;
        let local = listener.local_addr().map_err(|e| Error::Sink {
            path: addr.clone(),
            message: e.to_string(),
        })?;
        listener.set_nonblocking(true).ok();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                results: "null".into(),
                ..State::default()
            }),
            fresh: Condvar::new(),
            clients: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            while !s.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if s.clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
                            let mut stream = stream;
                            let _ = stream.write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                            );
                            continue;
                        }
                        s.clients.fetch_add(1, Ordering::Relaxed);
                        let s2 = s.clone();
                        std::thread::spawn(move || {
                            let _ = serve_client(stream, &s2);
                            s2.clients.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(PreviewServer {
            addr: local,
            shared,
            accept: Some(accept),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether any client is connected (frames are only encoded to JPEG then).
    pub fn watched(&self) -> bool {
        self.shared.clients.load(Ordering::Relaxed) > 0
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
            Some(Arc::new(imencode(frame, EncodeFormat::Jpeg(80))?))
        } else {
            None
        };
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        if jpeg.is_some() {
            st.jpeg = jpeg;
        }
        st.seq += 1;
        st.results = format!(
            "{{\"frame\":{index},\"fps\":{:.3},\"results\":{results}}}",
            if fps.is_finite() { fps } else { 0.0 }
        );
        self.shared.fresh.notify_all();
        Ok(())
    }

    /// Stop serving: streams end, the listener closes.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        {
            let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            st.closed = true;
        }
        self.shared.fresh.notify_all();
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for PreviewServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)
}

fn serve_client(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.by_ref().take(8192).read_line(&mut request)?;
    // the rest of the request headers
    loop {
        let mut line = String::new();
        if reader.by_ref().take(8192).read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
    }
    let mut stream = stream;
    let path = request.split(' ').nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    match path {
        "/" | "/index.html" => respond(
            &mut stream,
            "200 OK",
            "text/html; charset=utf-8",
            PAGE.as_bytes(),
        ),
        "/results" => {
            let body = shared
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .results
                .clone();
            respond(&mut stream, "200 OK", "application/json", body.as_bytes())
        }
        "/frame.jpg" => {
            let jpeg = wait_frame(shared, 0).map(|(j, _)| j);
            match jpeg {
                Some(j) => respond(&mut stream, "200 OK", "image/jpeg", &j),
                None => respond(
                    &mut stream,
                    "503 Service Unavailable",
                    "text/plain",
                    b"no frame yet",
                ),
            }
        }
        "/stream" => stream_to(&mut stream, shared),
        _ => respond(&mut stream, "404 Not Found", "text/plain", b"not found"),
    }
}

/// The newest frame newer than `seen`, waiting up to 5 s; `None` when the server closes or no
/// frame comes.
fn wait_frame(shared: &Shared, seen: u64) -> Option<(Arc<Vec<u8>>, u64)> {
    let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(j) = &st.jpeg {
            if st.seq > seen {
                return Some((j.clone(), st.seq));
            }
        }
        if st.closed {
            return None;
        }
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        st = shared
            .fresh
            .wait_timeout(st, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn stream_to(stream: &mut TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\
          Cache-Control: no-store\r\nConnection: close\r\n\r\n",
    )?;
    let mut seen = 0;
    loop {
        let Some((jpeg, seq)) = wait_frame(shared, seen) else {
            if shared.stop.load(Ordering::Relaxed) {
                let _ = stream.write_all(b"--frame--\r\n");
                return Ok(());
            }
            continue;
        };
        seen = seq;
        write!(
            stream,
            "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        )?;
        stream.write_all(&jpeg)?;
        stream.write_all(b"\r\n")?;
    }
}
