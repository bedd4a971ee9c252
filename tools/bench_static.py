#!/usr/bin/env python3
"""The static (musl) binaries against the glibc build, end to end (issue 18's table): the same
200 1080p JPEG files as tools/bench_peers.py → `tensorcv detect --json --summary DIR` with the
built-in BlazeFace, every build in a fresh process, in interleaved rounds (the order rotates
each round), so a slow spell of this shared VM falls on every build alike.

For each build: the median wall time, user and system CPU seconds (the child's own rusage),
peak RSS, the stripped size, and whether its detections equal the first build's (every
record but its timings). Ratios are build / the first build (below 1.05: within 5 %).

    python3 tools/bench_static.py [--frames 200] [--rounds 7] [--build]
        [--bin LABEL=PATH ...]          (default: glibc release, musl dist)

`--build` builds the default binaries first (`cargo build --release -p tensorcv-cli` and
`cargo build --profile dist --target x86_64-unknown-linux-musl -p tensorcv-cli`).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__, ".zoo-venv")

import tools_common  # noqa: E402

FRAMES_DIR = ROOT / "target" / "bench_1080p_frames"
DEFAULT = [
    ("glibc (release)", ROOT / "target" / "release" / "tensorcv",
     ["cargo", "build", "--release", "--locked", "-p", "tensorcv-cli"]),
    ("musl static (dist)", ROOT / "target" / "x86_64-unknown-linux-musl" / "dist" / "tensorcv",
     ["cargo", "build", "--profile", "dist", "--locked", "--target",
      "x86_64-unknown-linux-musl", "-p", "tensorcv-cli"]),
]


def run(exe, frames_dir):
    """One run: wall s, user s, sys s, peak RSS MB, stdout."""
    t = time.perf_counter()
    p = subprocess.Popen([str(exe), "detect", "--json", "--summary", str(frames_dir)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{exe} failed ({status})")
    return wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss / 1024, out


def detections(out):
    """The records without their timings (what must agree between builds)."""
    records = []
    for line in out.decode().splitlines():
        r = json.loads(line)
        if "summary" in r:
            continue
        r.pop("timings_ms", None)
        records.append(r)
    return records


def stripped_size(exe):
    tmp = ROOT / "target" / "tmp" / (exe.name + ".stripped")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["strip", "-o", str(tmp), str(exe)], check=True)
    return tmp.stat().st_size / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--build", action="store_true", help="build the default binaries first")
    ap.add_argument("--bin", action="append", default=[], metavar="LABEL=PATH")
    args = ap.parse_args()
    if not 1 <= args.frames <= 10000 or not 1 <= args.rounds <= 100:
        raise SystemExit("--frames 1..10000, --rounds 1..100")
    tools_common.make_frames(FRAMES_DIR, args.frames)
    frames = sorted(FRAMES_DIR.glob("*.jpg"))[:args.frames]
    frames_dir = ROOT / "target" / "tmp" / f"bench_static_{args.frames}"
    if not frames_dir.exists() or len(list(frames_dir.iterdir())) != len(frames):
        frames_dir.mkdir(parents=True, exist_ok=True)
        for f in frames:
            link = frames_dir / f.name
            if not link.exists():
                link.symlink_to(f)
    if args.bin:
        builds = [(b.split("=", 1)[0], Path(b.split("=", 1)[1])) for b in args.bin]
    else:
        if args.build:
            for _, _, cmd in DEFAULT:
                subprocess.check_call(cmd, cwd=ROOT)
        builds = [(label, exe) for label, exe, _ in DEFAULT]
    for label, exe in builds:
        if not exe.exists():
            raise SystemExit(f"{label}: {exe} is missing (build it, or pass --build)")
    # one warm-up run each (page cache, CPU frequency), then interleaved rounds
    results = {label: [] for label, _ in builds}
    reference = None
    agree = {}
    for label, exe in builds:
        out = run(exe, frames_dir)[4]
        d = detections(out)
        if reference is None:
            reference = d
        agree[label] = d == reference
        if len(d) != len(frames):
            raise SystemExit(f"{label}: {len(d)} records for {len(frames)} files")
    for r in range(args.rounds):
        order = builds[r % len(builds):] + builds[:r % len(builds)]
        for label, exe in order:
            results[label].append(run(exe, frames_dir)[:4])
    base = statistics.median(w for w, *_ in results[builds[0][0]])
    rows = []
    for label, exe in builds:
        rs = results[label]
        wall = statistics.median(x[0] for x in rs)
        rows.append(
            f"| {label} | {stripped_size(exe):.1f} | {wall:.3f} | {wall / base:.3f} | "
            f"{statistics.median(x[1] for x in rs):.2f} | {statistics.median(x[2] for x in rs):.2f} "
            f"| {max(x[3] for x in rs):.0f} | {'yes' if agree[label] else 'NO'} |")
    cpu = tools_common.cpu_model()
    print(f"{os.cpu_count()} cores ({cpu}), {len(frames)} 1080p JPEG files → "
          f"`tensorcv detect --json --summary`, {args.rounds} interleaved rounds, medians\n")
    print("| build | stripped MB | wall s | × first | user s | sys s | peak RSS MB | "
          "same detections |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if not all(agree.values()):
        raise SystemExit("the builds' detections differ")


if __name__ == "__main__":
    main()
