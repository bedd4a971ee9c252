#!/usr/bin/env python3
"""End to end against the Python peers, on the same files (issue 6's table): 200 1080p JPEGs
(a pan across astronaut.png) → face detections with the zoo's BlazeFace.

- tensorcv: `tensorcv detect DIR --json --summary` (release build, pipelined runner);
- the seed's Python pipeline — cv2.imread → cvtColor(BGR2RGB) → letterbox resize →
  astype(float32)/127.5-1 → expand_dims → the model → NumPy anchor decoding and weighted NMS —
  with three engines: onnxruntime (the same ONNX file), TensorFlow's TFLite interpreter (the
  original .tflite from the mediapipe wheel, as the zoo was built) and cv2.dnn (the ONNX file).

Every run is a fresh process: the wall time includes start-up; start-up alone is the time to
the first result on one image; peak RSS is the child's ru_maxrss. Ratios are peer / tensorcv
(above 1: tensorcv is faster). Writes docs/benchmarks.md and docs/benchmarks.svg.

    python3 tools/bench_peers.py [--frames 200]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__, ".zoo-venv")

import cv2  # noqa: E402
import tools_common  # noqa: E402

FRAMES_DIR = ROOT / "target" / "bench_1080p_frames"
ONNX = ROOT / "models" / "face_detection_short_range.onnx"
TFLITE = ROOT / "tools" / ".cache" / "face_detection_short_range.tflite"
EXE = ROOT / "target" / "release" / "tensorcv"

# The Python pipeline, as a user writes it; run in a child process per engine.
PEER = r'''
import sys, time, glob
t0 = time.perf_counter()
import cv2, numpy as np
engine, frames_dir, model, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# "reduced": OpenCV's own reduced decoding (1/8, as --fast-decode picks for 1080p → 128x128)
READ_FLAG = cv2.IMREAD_REDUCED_COLOR_8 if sys.argv[5:] == ["reduced"] else cv2.IMREAD_COLOR
if engine == "onnxruntime":
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    def run(x):
        r, c = sess.run(["regressors", "classificators"], {name: x})
        return r, c
elif engine == "tflite":
    import tensorflow as tf
    it = tf.lite.Interpreter(model_path=model, num_threads=2)
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    outs = {d["name"]: d["index"] for d in it.get_output_details()}
    ri = [i for n, i in outs.items() if "regressors" in n][0]
    ci = [i for n, i in outs.items() if "classificators" in n][0]
    def run(x):
        it.set_tensor(inp, x); it.invoke()
        return it.get_tensor(ri), it.get_tensor(ci)
else:
    cv2.setNumThreads(2)
    net = cv2.dnn.readNetFromONNX(model)
    names = net.getUnconnectedOutLayersNames()
    def run(x):
        net.setInput(x)
        outs = dict(zip(names, net.forward(names)))
        r = [v for k, v in outs.items() if "regressors" in k][0]
        c = [v for k, v in outs.items() if "classificators" in k][0]
        return r, c

# MediaPipe's SSD anchors for BlazeFace short range (fixed size)
anchors = []
for stride, n in ((8, 2), (16, 6)):
    fm = 128 // stride
    for y in range(fm):
        for x in range(fm):
            for _ in range(n):
                anchors.append(((x + 0.5) / fm, (y + 0.5) / fm))
anchors = np.array(anchors, np.float32)

def detect(bgr):
    h, w = bgr.shape[:2]
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    s = min(128 / w, 128 / h)
    nw, nh = round(w * s), round(h * s)
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.zeros((128, 128, 3), np.uint8)
    ox, oy = (128 - nw) // 2, (128 - nh) // 2
    canvas[oy:oy + nh, ox:ox + nw] = small
    x = np.expand_dims(canvas.astype(np.float32) / 127.5 - 1.0, 0)
    r, c = run(x)
    r, c = r.reshape(896, 16), c.reshape(896)
    scores = 1 / (1 + np.exp(-np.clip(c, -100, 100)))
    keep = scores >= 0.5
    r, scores, a = r[keep], scores[keep], anchors[keep]
    cx = r[:, 0] / 128 + a[:, 0]; cy = r[:, 1] / 128 + a[:, 1]
    bw = r[:, 2] / 128; bh = r[:, 3] / 128
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    out = []
    while len(boxes):
        ix1 = np.maximum(boxes[0, 0], boxes[:, 0]); iy1 = np.maximum(boxes[0, 1], boxes[:, 1])
        ix2 = np.minimum(boxes[0, 2], boxes[:, 2]); iy2 = np.minimum(boxes[0, 3], boxes[:, 3])
        inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        iou = inter / (area[0] + area - inter)
        m = iou > 0.3
        wsum = scores[m].sum()
        b = (boxes[m] * scores[m, None]).sum(0) / wsum
        # back to the photo: undo the letterbox
        b = (b * 128 - [ox, oy, ox, oy]) / s
        out.append((b.tolist(), float(scores[0])))
        boxes, scores = boxes[~m], scores[~m]
    return out

files = sorted(glob.glob(frames_dir + "/*.jpg"))[:limit]
first = None
n = 0
for f in files:
    found = detect(cv2.imread(f, READ_FLAG))
    n += len(found)
    if first is None:
        first = time.perf_counter() - t0
print(f"{first:.4f} {n}")
'''


def make_frames(n):
    tools_common.make_frames(FRAMES_DIR, n)


def tflite_model():
    if TFLITE.exists():
        return TFLITE
    TFLITE.parent.mkdir(parents=True, exist_ok=True)
    tmp = TFLITE.parent / "mp"
    subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d",
                           str(tmp), "mediapipe==0.10.14", "--python-version", "3.11",
                           "--platform", "manylinux_2_17_x86_64", "--only-binary=:all:"])
    import zipfile
    wheel = next(tmp.glob("mediapipe-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        TFLITE.write_bytes(z.read(
            "mediapipe/modules/face_detection/face_detection_short_range.tflite"))
    return TFLITE


WRAP = ("import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(r.stdout)\n"
        "sys.stderr.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
        "sys.exit(r.returncode)\n")


REPEAT = 3


def timed(cmd):
    """Wall seconds (the median of REPEAT runs: this shared VM's timings move by 20 %), the
    command's own peak RSS (MB, through a wrapper process; the largest) and the last stdout."""
    walls, rss = [], 0
    for _ in range(REPEAT):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", WRAP, *cmd], capture_output=True, text=True,
                             check=True, cwd=ROOT)
        walls.append(time.perf_counter() - t)
        rss = max(rss, int(out.stderr.strip().splitlines()[-1]) / 1024)
    return sorted(walls)[len(walls) // 2], rss, out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (the median)")
    args = ap.parse_args()
    global REPEAT
    REPEAT = args.repeat
    make_frames(args.frames)
    subprocess.check_call(["cargo", "build", "--release", "--locked", "-p", "tensorcv-cli"],
                          cwd=ROOT)
    rows = {}
    # the wrapper's own start-up (a Python interpreter), taken off every start-up figure
    base_wall = min(timed(["true"])[0] for _ in range(5))
    # tensorcv: start-up to the first result on one image, then the whole folder
    one = str(sorted(FRAMES_DIR.glob("*.jpg"))[0])
    wall1, rss1, _ = timed([str(EXE), "detect", "--json", one])
    wall, rss, out = timed([str(EXE), "detect", "--json", "--summary", str(FRAMES_DIR),
                            "--max-frames", str(args.frames)])
    records = [json.loads(line) for line in out.splitlines()]
    faces = sum(len(r.get("detections", [])) for r in records if "summary" not in r)
    rows["tensorcv"] = dict(fps=args.frames / wall, startup=wall1 - base_wall, rss1=rss1,
                            rss=rss, faces=faces)
    # the levers one by one: tract's own operators instead of tensorcv's kernels; reduced JPEG
    # decoding
    for label, flag in (("tensorcv --tract-only", "--tract-only"),
                        ("tensorcv --fast-decode", "--fast-decode")):
        w1, r1, _ = timed([str(EXE), "detect", "--json", flag, one])
        w, r, out = timed([str(EXE), "detect", "--json", "--summary", flag, str(FRAMES_DIR),
                           "--max-frames", str(args.frames)])
        records = [json.loads(line) for line in out.splitlines()]
        rows[label] = dict(fps=args.frames / w, startup=w1 - base_wall, rss1=r1, rss=r,
                           faces=sum(len(x.get("detections", [])) for x in records
                                     if "summary" not in x))
    for engine, model, extra in (("onnxruntime", ONNX, []), ("tflite", tflite_model(), []),
                                 ("cv2.dnn", ONNX, []),
                                 ("onnxruntime + IMREAD_REDUCED_COLOR_8", ONNX, ["reduced"])):
        name = engine.split()[0]
        w1, r1, _ = timed([sys.executable, "-c", PEER, name, str(FRAMES_DIR), str(model), "1",
                           *extra])
        w, r, o = timed([sys.executable, "-c", PEER, name, str(FRAMES_DIR), str(model),
                         str(args.frames), *extra])
        rows[engine] = dict(fps=args.frames / w, startup=w1 - base_wall, rss1=r1, rss=r,
                            faces=int(o.split()[1]))
    base = rows["tensorcv"]
    lines = [
        f"Measured by `python3 tools/bench_peers.py` on {tools_common.cpu_model()}, "
        f"{os.cpu_count()} cores, {args.frames} 1080p JPEG files (q 90) → BlazeFace detections; "
        "one run, each engine in a fresh process (tensorcv: default 1 tract thread and its "
        "pipelined runner; the peers: 2 intra-op threads, one frame after another, as the seed "
        f"glue is written). Files/s include start-up; each figure is the median of {REPEAT} "
        "runs.", "",
        "| pipeline | files/s | × tensorcv's time | start-up to first result, s | "
        "peak RSS one image, MB | peak RSS all files, MB | faces found |",
        "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        ratio = base["fps"] / r["fps"]
        lines.append(f"| {name} | {r['fps']:.1f} | {ratio:.2f} | {r['startup']:.3f} | "
                     f"{r['rss1']:.0f} | {r['rss']:.0f} | {r['faces']} |")
    table = "\n".join(lines)
    print(table)
    # a bar chart of files/s
    w, bar_h, gap = 640, 26, 10
    top = max(r["fps"] for r in rows.values())
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{len(rows) * (bar_h + gap) + 40}" font-family="sans-serif" font-size="13">',
           f'<text x="10" y="20">1080p JPEG → face detections, files/s ({args.frames} files)</text>']
    for i, (name, r) in enumerate(rows.items()):
        y = 32 + i * (bar_h + gap)
        length = (w - 200) * r["fps"] / top
        color = "#2a7" if name.startswith("tensorcv") else "#888"
        svg.append(f'<text x="10" y="{y + 18}">{name}</text>')
        svg.append(f'<rect x="270" y="{y}" width="{length * 0.75:.1f}" height="{bar_h}" '
                   f'fill="{color}"/>')
        svg.append(f'<text x="{275 + length * 0.75:.1f}" y="{y + 18}">{r["fps"]:.1f}</text>')
    svg.append("</svg>")
    docs = ROOT / "docs"
    (docs / "benchmarks.svg").write_text("\n".join(svg) + "\n")
    (docs / "benchmarks.md").write_text(
        "# Benchmarks\n\n## End to end against the Python peers\n\n" + table +
        "\n\n![files per second](benchmarks.svg)\n\n"
        "Inference alone, per model and engine: `python3 tools/bench_zoo.py` (README, Speed); "
        "where tract spends its time: `tensorcv bench -m MODEL`.\n")


if __name__ == "__main__":
    main()
