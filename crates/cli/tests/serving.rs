//! `tensorcv serve` as a command: it starts, says where it listens, answers, checks its flags,
//! and stops cleanly on SIGTERM (the protocols themselves: crates/serve's tests and
//! tools/serve_clients.py). Run against static builds too (`TENSORCV_TEST_BIN`); a WASM build
//! has no `serve` and says so.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// One HTTP/1.1 request on its own connection; the status and the body.
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[test]
fn serve_answers_and_stops_on_sigterm() {
    if wasm() {
        let o = tensorcv(&["serve", "-m", "face"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("serve"));
        return;
    }
    let mut child = command()
        .args([
            "serve",
            "-m",
            "shapes",
            "-m",
            "det=face",
            "--http",
            "127.0.0.1:0",
            "--grpc",
            "127.0.0.1:0",
            "--instances",
            "1",
        ])
        .current_dir(root())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let started = Instant::now();
    let mut log = String::new();
    let addr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the server ended: {log}"
        );
        log.push_str(&line);
        if let Some(rest) = line.split("on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(300), "{log}");
    };
    assert!(log.contains("and grpc://"), "{log}");
    // keep reading the log so the server never blocks on a full pipe
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    assert_eq!(http(&addr, "GET", "/v2/health/ready", b"").0, 200);
    let (status, body) = http(&addr, "GET", "/v2/models/det", b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""shape":[1,128,128,3]"#), "{body}");
    let png = std::fs::read(root().join("tests/data/models/shapes_3_square.png")).unwrap();
    let (status, body) = http(&addr, "POST", "/v1/models/shapes:analyze", &png);
    assert_eq!(status, 200, "{body}");
    let record: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(record["classes"][0]["label"], "square", "{record}");
    let infer = serde_json::json!({
        "inputs": [{"name": "image", "shape": [2, 64, 64, 3], "datatype": "FP32",
                    "data": vec![0.25f32; 2 * 64 * 64 * 3]}],
    });
    let (status, body) = http(
        &addr,
        "POST",
        "/v2/models/shapes/infer",
        infer.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""shape":[2,3]"#), "{body}");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let log = rest.join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("stopped clean=true"), "{log}");
}

#[test]
fn serve_checks_its_flags_and_models() {
    if wasm() {
        return;
    }
    let o = tensorcv(&[
        "serve",
        "-m",
        "face",
        "-m",
        "shapes",
        "--max-batch",
        "2",
        "--check",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("face: detection input [1, 128, 128, 3] FP32"),
        "{out}"
    );
    assert!(
        out.contains("shapes: classification image [-1, 64, 64, 3] FP32"),
        "{out}"
    );
    assert!(out.contains("batches up to 2"), "{out}");
    for (args, code, words) in [
        (vec!["--max-batch", "0"], 2, "--max-batch"),
        (vec!["--batch-delay-ms", "NaN"], 2, "--batch-delay-ms"),
        (vec!["--timeout", "0"], 2, "--timeout"),
        (vec!["--log-format", "xml"], 2, "--log-format"),
        (vec!["-m", "no/such.onnx"], 1, "no/such.onnx"),
        (vec!["--models", "/no/such/dir"], 1, "/no/such/dir"),
        (vec!["--http", "300.1.1.1:80"], 1, "300.1.1.1"),
        (vec!["-m", "face", "-m", "face"], 1, "taken"),
    ] {
        let mut all = vec!["serve", "--check"];
        all.extend(&args);
        if !args.contains(&"-m") && !args.contains(&"--models") {
            all.extend(["-m", "face"]);
        }
        let o = tensorcv(&all);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {e}");
        assert!(e.contains(words), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}
