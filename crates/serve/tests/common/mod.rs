//! What the server tests share: servers on ephemeral loopback ports, an HTTP client (hyper),
//! the references (`tests/data`), multipart bodies.
#![allow(dead_code)]

#[path = "../../../imgproc/tests/common/mod.rs"]
pub mod imgproc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tensorcv_serve::repository::{ModelSpec, RepositoryOptions};
use tensorcv_serve::settings::ServingSettings;
use tensorcv_serve::{Server, ServerConfig};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `.npy` reference of `tests/data/models` as its shape and values.
pub fn npy(name: &str) -> (Vec<usize>, Vec<f32>) {
    let n = imgproc::read_npy(&root().join("tests/data/models").join(name));
    let v = n.values_f32();
    (n.shape, v)
}

/// The zoo's rule for float models, as a multiple of it (1e-4 absolute within [-1, 1],
/// relative beyond).
pub fn float_rule(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / (1e-4 * b.abs().max(1.0)))
        .fold(0f32, f32::max)
}

/// Serving settings for tests: 2 instances, batches of up to 4.
pub fn settings() -> ServingSettings {
    ServingSettings {
        instances: 2,
        threads: 1,
        max_batch_size: 4,
        max_queue_delay: Duration::from_millis(2),
        max_queue_size: 256,
        timeout: Duration::from_secs(60),
    }
}

/// A server of `models` (built-in names or paths) on ephemeral ports, HTTP and gRPC.
pub fn start(models: &[&str], defaults: ServingSettings) -> Server {
    start_with(models, defaults, |_| {})
}

/// [`start`], with the configuration changed by `change`.
pub fn start_with(
    models: &[&str],
    defaults: ServingSettings,
    change: impl FnOnce(&mut ServerConfig),
) -> Server {
    let mut config = ServerConfig {
        repository: RepositoryOptions {
            models: models.iter().map(|m| ModelSpec::parse(m)).collect(),
            defaults,
            ..Default::default()
        },
        http: "127.0.0.1:0".into(),
        grpc: Some("127.0.0.1:0".into()),
        io_threads: 2,
        ..Default::default()
    };
    change(&mut config);
    Server::start(config).expect("the server starts")
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// A runtime for the client side.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One request on its own connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// [`send`] from synchronous code.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    runtime().block_on(send(addr, method, path, headers, body))
}

pub fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, &[], Vec::new())
}

pub fn post_json(addr: SocketAddr, path: &str, value: &serde_json::Value) -> Answer {
    request(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        value.to_string().into_bytes(),
    )
}

/// A `multipart/form-data` body: files `(field, file name, bytes)` and text fields; its
/// Content-Type.
pub fn multipart(files: &[(&str, &str, &[u8])], fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "tensorcv-test-boundary-7MA4YWxk";
    let mut body = Vec::new();
    for (name, file, bytes) in files {
        body.extend(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).as_bytes());
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    for (name, value) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Little-endian bytes of `f32`s.
pub fn le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `f32`s of little-endian bytes.
pub fn from_le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A file of the repository.
pub fn file(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap()
}
