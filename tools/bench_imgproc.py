#!/usr/bin/env python3
"""Time tensorcv's imgproc against Python OpenCV on the same 1080p JPEG, and print one table.

    python3 tools/bench_imgproc.py            # runs `cargo bench`, then OpenCV, then prints
    python3 tools/bench_imgproc.py --no-cargo # reuse the last criterion results

The Rust side is the criterion bench `benches/imgproc.rs` (its median estimates are read from
`target/criterion/*/new/estimates.json`); the Python side runs the glue code people write
(`cv2.imread`, `cv2.cvtColor`, `cv2.resize`, `astype(np.float32) / 255`, mean/std, expand_dims;
and Pillow's `Image.resize` for the PIL-compatible resize)
in the venv `tools/.venv` (made and filled by this script on first use). Ratios are
OpenCV time / tensorcv time: above 1 means tensorcv is faster.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402
from tools_common import median_ms  # noqa: E402

JPEG = ROOT / "tests" / "data" / "imgproc" / "bench_1080p.jpg"

ensure_venv(__file__)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import PIL  # noqa: E402
from PIL import Image  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def opencv_times():
    data = np.fromfile(str(JPEG), dtype=np.uint8)
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
    out = {}
    out["decode/1080p_jpeg/bgr"] = median_ms(lambda: cv2.imdecode(data, cv2.IMREAD_COLOR))
    out["color/1080p/bgr_to_rgb"] = median_ms(lambda: cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    out["color/1080p/bgr_to_gray"] = median_ms(lambda: cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    for name, flag in [("linear", cv2.INTER_LINEAR), ("area", cv2.INTER_AREA),
                       ("cubic", cv2.INTER_CUBIC)]:
        out[f"resize/1080p_to_224/{name}"] = median_ms(
            lambda flag=flag: cv2.resize(frame, (224, 224), interpolation=flag))

    pil_frame = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    out["resize/1080p_to_224/pil_bilinear"] = median_ms(
        lambda: pil_frame.resize((224, 224), Image.Resampling.BILINEAR))

    def glue():
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        small = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_LINEAR)
        x = small.astype(np.float32) / 255.0
        x = (x - MEAN) / STD
        return np.expand_dims(x, 0)

    out["preprocess/1080p_bgr_to_224_f32"] = median_ms(glue)
    return out


def criterion_times():
    out = {}
    base = ROOT / "target" / "criterion"
    for est in base.glob("**/new/estimates.json"):
        bench = json.loads((est.parent / "benchmark.json").read_text())
        ns = json.loads(est.read_text())["median"]["point_estimate"]
        out[bench["full_id"]] = ns / 1e6
    return out


def main():
    if "--no-cargo" not in sys.argv:
        subprocess.check_call(["cargo", "bench", "-p", "tensorcv-benches", "--", "--noplot"],
                              cwd=ROOT)
    rust = criterion_times()
    cv = opencv_times()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or ''}"
          f" | OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), numpy {np.__version__},"
          f" Pillow {PIL.__version__}")
    print("| operation | tensorcv (ms) | Python peer (ms) | peer / tensorcv |")
    print("|---|---:|---:|---:|")
    for key, cv_ms in cv.items():
        if key.startswith("preprocess/"):
            for variant in ("fused", "unfused"):
                rs = rust.get(f"{key}/{variant}")
                if rs is not None:
                    print(f"| {key} ({variant}) | {rs:.3f} | {cv_ms:.3f} | {cv_ms / rs:.2f}x |")
            continue
        rs = rust.get(key)
        if rs is None:
            print(f"| {key} | (not run) | {cv_ms:.3f} | |")
        else:
            print(f"| {key} | {rs:.3f} | {cv_ms:.3f} | {cv_ms / rs:.2f}x |")


if __name__ == "__main__":
    main()
