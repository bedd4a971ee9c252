"""`tensorcv serve` against KServe's Python model server with onnxruntime, under the same load.

    cargo build --release -p tensorcv-cli
    python3 tools/bench_serve.py [--requests 3000] [--clients 64] [--protocols grpc,http]
                                 [--models face,selfie,mobilenet_v2] [--rounds 2] [--bin B]

`--bin` picks the binary measured (default target/release/tensorcv); the README's table is the
shipped static one, target/x86_64-unknown-linux-musl/dist/tensorcv.

One load script drives both servers: Triton's Python client (its v2 request encoding, binary
tensors; its gRPC stub, and aiohttp as `tritonclient.http.aio` uses it), `--clients`
concurrent clients in one asyncio loop each sending its own random tensor, request after
request, until `--requests` are answered (after a warm-up of 2 per client). Throughput is
answered requests per second; latency is each request's round trip (p50, p99). Servers run
one at a time on this machine, interleaved (tensorcv, peer, tensorcv, peer, …), `--rounds`
times; the table gives each round.

- tensorcv: `tensorcv serve -m MODEL --instances C` (C = the cores; batching as the model
  allows: up to 8 for a free batch dimension, no added delay).
- the peer: tools/serve_peer.py — KServe 0.21's ModelServer, onnxruntime 1.32 with one thread
  per session and C sessions run at once from a thread pool (the tuned set-up; KServe's plain
  synchronous predict would run one request at a time).

Models: BlazeFace (models/face_detection_short_range.onnx), selfie segmentation
(models/selfie_segmentation.onnx), MobileNetV2 (tools/.cache/mobilenet_v2.onnx, exported by
tools/bench_zoo.py --export-only: Keras, random weights, timing only).
"""
import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402
from tools_common import cpu_model  # noqa: E402

ensure_venv(__file__, ".serve-venv")

import numpy as np  # noqa: E402
import tritonclient.grpc.aio as grpcaio  # noqa: E402
import tritonclient.http.aio as httpaio  # noqa: E402

MODELS = {
    "face": ROOT / "models" / "face_detection_short_range.onnx",
    "selfie": ROOT / "models" / "selfie_segmentation.onnx",
    "mobilenet_v2": ROOT / "tools" / ".cache" / "mobilenet_v2.onnx",
}


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(http_port, proc, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server ended (exit {proc.returncode})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def start(server, model, binary, cores):
    http, grpc = free_port(), free_port()
    path = MODELS[model]
    if server == "tensorcv":
        cmd = [binary, "serve", "-m", f"{model}={path}", "--http", f"127.0.0.1:{http}",
               "--grpc", f"127.0.0.1:{grpc}", "--instances", str(cores), "--log-level", "warn"]
    else:
        cmd = [sys.executable, str(ROOT / "tools" / "serve_peer.py"), "--model", f"{model}={path}",
               "--sessions", str(cores), "--http_port", str(http), "--grpc_port", str(grpc),
               "--enable_latency_logging", "False"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(http, proc)
    return proc, http, grpc


def input_shape(model):
    import onnxruntime as ort
    inp = ort.InferenceSession(str(MODELS[model])).get_inputs()[0]
    return inp.name, [1] + [d if isinstance(d, int) else 1 for d in inp.shape[1:]]


async def load(protocol, port, model, input_name, shape, clients, requests):
    """`clients` concurrent clients, each sending its request again and again until `requests`
    are answered (after a warm-up of 2 per client). Each client's request is encoded once by
    tritonclient (its own protocol code: `_get_inference_request`, binary tensors) and sent
    over tritonclient's gRPC stub or aiohttp (what `tritonclient.http.aio` sends with), so the
    Python client spends little per request: on 2 cores the load generator shares the CPU
    with the server, and tritonclient's full `infer` (numpy in, numpy out) would cap it."""
    import aiohttp
    from tritonclient.grpc import _utils as grpc_utils
    from tritonclient.http import _utils as http_utils
    url = f"127.0.0.1:{port}"
    rng = np.random.default_rng(5)
    latencies = []
    left = [requests + 2 * clients]
    warm = 2 * clients
    errors = []
    if protocol == "grpc":
        conns = [grpcaio.InferenceServerClient(url) for _ in range(clients)]
        bodies = []
        for _ in range(clients):
            inp = grpcaio.InferInput(input_name, shape, "FP32")
            inp.set_data_from_numpy(rng.random(shape, dtype=np.float32))
            bodies.append(grpc_utils._get_inference_request(
                model_name=model, inputs=[inp], model_version="", request_id="", outputs=None,
                sequence_id=0, sequence_start=False, sequence_end=False, priority=0,
                timeout=None, parameters=None))

        async def once(i):
            r = await conns[i]._client_stub.ModelInfer(request=bodies[i])
            if not r.raw_output_contents:
                raise RuntimeError("no outputs")
    else:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients))
        bodies = []
        for _ in range(clients):
            inp = httpaio.InferInput(input_name, shape, "FP32")
            inp.set_data_from_numpy(rng.random(shape, dtype=np.float32), binary_data=True)
            body, json_size = http_utils._get_inference_request(
                inputs=[inp], request_id="", outputs=None, sequence_id=0, sequence_start=False,
                sequence_end=False, priority=0, timeout=None, custom_parameters=None)
            bodies.append((body, {"Inference-Header-Content-Length": str(json_size)}))
        target = f"http://{url}/v2/models/{model}/infer"

        async def once(i):
            body, headers = bodies[i]
            async with session.post(target, data=body, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")

    async def client(i):
        while left[0] > 0:
            left[0] -= 1
            t = time.perf_counter()
            try:
                await once(i)
            except Exception as e:  # noqa: BLE001 - counted and shown
                errors.append(str(e)[:120])
                continue
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    if protocol == "grpc":
        for c in conns:
            await c.close()
    else:
        await session.close()
    measured = latencies[warm:]
    # throughput over the measured requests: their share of the whole run's time
    span = elapsed * len(measured) / max(len(latencies), 1)
    ms = sorted(x * 1e3 for x in measured)
    return {
        "rps": len(measured) / span,
        "p50": statistics.median(ms),
        "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=str(ROOT / "target" / "release" / "tensorcv"))
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--protocols", default="grpc,http")
    p.add_argument("--models", default="face,selfie,mobilenet_v2")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    cores = os.cpu_count() or 1
    if not MODELS["mobilenet_v2"].exists() and "mobilenet_v2" in args.models:
        # bench_zoo.py makes its own venv (TensorFlow, tf2onnx) for the export
        subprocess.check_call(["python3", str(ROOT / "tools" / "bench_zoo.py"), "--export-only"])
    print(f"# {cpu_model()}, {cores} cores, {platform.system()}; {args.clients} clients, "
          f"{args.requests} requests each run", flush=True)
    rows = []
    for model in args.models.split(","):
        input_name, shape = input_shape(model)
        for protocol in args.protocols.split(","):
            for rnd in range(args.rounds):
                for server in ("tensorcv", "kserve+onnxruntime"):
                    proc, http, grpc = start(server, model, args.bin, cores)
                    try:
                        port = grpc if protocol == "grpc" else http
                        r = asyncio.run(load(protocol, port, model, input_name, shape,
                                             args.clients, args.requests))
                    finally:
                        proc.terminate()
                        proc.wait(timeout=60)
                    r.update(model=model, protocol=protocol, server=server, round=rnd + 1)
                    rows.append(r)
                    print(json.dumps(r), flush=True)
    print()
    print("| model | protocol | round | server | req/s | p50 ms | p99 ms | p99/p50 | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['protocol']} | {r['round']} | {r['server']} | {r['rps']:.0f} | "
              f"{r['p50']:.1f} | {r['p99']:.1f} | {r['p99'] / r['p50']:.2f} | {r['errors']} |")
    print()
    print("| model | protocol | round | throughput tensorcv / peer | p99 tensorcv / peer |")
    print("|---|---|---|---|---|")
    for i in range(0, len(rows), 2):
        a, b = rows[i], rows[i + 1]
        print(f"| {a['model']} | {a['protocol']} | {a['round']} | {a['rps'] / b['rps']:.2f}x | "
              f"{a['p99'] / b['p99']:.2f}x |")


if __name__ == "__main__":
    main()
