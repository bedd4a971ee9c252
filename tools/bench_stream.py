#!/usr/bin/env python3
"""Throughput and latency of `tensorcv`'s pipelined runner against a sequential loop, on the
same video, with 1 and 2 tract threads (README, "Streams").

It writes a 300-frame 1280x720 MJPEG AVI (a pan across astronaut.png, OpenCV's VideoWriter)
into target/bench_720p.avi once, builds `tensorcv` in release mode, and runs:

    tensorcv detect|segment target/bench_720p.avi --summary --json [--sequential] [--threads N]

printing one table of fps and latency from the runs' JSON summaries.

    python3 tools/bench_stream.py
"""
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__)

import cv2  # noqa: E402

VIDEO = ROOT / "target" / "bench_720p.avi"


def make_video():
    if VIDEO.exists():
        return
    VIDEO.parent.mkdir(exist_ok=True)
    photo = cv2.imread(str(ROOT / "tests" / "data" / "imgproc" / "astronaut.png"))
    big = cv2.resize(photo, (1280, 1280), interpolation=cv2.INTER_CUBIC)
    w = cv2.VideoWriter(str(VIDEO), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1280, 720))
    for i in range(300):
        y = round((1280 - 720) * i / 299)
        w.write(big[y:y + 720])
    w.release()


def main():
    make_video()
    subprocess.check_call(["cargo", "build", "--release", "--locked", "-p", "tensorcv-cli"],
                          cwd=ROOT)
    exe = ROOT / "target" / "release" / "tensorcv"
    rows = []
    for task in ("detect", "segment"):
        for threads in (1, 2):
            for mode in ("sequential", "pipelined"):
                args = [str(exe), task, str(VIDEO), "--summary", "--json", "--threads",
                        str(threads)] + (["--sequential"] if mode == "sequential" else [])
                out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
                s = json.loads(out.stdout.strip().splitlines()[-1])["summary"]
                rows.append((task, threads, mode, s))
    print(f"{'task':<8} {'threads':>7} {'mode':<10} {'fps':>7} {'latency p50':>12} "
          f"{'p95':>7} {'max':>7} {'decode':>7} {'infer':>7}")
    for task, threads, mode, s in rows:
        lat, st = s["latency_ms"], s["stages_ms"]
        print(f"{task:<8} {threads:>7} {mode:<10} {s['fps']:>7.1f} {lat['p50']:>12.1f} "
              f"{lat['p95']:>7.1f} {lat['max']:>7.1f} {st['decode']['p50']:>7.2f} "
              f"{st['inference']['p50']:>7.2f}")


if __name__ == "__main__":
    main()
