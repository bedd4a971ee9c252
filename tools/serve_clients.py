"""`tensorcv serve` against the real clients of each protocol, and deploy/ against the schemas.

    python3 tools/serve_clients.py [--bin target/debug/tensorcv]

In a venv of its own (tools/.serve-venv: tritonclient, onnxruntime, requests, the KServe SDK):

1. deploy/, by tools/check_deploy.py: every document of deploy/kubernetes.yaml and
   deploy/kserve.yaml read into the Kubernetes client's and the KServe SDK's model classes
   (made from the published OpenAPI schemas), every key one the schema has; each container's
   arguments, and the Dockerfile's, run through `tensorcv serve --check`.
2. A server of face, selfie, shapes and emotion on loopback ports, then:
   - Triton's client (`tritonclient.http` and `tritonclient.grpc`): health, server and model
     metadata, model configuration, inference with JSON and binary tensors, a batch, an
     encoded image as BYTES, the classification extension, gRPC streaming — outputs equal to
     onnxruntime's on the same tensor (the zoo's rule: 1e-4, relative beyond 1);
   - TF Serving REST as its documentation writes requests (`requests.post(url,
     data=json.dumps({"signature_name": ..., "instances": ...}))`, `{"b64": ...}`);
   - DeepStack's endpoints with a multipart upload (`files={"image": ...}`);
   - bad requests (wrong shape, datatype, name, truncated body, huge body, bad JSON) are 4xx
     and the server stays up;
   - 64 concurrent clients, each with its own inputs, get their own answers;
   - SIGTERM: the server exits 0.
Exits 1 on the first failure, with what failed.
"""
import argparse
import http.client as httplib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402
from tools_common import CHECKS, check, fail, ok  # noqa: E402

ensure_venv(__file__, ".serve-venv")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import requests  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

def rule(got, want):
    """The zoo's float rule as a multiple: 1e-4 absolute within [-1, 1], relative beyond."""
    got = np.asarray(got, dtype=np.float64).ravel()
    want = np.asarray(want, dtype=np.float64).ravel()
    if got.shape != want.shape:
        return float("inf")
    return float(np.max(np.abs(got - want) / (1e-4 * np.maximum(np.abs(want), 1.0))))


# ---------------------------------------------------------------------------------- server


class Server:
    def __init__(self, binary, *args):
        self.proc = subprocess.Popen(
            [binary, "serve", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", *args],
            stderr=subprocess.PIPE, text=True)
        self.log = []
        deadline = time.time() + 300
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                fail(f"the server ended: {''.join(self.log)}")
            self.log.append(line)
            m = re.search(r"on http://([\d.:]+) and grpc://([\d.:]+)", line)
            if m:
                self.http, self.grpc = m.group(1), m.group(2)
                break
        else:
            fail("the server did not start")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def onnx_session(name):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(ROOT / "models" / name), so, providers=["CPUExecutionProvider"])


def manifest_cases(model):
    m = json.loads((ROOT / "tests/data/models/manifest.json").read_text())
    return [c for c in m["cases"] if c["model"] == model]


def npy(name):
    return np.load(ROOT / "tests/data/models" / name)


def model_input(case):
    """A reference case's float input: its own, or OpenCV's uint8 tensor normalized as the
    model's card says."""
    if case.get("input"):
        return npy(case["input"])
    x = npy(case["input_u8"]).astype(np.float32)
    card = (ROOT / "models" / case["file"]).with_suffix(".toml").read_text()
    return x / 127.5 - 1 if 'range = "[-1,1]"' in card else x / 255


def triton_tests(server):
    http = httpclient.InferenceServerClient(server.http)
    grpc = grpcclient.InferenceServerClient(server.grpc)
    check(http.is_server_live() and http.is_server_ready(), "tritonclient.http: live and ready")
    check(grpc.is_server_live() and grpc.is_server_ready(), "tritonclient.grpc: live and ready")
    check(http.get_server_metadata()["name"] == "tensorcv", "http: server metadata")
    check(grpc.get_server_metadata().name == "tensorcv", "grpc: server metadata")
    check(http.is_model_ready("face") and grpc.is_model_ready("shapes"), "model ready")
    meta = http.get_model_metadata("shapes")
    check(meta["inputs"][0] == {"name": "image", "datatype": "FP32", "shape": [-1, 64, 64, 3]},
          f"http: shapes metadata {meta['inputs'][0]}")
    gmeta = grpc.get_model_metadata("face")
    check(list(gmeta.inputs[0].shape) == [1, 128, 128, 3] and gmeta.outputs[0].name == "regressors",
          "grpc: face metadata")
    config = grpc.get_model_config("shapes").config
    check(config.max_batch_size == 4 and config.instance_group[0].count == 2,
          "grpc: model configuration (max_batch_size, instance group)")
    check(http.get_model_config("face")["max_batch_size"] == 0, "http: model configuration")

    # onnxruntime on the same tensors: the zoo's float inputs, and random ones
    rng = np.random.default_rng(7)
    for model, file, input_name in (("shapes", "shapes.onnx", "image"),
                                    ("emotion", "emotion.onnx", "input"),
                                    ("selfie", "selfie_segmentation.onnx", None),
                                    ("face", "face_detection_short_range.onnx", None)):
        sess = onnx_session(file)
        inp = sess.get_inputs()[0]
        input_name = inp.name
        shape = [1] + [d for d in http.get_model_metadata(model)["inputs"][0]["shape"][1:]]
        tensors = [model_input(c) for c in manifest_cases(model)][:3]
        tensors.append(rng.random(shape, dtype=np.float32))
        out_names = [o.name for o in sess.get_outputs()]
        for i, x in enumerate(tensors):
            want = sess.run(None, {input_name: x})
            for client, kind in ((http, "http"), (grpc, "grpc")):
                for binary in (True, False) if kind == "http" else (True,):
                    mod = httpclient if kind == "http" else grpcclient
                    inp_t = mod.InferInput(input_name, list(x.shape), "FP32")
                    if kind == "http":
                        inp_t.set_data_from_numpy(x, binary_data=binary)
                        outs = [mod.InferRequestedOutput(n, binary_data=binary) for n in out_names]
                    else:
                        inp_t.set_data_from_numpy(x)
                        outs = [mod.InferRequestedOutput(n) for n in out_names]
                    r = client.infer(model, [inp_t], outputs=outs, request_id=f"{model}-{i}")
                    worst = max(rule(r.as_numpy(n), w) for n, w in zip(out_names, want))
                    if worst > 1.0:
                        fail(f"{kind} {model} tensor {i} binary={binary}: {worst:.2f} x the rule")
        ok(f"tritonclient http (JSON and binary) and grpc: {model} equals onnxruntime "
           f"on {len(tensors)} tensors")

    # a batch of 4 in one request
    sess = onnx_session("shapes.onnx")
    batch = rng.random((4, 64, 64, 3), dtype=np.float32)
    want = sess.run(None, {"image": batch})[0]
    for client, mod in ((http, httpclient), (grpc, grpcclient)):
        inp = mod.InferInput("image", list(batch.shape), "FP32")
        inp.set_data_from_numpy(batch)
        got = client.infer("shapes", [inp]).as_numpy("probabilities")
        check(got.shape == (4, 3) and rule(got, want) <= 1.0, f"{mod.__name__}: a batch of 4")
    # the classification extension
    inp = httpclient.InferInput("image", [4, 64, 64, 3], "FP32")
    inp.set_data_from_numpy(batch)
    cls = http.infer("shapes", [inp], outputs=[
        httpclient.InferRequestedOutput("probabilities", class_count=1)]).as_numpy("probabilities")
    labels = ["circle", "square", "triangle"]
    got = [c[0].decode().split(":") for c in cls]
    check(all(int(g[1]) == int(np.argmax(w)) and g[2] == labels[int(np.argmax(w))]
              for g, w in zip(got, want)), "http: the classification extension (score:index:label)")
    # an encoded image as BYTES: the server preprocesses it as the card says
    png = (ROOT / "tests/data/imgproc/astronaut.png").read_bytes()
    for client, mod in ((http, httpclient), (grpc, grpcclient)):
        inp = mod.InferInput("input", [1], "BYTES")
        inp.set_data_from_numpy(np.array([png], dtype=np.object_))
        r = client.infer("face", [inp])
        case = next(c for c in manifest_cases("face") if c["image"].endswith("astronaut.png"))
        worst = max(rule(r.as_numpy(n), npy(f["ort"])) for n, f in case["outputs"].items())
        check(worst <= 1.0, f"{mod.__name__}: a PNG as BYTES equals onnxruntime on OpenCV's "
                            f"tensor ({worst:.2f} x the rule)")
    # gRPC streaming
    results = []
    done = threading.Event()

    def callback(result, error):
        results.append((result, error))
        if len(results) == 3:
            done.set()

    grpc.start_stream(callback=callback)
    xs = [rng.random((1, 64, 64, 3), dtype=np.float32) for _ in range(3)]
    for i, x in enumerate(xs):
        inp = grpcclient.InferInput("image", [1, 64, 64, 3], "FP32")
        inp.set_data_from_numpy(x)
        grpc.async_stream_infer("shapes", [inp], request_id=str(i))
    done.wait(60)
    grpc.stop_stream()
    check(len(results) == 3 and all(e is None for _, e in results) and all(
        rule(r.as_numpy("probabilities"), sess.run(None, {"image": xs[int(r.get_response().id)]})[0]) <= 1
        for r, _ in results), "grpc: ModelStreamInfer answers every request")
    stats = http.get_inference_statistics("shapes")
    check(stats["model_stats"][0]["inference_count"] > 0, "http: statistics")
    index = grpc.get_model_repository_index()
    check(sorted(m.name for m in index.models) == ["emotion", "face", "selfie", "shapes"],
          "grpc: repository index")
    return http, grpc


def tfserving_tests(server):
    base = f"http://{server.http}/v1/models"
    status = requests.get(f"{base}/shapes").json()
    check(status["model_version_status"][0]["state"] == "AVAILABLE", "TF Serving: model status")
    meta = requests.get(f"{base}/shapes/metadata").json()
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    check(sig["inputs"]["image"]["dtype"] == "DT_FLOAT", "TF Serving: signature metadata")
    sess = onnx_session("shapes.onnx")
    x = np.random.default_rng(3).random((3, 64, 64, 3), dtype=np.float32)
    want = sess.run(None, {"image": x})[0]
    # as the REST API documentation writes it
    data = json.dumps({"signature_name": "serving_default", "instances": x.tolist()})
    r = requests.post(f"{base}/shapes:predict", data=data)
    check(r.status_code == 200 and rule(r.json()["predictions"], want) <= 1.0,
          "TF Serving: predict, row format (instances)")
    data = json.dumps({"inputs": {"image": x.tolist()}})
    r = requests.post(f"{base}/shapes/versions/1:predict", data=data)
    check(r.status_code == 200 and rule(r.json()["outputs"], want) <= 1.0,
          "TF Serving: predict, columnar (inputs), with a version")
    import base64
    png = base64.b64encode((ROOT / "tests/data/imgproc/astronaut.png").read_bytes()).decode()
    r = requests.post(f"{base}/selfie:predict", data=json.dumps({"instances": [{"b64": png}]}))
    check(r.status_code == 200 and np.asarray(r.json()["predictions"]).shape == (1, 256, 256, 1),
          "TF Serving: an encoded image as b64 (one prediction, the mask)")
    r = requests.post(f"{base}/shapes:predict", data=json.dumps({"instances": [[1.0, 2.0]]}))
    check(r.status_code == 400 and "error" in r.json(), "TF Serving: a bad instance is 400 with error")


def deepstack_tests(server):
    url = f"http://{server.http}/v1/vision"
    with open(ROOT / "tests/data/imgproc/astronaut.png", "rb") as f:
        r = requests.post(f"{url}/face", files={"image": f}, data={"min_confidence": 0.4})
    body = r.json()
    p = body["predictions"]
    check(r.status_code == 200 and body["success"] and len(p) == 1 and p[0]["label"] == "face"
          and 70 < p[0]["x_min"] < 85 and 170 < p[0]["x_max"] < 190,
          f"DeepStack: /v1/vision/face finds the astronaut's face {p}")
    with open(ROOT / "tests/data/models/shapes_0_triangle.png", "rb") as f:
        r = requests.post(f"{url}/custom/shapes", files={"image": f})
    check(r.json()["predictions"][0]["label"] == "triangle", "DeepStack: a custom model")
    r = requests.post(f"{url}/face", files={"image": ("x.png", b"not an image")})
    check(r.status_code == 400 and r.json()["success"] is False, "DeepStack: a bad image is 400")
    with open(ROOT / "tests/data/imgproc/astronaut.png", "rb") as f:
        r = requests.post(f"http://{server.http}/v1/models/selfie:analyze?mask=rle", data=f.read())
    seg = r.json()["segmentation"]
    check(r.status_code == 200 and seg["rle"][0]["size"] == [320, 320],
          "analyze: the record with a COCO RLE mask")


def bad_requests(server, http, grpc):
    x = np.zeros((1, 64, 64), dtype=np.float32)
    for what, inputs in (
        ("wrong shape", [("image", x, "FP32")]),
        ("wrong datatype", [("image", np.zeros((1, 64, 64, 3), dtype=np.int32), "INT32")]),
        ("wrong name", [("pixels", np.zeros((1, 64, 64, 3), dtype=np.float32), "FP32")]),
    ):
        for client, mod in ((http, httpclient), (grpc, grpcclient)):
            ins = []
            for name, arr, dt in inputs:
                i = mod.InferInput(name, list(arr.shape), dt)
                i.set_data_from_numpy(arr)
                ins.append(i)
            try:
                client.infer("shapes", ins)
                fail(f"{mod.__name__}: {what} was answered")
            except InferenceServerException as e:
                status = str(e.status())
                good = status == "400" if mod is httpclient else "INVALID_ARGUMENT" in status
                check(good, f"{mod.__name__}: {what} -> {status}: {e.message()[:70]}")
    try:
        http.infer("nope", [])
        fail("an unknown model was answered")
    except InferenceServerException as e:
        check(str(e.status()) == "404", "http: an unknown model is 404")
    # a truncated body: the JSON header says more binary data than arrives
    head = json.dumps({"inputs": [{"name": "image", "shape": [1, 64, 64, 3], "datatype": "FP32",
                                   "parameters": {"binary_data_size": 49152}}]}).encode()
    r = requests.post(f"http://{server.http}/v2/models/shapes/infer", data=head + b"\0" * 100,
                      headers={"Inference-Header-Content-Length": str(len(head))})
    check(r.status_code == 400 and "error" in r.json(), "a truncated body is 400")
    # a connection that stops sending half-way: the server is not held up
    host, port = server.http.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(b"POST /v2/models/shapes/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
    s.close()
    # a huge body (the server was started with --max-body-mib 16)
    # the answer comes from the Content-Length, before the body is sent
    conn = httplib.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/v2/models/shapes/infer")
    conn.putheader("Content-Length", str(40 << 20))
    conn.endheaders()
    r = conn.getresponse()
    check(r.status == 413 and b"bytes allowed" in r.read(), f"a 40 MiB body is 413 ({r.status})")
    conn.close()
    r = requests.post(f"http://{server.http}/v2/models/shapes/infer", data=b"{not json")
    check(r.status_code == 400 and "error" in r.json(), "bad JSON is 400 with error")
    check(http.is_server_live() and grpc.is_server_live(), "the server is still up")


def concurrent_clients(server):
    sess = onnx_session("shapes.onnx")
    rng = np.random.default_rng(11)
    inputs = [rng.random((1, 64, 64, 3), dtype=np.float32) for _ in range(64)]
    wants = [sess.run(None, {"image": x})[0] for x in inputs]

    def client(i):
        c = httpclient.InferenceServerClient(server.http) if i % 2 else \
            grpcclient.InferenceServerClient(server.grpc)
        mod = httpclient if i % 2 else grpcclient
        worst = 0.0
        for _ in range(8):
            inp = mod.InferInput("image", [1, 64, 64, 3], "FP32")
            inp.set_data_from_numpy(inputs[i])
            got = c.infer("shapes", [inp]).as_numpy("probabilities")
            worst = max(worst, rule(got, wants[i]))
        return worst

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(client, range(64)))
    check(max(results) <= 1.0, f"64 concurrent clients (HTTP and gRPC), 8 requests each, "
                               f"each got its own answers (worst {max(results):.2f} x the rule)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=str(ROOT / "target/debug/tensorcv"))
    args = parser.parse_args()
    binary = args.bin
    if not os.path.exists(binary):
        fail(f"no binary at {binary} (cargo build -p tensorcv-cli)")
    # deploy/ in a process of its own: the KServe SDK and tritonclient both register the
    # protocol's `inference.*` messages, and one Python process takes only one of them
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "check_deploy.py"), "--bin", binary])
    if run.returncode != 0:
        fail("deploy/ (tools/check_deploy.py)")
    server = Server(binary, "-m", "face", "-m", "selfie", "-m", "shapes", "-m", "emotion",
                    "--instances", "2", "--max-batch", "4", "--max-body-mib", "16")
    try:
        http, grpc = triton_tests(server)
        tfserving_tests(server)
        deepstack_tests(server)
        bad_requests(server, http, grpc)
        concurrent_clients(server)
        metrics = requests.get(f"http://{server.http}/metrics").text
        check('tensorcv_requests_total{model="shapes",protocol="kserve-grpc",status="ok"}' in metrics,
              "/metrics counts the requests")
    except SystemExit:
        print("".join(server.log[-30:]), file=sys.stderr)
        server.proc.kill()
        raise
    code = server.stop()
    check(code == 0, f"SIGTERM: the server exits 0 ({code})")
    print(f"{len(CHECKS)} checks passed")


if __name__ == "__main__":
    main()
