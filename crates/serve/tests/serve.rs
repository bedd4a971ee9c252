//! `tensorcv serve` against real clients of each protocol (hyper for HTTP, tonic for gRPC),
//! on the zoo's models and references: the outputs equal onnxruntime's (`tests/data/models`),
//! the image endpoints equal the command's record, bad requests are 4xx and the server stays
//! up, and the operations (batching, back-pressure, deadlines, reload, shutdown, limits) do
//! what they say. tools/serve_clients.py runs Triton's own Python client on top of these.

mod common;

use common::*;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tensorcv_serve::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use tensorcv_serve::grpc::inference::{self as pb};
use tensorcv_serve::Server;

/// The server most tests share: face, selfie, shapes, emotion, shapes_int8, face_mesh.
fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        start(
            &[
                "face",
                "selfie",
                "shapes",
                "emotion",
                "shapes_int8",
                "face_mesh",
            ],
            settings(),
        )
    })
}

/// The references of `model` in the zoo's manifest: (image, input file, output name, output
/// file) for each case with a float input.
fn cases(model: &str) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(root().join("tests/data/models/manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    manifest["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["model"] == model)
        .flat_map(|c| {
            let image = c["image"].as_str().unwrap().to_string();
            let input = c["input"].as_str().unwrap_or_default().to_string();
            c["outputs"]
                .as_object()
                .unwrap()
                .iter()
                .filter_map(|(name, refs)| {
                    Some((
                        image.clone(),
                        input.clone(),
                        name.clone(),
                        refs.get("ort")?.as_str()?.to_string(),
                    ))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn health_and_server_metadata() {
    let s = shared();
    let addr = s.http_addr();
    assert_eq!(get(addr, "/v2/health/live").status, 200);
    assert_eq!(get(addr, "/v2/health/ready").status, 200);
    let meta = get(addr, "/v2").json();
    assert_eq!(meta["name"], "tensorcv");
    assert!(meta["extensions"]
        .as_array()
        .unwrap()
        .contains(&"binary_tensor_data".into()));
    let index = get(addr, "/").json();
    assert_eq!(index["models"].as_array().unwrap().len(), 6);
    let repo = request(addr, "POST", "/v2/repository/index", &[], Vec::new()).json();
    let names: Vec<&str> = repo
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "emotion",
            "face",
            "face_mesh",
            "selfie",
            "shapes",
            "shapes_int8"
        ]
    );
}

#[test]
fn model_metadata_gives_datatypes_and_shapes_with_free_batches() {
    let addr = shared().http_addr();
    // BlazeFace's batch is fixed at 1 by the export
    let face = get(addr, "/v2/models/face").json();
    assert_eq!(face["inputs"][0]["datatype"], "FP32");
    assert_eq!(
        face["inputs"][0]["shape"],
        serde_json::json!([1, 128, 128, 3])
    );
    assert_eq!(face["outputs"][0]["name"], "regressors");
    assert_eq!(face["outputs"][0]["shape"], serde_json::json!([1, 896, 16]));
    assert_eq!(face["versions"], serde_json::json!(["1"]));
    // the SavedModel export leaves the batch free
    let shapes = get(addr, "/v2/models/shapes/versions/1").json();
    assert_eq!(
        shapes["inputs"][0]["shape"],
        serde_json::json!([-1, 64, 64, 3])
    );
    assert_eq!(shapes["outputs"][0]["shape"], serde_json::json!([-1, 3]));
    // an int8 TFLite model takes INT8
    let int8 = get(addr, "/v2/models/shapes_int8").json();
    assert_eq!(int8["inputs"][0]["datatype"], "INT8");
    assert_eq!(int8["platform"], "tensorcv_tflite");
    // Triton's configuration: batch left out of dims, the batcher's settings
    let config = get(addr, "/v2/models/shapes/config").json();
    assert_eq!(config["max_batch_size"], 4);
    assert_eq!(config["input"][0]["dims"], serde_json::json!([64, 64, 3]));
    assert_eq!(
        config["dynamic_batching"]["preferred_batch_size"],
        serde_json::json!([1, 2, 4])
    );
    assert_eq!(config["instance_group"][0]["count"], 2);
    assert_eq!(
        get(addr, "/v2/models/face/config").json()["max_batch_size"],
        0
    );
    assert_eq!(get(addr, "/v2/models/face/ready").status, 200);
    assert_eq!(get(addr, "/v2/models/nope/ready").status, 404);
    let missing = get(addr, "/v2/models/nope");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].as_str().unwrap().contains("face"));
    assert_eq!(get(addr, "/v2/models/face/versions/2").status, 404);
}

/// `POST /v2/models/NAME/infer` with JSON data.
fn infer_json(model: &str, input: &str, shape: &[usize], data: &[f32]) -> serde_json::Value {
    let body = serde_json::json!({
        "id": "r1",
        "inputs": [{"name": input, "shape": shape, "datatype": "FP32", "data": data}],
    });
    let a = post_json(
        shared().http_addr(),
        &format!("/v2/models/{model}/infer"),
        &body,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()
}

#[test]
fn json_inference_equals_onnxruntime() {
    for (model, input) in [("shapes", "image"), ("emotion", "input")] {
        let meta = get(shared().http_addr(), &format!("/v2/models/{model}")).json();
        let input_name = meta["inputs"][0]["name"].as_str().unwrap();
        assert_eq!(input_name, input, "{model}");
        let cases = cases(model);
        assert!(cases.len() >= 3, "{model}: {cases:?}");
        for (image, input_file, output, ort) in cases {
            let (shape, data) = npy(&input_file);
            let (want_shape, want) = npy(&ort);
            let r = infer_json(model, input, &shape, &data);
            assert_eq!(r["id"], "r1");
            assert_eq!(r["model_name"], model);
            let out = r["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == output.as_str())
                .unwrap();
            assert_eq!(out["datatype"], "FP32");
            let got_shape: Vec<usize> = serde_json::from_value(out["shape"].clone()).unwrap();
            assert_eq!(got_shape, want_shape);
            let got: Vec<f32> = serde_json::from_value(out["data"].clone()).unwrap();
            let ratio = float_rule(&got, &want);
            assert!(ratio <= 1.0, "{model} on {image}: {ratio} x the rule");
        }
    }
}

#[test]
fn binary_inference_batches_and_classifies() {
    let addr = shared().http_addr();
    let cases = cases("shapes");
    // four images in one request: a batch of 4, answered row by row
    let inputs: Vec<(Vec<usize>, Vec<f32>)> = cases.iter().take(4).map(|c| npy(&c.1)).collect();
    let mut data = Vec::new();
    for (_, v) in &inputs {
        data.extend_from_slice(v);
    }
    let raw = le(&data);
    let header = serde_json::json!({
        "inputs": [{"name": "image", "shape": [4, 64, 64, 3], "datatype": "FP32",
                    "parameters": {"binary_data_size": raw.len()}}],
        "outputs": [
            {"name": "probabilities", "parameters": {"binary_data": true}},
            {"name": "probabilities", "parameters": {"binary_data": false, "classification": 2}},
        ],
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(&raw);
    let len = header.len().to_string();
    let a = request(
        addr,
        "POST",
        "/v2/models/shapes/infer",
        &[
            ("content-type", "application/octet-stream"),
            ("inference-header-content-length", &len),
        ],
        body,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let json_len: usize = a.headers["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&a.body[..json_len]).unwrap();
    let outs = meta["outputs"].as_array().unwrap();
    assert_eq!(outs[0]["shape"], serde_json::json!([4, 3]));
    assert_eq!(outs[0]["parameters"]["binary_data_size"], 48);
    let got = from_le(&a.body[json_len..json_len + 48]);
    for (i, case) in cases.iter().take(4).enumerate() {
        let (_, want) = npy(&case.3);
        let ratio = float_rule(&got[i * 3..i * 3 + 3], &want);
        assert!(ratio <= 1.0, "row {i}: {ratio}");
    }
    // the classification extension: score:index:label, best first
    assert_eq!(outs[1]["datatype"], "BYTES");
    assert_eq!(outs[1]["shape"], serde_json::json!([4, 2]));
    let classes = outs[1]["data"].as_array().unwrap();
    let labels = ["circle", "square", "triangle"];
    for i in 0..4 {
        let row = &got[i * 3..i * 3 + 3];
        let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        let text = classes[i * 2].as_str().unwrap();
        assert!(
            text.ends_with(&format!(":{best}:{}", labels[best])),
            "{text}"
        );
    }
}

#[test]
fn concurrent_requests_are_batched_and_each_gets_its_rows() {
    let s = start(&["shapes"], {
        let mut st = settings();
        st.instances = 1;
        st.max_queue_delay = Duration::from_millis(50);
        st
    });
    let addr = s.http_addr();
    let cases = cases("shapes");
    let rt = runtime();
    let answers = rt.block_on(async {
        let mut tasks = Vec::new();
        for round in 0..3 {
            for case in &cases {
                let (shape, data) = npy(&case.1);
                let (_, want) = npy(&case.3);
                let body = serde_json::json!({
                    "inputs": [{"name": "image", "shape": shape, "datatype": "FP32", "data": data}],
                })
                .to_string()
                .into_bytes();
                tasks.push(tokio::spawn(async move {
                    let a = send(addr, "POST", "/v2/models/shapes/infer", &[], body).await;
                    (round, a, want)
                }));
            }
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(answers.len(), 3 * cases.len());
    for (round, a, want) in answers {
        assert_eq!(a.status, 200, "{}", a.text());
        let got: Vec<f32> = serde_json::from_value(a.json()["outputs"][0]["data"].clone()).unwrap();
        assert!(float_rule(&got, &want) <= 1.0, "round {round}");
    }
    // the batcher ran several requests at once
    let metrics = get(addr, "/metrics").text();
    let count = metric(&metrics, "tensorcv_batch_size_count{model=\"shapes\"}");
    let sum = metric(&metrics, "tensorcv_batch_size_sum{model=\"shapes\"}");
    assert_eq!(sum, (3 * cases.len()) as f64, "{metrics}");
    assert!(
        count < sum,
        "no batch held more than one request: {count} batches"
    );
}

/// The value of the metric line starting with `key`.
fn metric(text: &str, key: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
}

/// `n` BYTES elements (4-byte little-endian lengths), as Triton's binary data has them.
fn bytes_tensor(items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in items {
        out.extend((i.len() as u32).to_le_bytes());
        out.extend(*i);
    }
    out
}

#[test]
fn an_encoded_image_as_bytes_is_preprocessed_by_the_card() {
    // BlazeFace on astronaut.png through the server's preprocessing equals onnxruntime on
    // OpenCV's tensor
    let png = file("tests/data/imgproc/astronaut.png");
    let raw = bytes_tensor(&[&png]);
    let header = serde_json::json!({
        "inputs": [{"name": "input", "shape": [1], "datatype": "BYTES",
                    "parameters": {"binary_data_size": raw.len()}}],
    })
    .to_string();
    let len = header.len().to_string();
    let mut body = header.into_bytes();
    body.extend(&raw);
    let a = request(
        shared().http_addr(),
        "POST",
        "/v2/models/face/infer",
        &[("inference-header-content-length", &len)],
        body,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let r = a.json();
    for (image, _, output, ort) in cases("face") {
        if !image.ends_with("astronaut.png") {
            continue;
        }
        let out = r["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == output.as_str())
            .unwrap()
            .clone();
        let got: Vec<f32> = serde_json::from_value(out["data"].clone()).unwrap();
        let (_, want) = npy(&ort);
        let ratio = float_rule(&got, &want);
        assert!(ratio <= 1.0, "{output}: {ratio} x the rule");
    }
}

#[test]
fn bad_requests_are_4xx_and_the_server_stays_up() {
    let addr = shared().http_addr();
    let infer = |body: &str| {
        let a = request(addr, "POST", "/v2/models/shapes/infer", &[], body.into());
        (
            a.status,
            a.json()["error"].as_str().unwrap_or_default().to_string(),
        )
    };
    let ok_data = vec![0.5f32; 64 * 64 * 3];
    let cases: Vec<(String, u16, &str)> = vec![
        ("not json".into(), 400, "not an inference request"),
        (r#"{"inputs": []}"#.into(), 400, "takes one input"),
        (
            serde_json::json!({"inputs": [{"name": "image", "shape": [1, 64, 64], "datatype": "FP32", "data": [0.0]}]}).to_string(),
            400,
            "shape",
        ),
        (
            serde_json::json!({"inputs": [{"name": "image", "shape": [1, 64, 64, 3], "datatype": "INT32", "data": ok_data}]}).to_string(),
            400,
            "is FP32, not INT32",
        ),
        (
            serde_json::json!({"inputs": [{"name": "pixels", "shape": [1, 64, 64, 3], "datatype": "FP32", "data": ok_data}]}).to_string(),
            400,
            "no input 'pixels'",
        ),
        (
            serde_json::json!({"inputs": [{"name": "image", "shape": [1, 64, 64, 3], "datatype": "FP32", "data": [1.0, 2.0]}]}).to_string(),
            400,
            "elements",
        ),
        (
            serde_json::json!({"inputs": [{"name": "image", "shape": [5, 64, 64, 3], "datatype": "FP32", "data": [0.0]}]}).to_string(),
            400,
            "max_batch_size",
        ),
        (
            serde_json::json!({"inputs": [{"name": "image", "shape": [1, 64, 64, 3], "datatype": "FP32", "data": ok_data}],
                               "outputs": [{"name": "logits"}]}).to_string(),
            400,
            "no output 'logits'",
        ),
        (
            serde_json::json!({"inputs": [{"name": "image", "shape": [1, 64, 64, 3], "datatype": "FP32", "data": ok_data}],
                               "parameters": {"timeout": -5}}).to_string(),
            400,
            "timeout",
        ),
    ];
    for (body, status, words) in &cases {
        let (got, message) = infer(body);
        assert_eq!(got, *status, "{body:.80}: {message}");
        assert!(message.contains(words), "{message} lacks '{words}'");
    }
    // a binary body cut short, and a header longer than the body
    let header = r#"{"inputs": [{"name": "image", "shape": [1, 64, 64, 3], "datatype": "FP32", "parameters": {"binary_data_size": 49152}}]}"#;
    let mut body = header.as_bytes().to_vec();
    body.extend(vec![0u8; 1000]);
    let len = header.len().to_string();
    let a = request(
        addr,
        "POST",
        "/v2/models/shapes/infer",
        &[("inference-header-content-length", &len)],
        body.clone(),
    );
    assert_eq!(a.status, 400, "{}", a.text());
    let a = request(
        addr,
        "POST",
        "/v2/models/shapes/infer",
        &[("inference-header-content-length", "999999")],
        body,
    );
    assert_eq!(a.status, 400, "{}", a.text());
    // a body that claims more than it sends, closed early: the connection ends, nothing hangs
    let rt = runtime();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /v2/models/shapes/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n{\"inputs\"")
            .await
            .unwrap();
        s.shutdown().await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    });
    // an unknown model and an unknown endpoint
    assert_eq!(infer_unknown(addr), 404);
    assert_eq!(get(addr, "/v3/whatever").status, 404);
    assert_eq!(
        request(addr, "DELETE", "/v2/models/face", &[], Vec::new()).status,
        405
    );
    // still serving
    assert_eq!(get(addr, "/v2/health/ready").status, 200);
    let r = infer_json("shapes", "image", &[1, 64, 64, 3], &ok_data);
    assert_eq!(r["outputs"][0]["shape"], serde_json::json!([1, 3]));
}

fn infer_unknown(addr: std::net::SocketAddr) -> u16 {
    post_json(
        addr,
        "/v2/models/nope/infer",
        &serde_json::json!({"inputs": []}),
    )
    .status
}

#[test]
fn a_huge_body_is_refused_before_it_is_read() {
    let s = start_with(&["shapes"], settings(), |c| c.limits.max_body = 1 << 20);
    let addr = s.http_addr();
    // refused from its Content-Length: the answer comes before the body is sent
    let rt = runtime();
    let head = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            b"POST /v2/models/shapes/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 3145728\r\n\r\n",
        )
        .await
        .unwrap();
        let mut out = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut out))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&out[..n]).to_string()
    });
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("bytes allowed"), "{head}");
    // without a Content-Length (chunked), cut at the limit
    let status = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /v2/models/shapes/infer HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        let chunk = vec![b' '; 256 << 10];
        for _ in 0..8 {
            if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.is_err()
                || s.write_all(&chunk).await.is_err()
                || s.write_all(b"\r\n").await.is_err()
            {
                break;
            }
        }
        let mut out = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut out))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&out[..n]).to_string()
    });
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert_eq!(get(addr, "/v2/health/live").status, 200);
}

#[test]
fn request_bytes_in_flight_are_bounded() {
    // 1.5 MiB may be held at once: one body of 1 MiB being read leaves no room for another
    let s = start_with(&["shapes"], settings(), |c| {
        c.limits.max_body = 1 << 20;
        c.limits.inflight_bytes = 3 << 19;
    });
    let addr = s.http_addr();
    let rt = runtime();
    rt.block_on(async {
        use tokio::io::AsyncWriteExt;
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(
            b"POST /v2/models/shapes/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n{",
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let a = send(
            addr,
            "POST",
            "/v2/models/shapes/infer",
            &[],
            vec![b' '; 900_000],
        )
        .await;
        assert_eq!(a.status, 503, "{}", a.text());
        assert!(a.json()["error"]
            .as_str()
            .unwrap()
            .contains("--max-inflight-mib"));
        drop(slow);
        tokio::time::sleep(Duration::from_millis(200)).await;
        // the bytes held by the connection that went away are free again
        let a = send(
            addr,
            "POST",
            "/v2/models/shapes/infer",
            &[],
            vec![b' '; 900_000],
        )
        .await;
        assert_eq!(a.status, 400, "{}", a.text());
    });
    let metrics = get(addr, "/metrics").text();
    assert!(metrics.contains("status=\"busy\""), "{metrics}");
    // a made-up model name does not become a metric label
    assert_eq!(infer_unknown(addr), 404);
    assert!(!get(addr, "/metrics").text().contains("model=\"nope\""));
}

#[test]
fn tf_serving_rest_as_its_clients_send_it() {
    let addr = shared().http_addr();
    let status = get(addr, "/v1/models/shapes").json();
    assert_eq!(status["model_version_status"][0]["state"], "AVAILABLE");
    let meta = get(addr, "/v1/models/shapes/metadata").json();
    let sig = &meta["metadata"]["signature_def"]["signature_def"]["serving_default"];
    assert_eq!(sig["inputs"]["image"]["dtype"], "DT_FLOAT");
    assert_eq!(
        sig["inputs"]["image"]["tensor_shape"]["dim"][0]["size"],
        "-1"
    );
    let cases = cases("shapes");
    // row format: each instance a [64, 64, 3] image, nested
    let nest = |v: &[f32]| -> serde_json::Value {
        let rows: Vec<serde_json::Value> = v
            .chunks(64 * 3)
            .map(|row| {
                serde_json::Value::Array(row.chunks(3).map(|px| serde_json::json!(px)).collect())
            })
            .collect();
        serde_json::Value::Array(rows)
    };
    let instances: Vec<serde_json::Value> = cases.iter().map(|c| nest(&npy(&c.1).1)).collect();
    let a = post_json(
        addr,
        "/v1/models/shapes:predict",
        &serde_json::json!({"signature_name": "serving_default", "instances": instances}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let predictions = a.json()["predictions"].as_array().unwrap().clone();
    assert_eq!(predictions.len(), cases.len());
    for (p, case) in predictions.iter().zip(&cases) {
        let got: Vec<f32> = serde_json::from_value(p.clone()).unwrap();
        assert!(float_rule(&got, &npy(&case.3).1) <= 1.0);
    }
    // named instances, and the columnar form with a version
    let named: Vec<serde_json::Value> = cases
        .iter()
        .take(2)
        .map(|c| serde_json::json!({"image": nest(&npy(&c.1).1)}))
        .collect();
    let a = post_json(
        addr,
        "/v1/models/shapes:predict",
        &serde_json::json!({"instances": named}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let columnar: Vec<serde_json::Value> =
        cases.iter().take(2).map(|c| nest(&npy(&c.1).1)).collect();
    let a = post_json(
        addr,
        "/v1/models/shapes/versions/1:predict",
        &serde_json::json!({"inputs": columnar}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let outputs: Vec<Vec<f32>> = serde_json::from_value(a.json()["outputs"].clone()).unwrap();
    assert_eq!(outputs.len(), 2);
    assert!(float_rule(&outputs[1], &npy(&cases[1].3).1) <= 1.0);
    // b64: an encoded image, preprocessed by the card (the model's two outputs by name)
    use base64::Engine as _;
    let png =
        base64::engine::general_purpose::STANDARD.encode(file("tests/data/imgproc/astronaut.png"));
    let a = post_json(
        addr,
        "/v1/models/face:predict",
        &serde_json::json!({"instances": [{"b64": png}]}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let p = &a.json()["predictions"][0];
    assert_eq!(p["regressors"].as_array().unwrap().len(), 896);
    assert_eq!(p["classificators"].as_array().unwrap().len(), 896);
    // errors
    for (body, words) in [
        (serde_json::json!({"instances": [[1.0]]}), "elements"),
        (serde_json::json!({"instances": []}), "empty"),
        (
            serde_json::json!({"signature_name": "other", "instances": [[1]]}),
            "signature_name",
        ),
        (serde_json::json!({"rows": []}), "neither"),
        (serde_json::json!({"instances": [{"b64": "%%%"}]}), "base64"),
        (
            serde_json::json!({"instances": [{"pixels": [1.0]}]}),
            "'image'",
        ),
    ] {
        let a = post_json(addr, "/v1/models/shapes:predict", &body);
        assert_eq!(a.status, 400, "{body}");
        let e = a.json()["error"].as_str().unwrap().to_string();
        assert!(e.contains(words), "{e} lacks {words}");
    }
    assert_eq!(
        post_json(addr, "/v1/models/shapes:regress", &serde_json::json!({})).status,
        400
    );
    assert_eq!(get(addr, "/v1/models/nope").status, 404);
}

/// What `tensorcv run --json` says of `image` with `model` (its detections, say), through the
/// libraries.
fn command_record(model: &str, image: &str) -> serde_json::Value {
    use tensorcv_imgproc::io::{imread, DecodeOptions};
    use tensorcv_infer::{LoadOptions, ModelCard, ModelFile};
    use tensorcv_tasks::pipeline::Pipeline;
    use tensorcv_tasks::record::Record;
    let b = tensorcv_zoo::find(model).unwrap();
    let mut f = ModelFile::from_bytes(b.bytes, model).unwrap();
    f.set_card(ModelCard::parse(b.card, model).unwrap());
    let m = f.build(&LoadOptions::default()).unwrap();
    let mut p = Pipeline::new(&m, None).unwrap();
    let img = imread(root().join(image), &DecodeOptions::default()).unwrap();
    let a = p.process(&img.view()).unwrap();
    let seg = a.outcome.segmentation(a.width, a.height).unwrap();
    let mut r = Record::new("x", 0, a.width, a.height);
    r.outcome(&a.outcome, seg.as_deref(), &m.card().labels, None);
    serde_json::to_value(r).unwrap()
}

#[test]
fn deepstack_endpoints_take_a_multipart_upload() {
    let addr = shared().http_addr();
    let png = file("tests/data/imgproc/astronaut.png");
    let (ct, body) = multipart(
        &[("image", "astronaut.png", &png)],
        &[("min_confidence", "0.4")],
    );
    let a = request(
        addr,
        "POST",
        "/v1/vision/face",
        &[("content-type", &ct)],
        body,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let r = a.json();
    assert_eq!(r["success"], true);
    let found = r["predictions"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{r}");
    let want = command_record("face", "tests/data/imgproc/astronaut.png");
    let want_box = &want["detections"][0]["box"];
    for (key, i) in [("x_min", 0), ("y_min", 1), ("x_max", 2), ("y_max", 3)] {
        let w = want_box[i].as_f64().unwrap().round() as i64;
        assert_eq!(found[0][key].as_i64().unwrap(), w, "{key}: {r}");
    }
    assert_eq!(found[0]["label"], "face");
    assert_eq!(found[0]["confidence"], want["detections"][0]["score"]);
    // /v1/vision/detection takes the first detection model not called face: here, face
    let (ct, body) = multipart(&[("image", "a.png", &png)], &[]);
    let a = request(
        addr,
        "POST",
        "/v1/vision/detection",
        &[("content-type", &ct)],
        body,
    );
    assert_eq!(a.json()["count"], 1, "{}", a.text());
    // a custom model by name; a classifier answers labels
    let (ct, body) = multipart(
        &[(
            "image",
            "a.png",
            &file("tests/data/models/shapes_3_square.png"),
        )],
        &[],
    );
    let a = request(
        addr,
        "POST",
        "/v1/vision/custom/shapes",
        &[("content-type", &ct)],
        body,
    );
    let r = a.json();
    assert_eq!(r["predictions"][0]["label"], "square", "{r}");
    // scene: the first classification model (emotion)
    let (ct, body) = multipart(&[("image", "a.png", &png)], &[]);
    let r = request(
        addr,
        "POST",
        "/v1/vision/scene",
        &[("content-type", &ct)],
        body,
    )
    .json();
    assert_eq!(r["success"], true, "{r}");
    assert!(r["label"].is_string());
    // min_confidence high enough drops the face
    let (ct, body) = multipart(&[("image", "a.png", &png)], &[("min_confidence", "0.999")]);
    let r = request(
        addr,
        "POST",
        "/v1/vision/face",
        &[("content-type", &ct)],
        body,
    )
    .json();
    assert_eq!(r["predictions"].as_array().unwrap().len(), 0, "{r}");
    // errors: success false, 4xx
    for (ct, body, words) in [
        (
            multipart(&[], &[("min_confidence", "0.5")]).0,
            multipart(&[], &[("min_confidence", "0.5")]).1,
            "no image",
        ),
        (
            multipart(&[("image", "a.png", b"not an image")], &[]).0,
            multipart(&[("image", "a.png", b"not an image")], &[]).1,
            "cannot be decoded",
        ),
        (
            multipart(&[("image", "a.png", &png)], &[("min_confidence", "2")]).0,
            multipart(&[("image", "a.png", &png)], &[("min_confidence", "2")]).1,
            "min_confidence",
        ),
        (
            "multipart/form-data; boundary=zzz".to_string(),
            b"--zzz\r\ngarbage".to_vec(),
            "malformed",
        ),
    ] {
        let a = request(
            addr,
            "POST",
            "/v1/vision/face",
            &[("content-type", &ct)],
            body,
        );
        assert_eq!(a.status, 400, "{}", a.text());
        let r = a.json();
        assert_eq!(r["success"], false);
        assert!(r["error"].as_str().unwrap().contains(words), "{r}");
    }
    let (ct, body) = multipart(&[("image", "a.png", &png)], &[]);
    let a = request(
        addr,
        "POST",
        "/v1/vision/custom/nope",
        &[("content-type", &ct)],
        body,
    );
    assert_eq!(a.status, 404);
}

#[test]
fn analyze_returns_the_commands_record() {
    let addr = shared().http_addr();
    for (model, image) in [
        ("face", "tests/data/imgproc/astronaut.png"),
        ("emotion", "tests/data/imgproc/astronaut.png"),
        ("selfie", "tests/data/imgproc/astronaut.png"),
        ("shapes", "tests/data/models/shapes_0_triangle.png"),
    ] {
        let a = request(
            addr,
            "POST",
            &format!("/v1/models/{model}:analyze?source=photo.png"),
            &[("content-type", "image/png")],
            file(image),
        );
        assert_eq!(a.status, 200, "{model}: {}", a.text());
        let got = a.json();
        let want = command_record(model, image);
        for key in ["detections", "classes", "segmentation", "width", "height"] {
            assert_eq!(got[key], want[key], "{model}: {key}");
        }
        assert_eq!(got["source"], "photo.png");
        assert!(got["timings_ms"]["inference"].as_f64().unwrap() > 0.0);
    }
    // the face mesh runs its detector first
    let a = request(
        addr,
        "POST",
        "/v1/models/face_mesh:analyze",
        &[],
        file("tests/data/imgproc/astronaut.png"),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let r = a.json();
    assert_eq!(
        r["landmarks"][0]["points"].as_array().unwrap().len(),
        468,
        "{r:.300}"
    );
    // thresholds per request, and their ranges
    let a = request(
        addr,
        "POST",
        "/v1/models/face:analyze?score_threshold=0.9999",
        &[],
        file("tests/data/imgproc/astronaut.png"),
    );
    assert_eq!(a.json()["detections"], serde_json::json!([]));
    let a = request(
        addr,
        "POST",
        "/v1/models/face:analyze?score_threshold=7",
        &[],
        file("tests/data/imgproc/astronaut.png"),
    );
    assert_eq!(a.status, 400);
    let a = request(
        addr,
        "POST",
        "/v1/models/face:analyze?mask=jpeg",
        &[],
        file("tests/data/imgproc/astronaut.png"),
    );
    assert_eq!(a.status, 400);
    let a = request(addr, "POST", "/v1/models/face:analyze", &[], Vec::new());
    assert_eq!(a.status, 400);
    // a multipart form works too, its file name the source
    let (ct, body) = multipart(
        &[("image", "me.png", &file("tests/data/imgproc/astronaut.png"))],
        &[("top_k", "2")],
    );
    let r = request(
        addr,
        "POST",
        "/v1/models/emotion:analyze",
        &[("content-type", &ct)],
        body,
    )
    .json();
    assert_eq!(r["source"], "me.png");
    assert_eq!(r["classes"].as_array().unwrap().len(), 2);
}

#[test]
fn masks_come_as_png_or_coco_run_lengths() {
    let addr = shared().http_addr();
    let png = file("tests/data/imgproc/astronaut.png");
    let rle = request(
        addr,
        "POST",
        "/v1/models/selfie:analyze?mask=rle",
        &[],
        png.clone(),
    )
    .json();
    let seg = &rle["segmentation"];
    let person = seg["classes"][1]["fraction"].as_f64().unwrap();
    let r = &seg["rle"][0];
    assert_eq!(r["class"], 1);
    // astronaut.png is 320x320
    assert_eq!(r["size"], serde_json::json!([320, 320]));
    let counts: Vec<u64> = serde_json::from_value(r["counts"].clone()).unwrap();
    assert_eq!(counts.iter().sum::<u64>(), 320 * 320);
    let inside: u64 = counts.iter().skip(1).step_by(2).sum();
    assert!(((inside as f64 / (320.0 * 320.0)) - person).abs() < 1e-5);
    assert!(person > 0.2, "the astronaut is a person: {person}");
    let with_png = request(addr, "POST", "/v1/models/selfie:analyze?mask=png", &[], png).json();
    let url = with_png["segmentation"]["mask"].as_str().unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(url.strip_prefix("data:image/png;base64,").unwrap())
        .unwrap();
    let mask = tensorcv_imgproc::io::imdecode(
        &bytes,
        &tensorcv_imgproc::io::DecodeOptions::new(tensorcv_imgproc::io::ImreadMode::Unchanged),
    )
    .unwrap();
    assert_eq!((mask.width(), mask.height()), (320, 320));
    let ones = mask.as_bytes().iter().filter(|&&v| v == 1).count();
    assert_eq!(ones as u64, inside);
}

#[test]
fn grpc_health_metadata_and_inference() {
    let s = shared();
    let url = format!("http://{}", s.grpc_addr().unwrap());
    let rt = runtime();
    rt.block_on(async {
        let mut c = GrpcInferenceServiceClient::new(
            tonic::transport::Endpoint::from_shared(url)
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
        assert!(
            c.server_live(pb::ServerLiveRequest {})
                .await
                .unwrap()
                .into_inner()
                .live
        );
        assert!(
            c.server_ready(pb::ServerReadyRequest {})
                .await
                .unwrap()
                .into_inner()
                .ready
        );
        let ready = c
            .model_ready(pb::ModelReadyRequest {
                name: "face".into(),
                version: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(ready.ready);
        let meta = c
            .model_metadata(pb::ModelMetadataRequest {
                name: "shapes".into(),
                version: "1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(meta.inputs[0].shape, [-1, 64, 64, 3]);
        assert_eq!(meta.inputs[0].datatype, "FP32");
        let cases = cases("shapes");
        // raw contents
        let (shape, data) = npy(&cases[0].1);
        let request = pb::ModelInferRequest {
            model_name: "shapes".into(),
            id: "g1".into(),
            inputs: vec![pb::model_infer_request::InferInputTensor {
                name: "image".into(),
                datatype: "FP32".into(),
                shape: shape.iter().map(|&d| d as i64).collect(),
                ..Default::default()
            }],
            raw_input_contents: vec![le(&data).into()],
            ..Default::default()
        };
        let r = c.model_infer(request.clone()).await.unwrap().into_inner();
        assert_eq!(r.id, "g1");
        assert_eq!(r.outputs[0].shape, [1, 3]);
        let got = from_le(&r.raw_output_contents[0]);
        assert!(float_rule(&got, &npy(&cases[0].3).1) <= 1.0);
        // typed contents
        let mut typed = request.clone();
        typed.raw_input_contents.clear();
        typed.inputs[0].contents = Some(pb::InferTensorContents {
            fp32_contents: data.clone(),
            ..Default::default()
        });
        let r2 = c.model_infer(typed).await.unwrap().into_inner();
        assert_eq!(r2.raw_output_contents, r.raw_output_contents);
        // the stream: several requests, each answered
        let mut requests = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            let mut q = request.clone();
            q.id = format!("s{i}");
            q.raw_input_contents = vec![le(&npy(&case.1).1).into()];
            requests.push(q);
        }
        let n = requests.len();
        let mut answers = c
            .model_stream_infer(tokio_stream::iter(requests))
            .await
            .unwrap()
            .into_inner();
        let mut seen = 0;
        while let Some(m) = answers.message().await.unwrap() {
            assert!(m.error_message.is_empty(), "{}", m.error_message);
            let r = m.infer_response.unwrap();
            let i: usize = r.id[1..].parse().unwrap();
            let got = from_le(&r.raw_output_contents[0]);
            assert!(float_rule(&got, &npy(&cases[i].3).1) <= 1.0);
            seen += 1;
        }
        assert_eq!(seen, n);
        // errors carry their codes
        let mut bad = request.clone();
        bad.model_name = "nope".into();
        assert_eq!(
            c.model_infer(bad).await.unwrap_err().code(),
            tonic::Code::NotFound
        );
        let mut bad = request.clone();
        bad.inputs[0].shape = vec![1, 64, 64];
        let e = c.model_infer(bad).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("shape"), "{}", e.message());
        let mut bad = request.clone();
        bad.raw_input_contents = vec![vec![0u8; 10].into()];
        assert_eq!(
            c.model_infer(bad).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        // configuration and statistics
        let config = c
            .model_config(pb::ModelConfigRequest {
                name: "shapes".into(),
                version: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .config
            .unwrap();
        assert_eq!(config.max_batch_size, 4);
        let stats = c
            .model_statistics(pb::ModelStatisticsRequest {
                name: "shapes".into(),
                version: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(stats.model_stats[0].inference_count >= 1);
        // a method not served
        let e = c
            .system_shared_memory_status(pb::SystemSharedMemoryStatusRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unimplemented);
    });
}

#[test]
fn a_full_queue_is_503_and_a_passed_deadline_504() {
    let s = start(&["selfie"], {
        let mut st = settings();
        st.instances = 1;
        st.max_queue_size = 1;
        st
    });
    let addr = s.http_addr();
    let png = file("tests/data/imgproc/astronaut.png");
    let rt = runtime();
    let statuses = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let png = png.clone();
            tasks.push(tokio::spawn(async move {
                send(addr, "POST", "/v1/models/selfie:analyze", &[], png).await
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let full: Vec<&Answer> = statuses.iter().filter(|a| a.status == 503).collect();
    let ok = statuses.iter().filter(|a| a.status == 200).count();
    assert!(
        !full.is_empty() && ok >= 1,
        "{:?}",
        statuses.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert!(full[0].json()["error"].as_str().unwrap().contains("queue"));
    assert_eq!(ok + full.len(), 24);
    // a deadline of 1 microsecond passes in the queue
    let data = vec![0.5f32; 256 * 256 * 3];
    let body = serde_json::json!({
        "inputs": [{"name": "input_1", "shape": [1, 256, 256, 3], "datatype": "FP32", "data": data}],
        "parameters": {"timeout": 1},
    });
    let meta = get(addr, "/v2/models/selfie").json();
    let name = meta["inputs"][0]["name"].as_str().unwrap().to_string();
    let mut body = body;
    body["inputs"][0]["name"] = name.into();
    let a = post_json(addr, "/v2/models/selfie/infer", &body);
    assert_eq!(a.status, 504, "{}", a.text());
    let metrics = get(addr, "/metrics").text();
    assert!(metrics.contains("status=\"queue_full\""), "{metrics}");
    assert!(metrics.contains("status=\"deadline\""));
    assert_eq!(get(addr, "/v2/health/ready").status, 200);
}

#[test]
fn sixty_four_concurrent_clients_get_their_own_answers() {
    let s = start(&["shapes", "emotion"], settings());
    let addr = s.http_addr();
    let shapes = cases("shapes");
    let emotion = cases("emotion");
    let rt = runtime();
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for client in 0..64 {
            let (model, input, case) = if client % 2 == 0 {
                ("shapes", "image", shapes[client / 2 % shapes.len()].clone())
            } else {
                ("emotion", "input", emotion[client / 2 % emotion.len()].clone())
            };
            tasks.push(tokio::spawn(async move {
                let (shape, data) = npy(&case.1);
                let (_, want) = npy(&case.3);
                let mut worst = 0f32;
                for _ in 0..4 {
                    let body = serde_json::json!({
                        "inputs": [{"name": input, "shape": shape, "datatype": "FP32", "data": data}],
                    })
                    .to_string()
                    .into_bytes();
                    let a = send(addr, "POST", &format!("/v2/models/{model}/infer"), &[], body).await;
                    assert_eq!(a.status, 200, "{}", a.text());
                    let got: Vec<f32> =
                        serde_json::from_value(a.json()["outputs"][0]["data"].clone()).unwrap();
                    worst = worst.max(float_rule(&got, &want));
                }
                worst
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(results.len(), 64);
    assert!(results.iter().all(|&r| r <= 1.0), "{results:?}");
}

#[test]
fn shutdown_finishes_the_requests_under_way() {
    let s = start(&["shapes"], {
        let mut st = settings();
        st.instances = 1;
        // the request waits here while the server is told to stop
        st.max_queue_delay = Duration::from_millis(600);
        st
    });
    let addr = s.http_addr();
    let data = npy(&cases("shapes")[0].1).1;
    let body = serde_json::json!({
        "inputs": [{"name": "image", "shape": [1, 64, 64, 3], "datatype": "FP32", "data": data}],
    })
    .to_string()
    .into_bytes();
    let client =
        std::thread::spawn(move || request(addr, "POST", "/v2/models/shapes/infer", &[], body));
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    assert!(s.shutdown(), "everything ended within the grace period");
    let a = client.join().unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(t.elapsed() < Duration::from_secs(10));
    // no new connection is taken
    let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(refused.is_err(), "still accepting after shutdown");
}

#[test]
fn connections_past_the_limit_are_refused() {
    let s = start_with(&["shapes"], settings(), |c| c.limits.connections = 2);
    let addr = s.http_addr();
    let rt = runtime();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // two idle connections hold the places
        let a = tokio::net::TcpStream::connect(addr).await.unwrap();
        let b = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut out))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&out[..n]).starts_with("HTTP/1.1 503"));
        drop((a, b));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ok = send(addr, "GET", "/v2/health/live", &[], Vec::new()).await;
        assert_eq!(ok.status, 200);
    });
}

#[test]
fn a_client_that_never_sends_its_headers_is_cut_off() {
    let s = start_with(&["shapes"], settings(), |c| {
        c.limits.header_timeout = Duration::from_millis(300)
    });
    let addr = s.http_addr();
    let rt = runtime();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /v2/health/live HTTP/1.1\r\nhost:")
            .await
            .unwrap();
        let mut out = Vec::new();
        let t = Instant::now();
        let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out)).await;
        assert!(t.elapsed() < Duration::from_secs(4), "not cut off");
    });
}

#[test]
fn the_model_directory_is_read_again_on_reload() {
    let dir = std::env::temp_dir().join(format!("tensorcv-serve-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let copy = |stem: &str, to: &str| {
        for ext in ["onnx", "toml"] {
            std::fs::copy(
                root().join(format!("models/{stem}.{ext}")),
                dir.join(format!("{to}.{ext}")),
            )
            .unwrap();
        }
    };
    copy("shapes", "shapes");
    let s = start_with(&[], settings(), |c| {
        c.repository.dir = Some(dir.clone());
        c.grpc = None;
    });
    let addr = s.http_addr();
    assert_eq!(get(addr, "/v2/models/shapes").status, 200);
    assert_eq!(get(addr, "/v2/models/emotion").status, 404);
    copy("emotion", "emotion");
    // a broken file: reported, the rest goes on
    std::fs::write(dir.join("broken.onnx"), b"not a model").unwrap();
    let report = s.reload();
    assert_eq!(report.added, ["emotion"]);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].contains("broken.onnx"));
    assert_eq!(get(addr, "/v2/models/emotion").status, 200);
    // unchanged files are not loaded again; a changed card is
    std::fs::remove_file(dir.join("broken.onnx")).unwrap();
    assert_eq!(s.reload(), Default::default());
    let card = std::fs::read_to_string(dir.join("shapes.toml")).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        dir.join("shapes.toml"),
        format!("{card}\n[serving]\nmax_batch_size = 2\n"),
    )
    .unwrap();
    let report = s.reload();
    assert_eq!(report.reloaded, ["shapes"], "{report:?}");
    assert_eq!(
        get(addr, "/v2/models/shapes/config").json()["max_batch_size"],
        2
    );
    // removed: unloaded
    std::fs::remove_file(dir.join("emotion.onnx")).unwrap();
    let report = s.reload();
    assert_eq!(report.removed, ["emotion"]);
    assert_eq!(get(addr, "/v2/models/emotion").status, 404);
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_models_and_settings_fail_at_start_naming_them() {
    use tensorcv_serve::repository::{ModelSpec, RepositoryOptions};
    use tensorcv_serve::ServerConfig;
    let fail = |models: &[&str], change: &dyn Fn(&mut ServerConfig)| {
        let mut config = ServerConfig {
            repository: RepositoryOptions {
                models: models.iter().map(|m| ModelSpec::parse(m)).collect(),
                defaults: settings(),
                ..Default::default()
            },
            http: "127.0.0.1:0".into(),
            ..Default::default()
        };
        change(&mut config);
        Server::start(config).unwrap_err().to_string()
    };
    let e = fail(&["no/such/model.onnx"], &|_| {});
    assert!(e.contains("no/such/model.onnx"), "{e}");
    let e = fail(&["face", "face"], &|_| {});
    assert!(e.contains("taken"), "{e}");
    let e = fail(&[], &|_| {});
    assert!(e.contains("no models"), "{e}");
    let e = fail(&["face"], &|c| c.repository.defaults.max_batch_size = 0);
    assert!(e.contains("max_batch_size"), "{e}");
    let e = fail(&["face"], &|c| c.http = "256.1.1.1:80".into());
    assert!(e.contains("256.1.1.1"), "{e}");
    let e = fail(&["a/b=face"], &|_| {});
    assert!(e.contains("a/b=face"), "{e}");
}
