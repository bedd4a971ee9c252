#!/usr/bin/env python3
"""Time tensorcv's imgproc against Python OpenCV on the same 1080p JPEG, at the same thread
count, and print one table.

    python3 tools/bench_imgproc.py [--rounds 3]

The Rust side is `benches/examples/imgproc_times.rs` (median of 200 calls per operation, one
JSON line; the single operations at 1 and 2 threads, the rest at 1), built once with
`cargo build --release`. The Python side runs the
glue code people write (`cv2.imdecode`, `cv2.cvtColor`, `cv2.resize`, `astype(np.float32) / 255`,
mean/std, expand_dims; Pillow's `Image.resize` for the PIL-compatible resize) in the venv
`tools/.venv` (made and filled by this script on first use), with `cv2.setNumThreads(1)` and
`(2)`. Rounds interleave: tensorcv, OpenCV 1 thread, OpenCV 2 threads, again; each cell is the
best of its rounds' medians (the VM's noise is one-sided). Ratios are peer time / tensorcv
time: above 1 means tensorcv is faster. `fast_image_resize`'s Interpolation(Bilinear) mode is
timed beside them (the README's evaluation of it; `--example fir_parity` gives its parity).
"""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402
from tools_common import cpu_model, median_ms  # noqa: E402

JPEG = ROOT / "tests" / "data" / "imgproc" / "bench_1080p.jpg"

ensure_venv(__file__)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import PIL  # noqa: E402
from PIL import Image  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def opencv_times(threads):
    cv2.setNumThreads(threads)
    data = np.fromfile(str(JPEG), dtype=np.uint8)
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
    med = lambda fn: median_ms(fn, min_time=1.0)  # noqa: E731
    out = {}
    out["decode/1080p_jpeg/bgr"] = med(lambda: cv2.imdecode(data, cv2.IMREAD_COLOR))
    out["color/1080p/bgr_to_rgb"] = med(lambda: cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    out["color/1080p/bgr_to_gray"] = med(lambda: cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    for name, flag in [("linear", cv2.INTER_LINEAR), ("area", cv2.INTER_AREA),
                       ("cubic", cv2.INTER_CUBIC)]:
        out[f"resize/1080p_to_224/{name}"] = med(
            lambda flag=flag: cv2.resize(frame, (224, 224), interpolation=flag))

    pil_frame = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    out["resize/1080p_to_224/pil_bilinear"] = med(
        lambda: pil_frame.resize((224, 224), Image.Resampling.BILINEAR))

    def glue():
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        small = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_LINEAR)
        x = small.astype(np.float32) / 255.0
        x = (x - MEAN) / STD
        return np.expand_dims(x, 0)

    out["preprocess/1080p_bgr_to_224_f32/fused"] = med(glue)
    return out


def rust_times(exe):
    line = subprocess.check_output([str(exe)], cwd=ROOT, text=True).strip().splitlines()[-1]
    return json.loads(line)


def best(rounds):
    return {k: min(r[k] for r in rounds) for k in rounds[0]}


def main():
    rounds = 3
    if "--rounds" in sys.argv:
        rounds = max(1, min(20, int(sys.argv[sys.argv.index("--rounds") + 1])))
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "tensorcv-benches",
                           "--example", "imgproc_times"], cwd=ROOT)
    exe = ROOT / "target" / "release" / "examples" / "imgproc_times"
    rs, cv1, cv2t = [], [], []
    for _ in range(rounds):
        rs.append(rust_times(exe))
        cv1.append(opencv_times(1))
        cv2t.append(opencv_times(2))
    rust, one, two = best(rs), best(cv1), best(cv2t)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu_model()}"
          f" | OpenCV {cv2.__version__}, numpy {np.__version__}, Pillow {PIL.__version__}"
          f" | best of {rounds} interleaved rounds")
    print("| operation | tensorcv 1 thread | peer 1 thread | ratio |"
          " tensorcv 2 threads | peer 2 threads | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key in rust:
        if "@" in key:
            continue
        rs1 = rust[key]
        # operations without a 2-thread form run on one thread at both counts
        rs2 = rust.get(f"{key}@2", rs1)
        if key not in one:
            print(f"| {key} | {rs1:.3f} | | | {rs2:.3f} | | |")
            continue
        print(f"| {key} | {rs1:.3f} | {one[key]:.3f} | {one[key] / rs1:.2f}x |"
              f" {rs2:.3f} | {two[key]:.3f} | {two[key] / rs2:.2f}x |")


if __name__ == "__main__":
    main()
