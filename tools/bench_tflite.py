#!/usr/bin/env python3
"""tensorcv on MediaPipe's `.tflite` files as the wheel ships them, against the TFLite
interpreter (XNNPACK, its default kernels) on the same files, at 1 and 2 threads, interleaved:
tensorcv, TFLite, tensorcv, TFLite for each model and thread count, so both runs of an engine
see the same machine. Prints one markdown table (medians in ms, the two runs of each, and
TFLite's time over tensorcv's: above 1, tensorcv is faster).

    cargo build --release -p tensorcv-cli
    python3 tools/bench_tflite.py [--iterations 300]

The files come from the `mediapipe==0.10.14` wheel (`pip download --no-deps` into tools/.cache,
as tools/build_zoo.py does); tensorcv is timed by `tensorcv bench --json` (its median over the
runs), TFLite by the same number of `invoke()` calls after 20 warm-up runs, on an input of the
model's shape. Runs in tools/.zoo-venv (TensorFlow's interpreter).
"""
import argparse
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__, ".zoo-venv")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

CACHE = ROOT / "tools" / ".cache"
MODELS = ["face_detection/face_detection_short_range", "face_landmark/face_landmark",
          "palm_detection/palm_detection_lite", "hand_landmark/hand_landmark_lite"]


def mediapipe_file(member):
    out = CACHE / "mediapipe" / (Path(member).name + ".tflite")
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(CACHE.glob("mediapipe-0.10.14-*.whl"))
    if not wheels:
        subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                               "-d", str(CACHE), "mediapipe==0.10.14"])
        wheels = sorted(CACHE.glob("mediapipe-0.10.14-*.whl"))
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[-1]) as z:
        out.write_bytes(z.read(f"mediapipe/modules/{member}.tflite"))
    return out


def tensorcv_ms(binary, path, threads, iterations):
    out = subprocess.run([str(binary), "bench", "-m", str(path), "--threads", str(threads),
                          "--iterations", str(iterations), "--top", "0", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["inference_ms"]["median"]


def tflite_ms(path, threads, iterations):
    it = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.random.default_rng(0).random(d["shape"], dtype=np.float32))
    for _ in range(20):
        it.invoke()
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "tensorcv"))
    args = parser.parse_args()
    print("| MediaPipe 0.10.14 `.tflite` | threads | tensorcv | TFLite (XNNPACK) | tflite / tcv |")
    print("|---|---|---|---|---|")
    for member in MODELS:
        path = mediapipe_file(member)
        for threads in (1, 2):
            ours, theirs = [], []
            for _ in range(2):
                ours.append(tensorcv_ms(args.binary, path, threads, args.iterations))
                theirs.append(tflite_ms(path, threads, args.iterations))
            ratio = min(theirs) / min(ours)
            print(f"| {Path(member).name} | {threads} | {ours[0]:.2f} / {ours[1]:.2f} | "
                  f"{theirs[0]:.2f} / {theirs[1]:.2f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
