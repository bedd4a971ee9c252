#!/usr/bin/env python3
"""Soak: 10,000 frames through the release `tensorcv` from each kind of source, with the
process's memory read at 1,000 and at 10,000 frames (it must stay flat).

  Y4M       a named pipe fed by this script (no 10,000-frame file on disk)
  AVI       an MJPEG AVI of 10,000 frames, written by `tensorcv --output` from that Y4M
  raw pipe  bgr24 frames on tensorcv's standard input
  HTTP      an MJPEG server (multipart/x-mixed-replace, Content-Length parts) in this script

Each run is `tensorcv detect SOURCE --json` with the built-in face detector on 160x120 frames
of the test video (tests/data/capture/pan.y4m, repeated). RSS is VmRSS from /proc, read when
the 1,000th and the 10,000th result line arrives; peak is VmHWM at the end.

Usage: python3 tools/soak.py [--binary target/release/tensorcv] [--frames 10000]
Standard library only. Prints a table (the README's "Reliability" section shows one).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def y4m_frames():
    """Header and frames (bytes, I420) of the test video."""
    data = (ROOT / "tests/data/capture/pan.y4m").read_bytes()
    end = data.index(b"\n") + 1
    header = data[:end]
    size = 160 * 120 * 3 // 2
    frames = []
    i = end
    while i + 6 + size <= len(data):
        assert data[i:i + 6] == b"FRAME\n"
        frames.append(data[i + 6:i + 6 + size])
        i += 6 + size
    return header, frames


def i420_to_bgr(frame, w=160, h=120):
    """BT.601 I420 to BGR, the test frames as raw bgr24 (slow, done once per frame)."""
    y, u, v = frame[:w * h], frame[w * h:w * h + w * h // 4], frame[w * h + w * h // 4:]
    out = bytearray(w * h * 3)
    for r in range(h):
        for c in range(w):
            Y = y[r * w + c]
            U = u[(r // 2) * (w // 2) + c // 2] - 128
            V = v[(r // 2) * (w // 2) + c // 2] - 128
            k = (r * w + c) * 3
            out[k] = max(0, min(255, int(Y + 1.772 * U)))
            out[k + 1] = max(0, min(255, int(Y - 0.344136 * U - 0.714136 * V)))
            out[k + 2] = max(0, min(255, int(Y + 1.402 * V)))
    return bytes(out)


def rss_kb(pid, key="VmRSS"):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def watch(proc, marks, progress=None):
    """Count result lines on stdout while sampling RSS: (RSS at each mark of `progress` —
    result lines, or frames a server sent —, RSS at the end, peak, lines, seconds)."""
    got = {}
    state = {"lines": 0, "last": None}
    progress = progress or (lambda: state["lines"])
    done = threading.Event()

    def sample():
        while not done.is_set():
            rss = rss_kb(proc.pid)
            if rss:
                state["last"] = rss
                p = progress()
                for m in marks:
                    if p >= m and m not in got:
                        got[m] = rss
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.monotonic()
    peak = 0
    for line in proc.stdout:
        if line.startswith(b"{\"detections\""):
            state["lines"] += 1
            if state["lines"] % 200 == 0:
                peak = max(peak, rss_kb(proc.pid, "VmHWM") or 0)
    seconds = time.monotonic() - t
    peak = max(peak, rss_kb(proc.pid, "VmHWM") or 0)
    done.set()
    sampler.join()
    proc.wait()
    return got, state["last"], peak, state["lines"], seconds


def run(binary, name, source, frames, feed=None, progress=None):
    cmd = [str(binary), "detect", source, "--json"] + (["--raw", "160x120:bgr24"] if source == "-" else [])
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE if feed else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = []
    threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True).start()
    if feed:
        threading.Thread(target=feed, args=(proc.stdin,), daemon=True).start()
    got, last, peak, lines, seconds = watch(proc, {1000, frames - 200}, progress)
    return dict(name=name, lines=lines, rss=got, last=last, peak=peak, seconds=seconds,
                code=proc.returncode,
                err=(err[0] if err else b"").decode(errors="replace").strip().splitlines()[-1:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=ROOT / "target/release/tensorcv", type=Path)
    ap.add_argument("--frames", type=int, default=10_000)
    a = ap.parse_args()
    if not a.binary.exists():
        sys.exit(f"no binary at {a.binary}: cargo build --release -p tensorcv-cli")
    n = a.frames
    header, frames = y4m_frames()
    tmp = Path(tempfile.mkdtemp(prefix="tensorcv-soak-"))
    results = []

    # Y4M through a named pipe
    fifo = tmp / "soak.y4m"
    os.mkfifo(fifo)

    def feed_fifo():
        with open(fifo, "wb") as f:
            f.write(header)
            for i in range(n):
                f.write(b"FRAME\n" + frames[i % len(frames)])

    threading.Thread(target=feed_fifo, daemon=True).start()
    results.append(run(a.binary, "Y4M (named pipe)", str(fifo), n))

    # AVI: 10,000 MJPEG frames written by tensorcv itself
    avi = tmp / "soak.avi"
    fifo.unlink()
    os.mkfifo(fifo)
    threading.Thread(target=feed_fifo, daemon=True).start()
    subprocess.run([str(a.binary), "detect", str(fifo), "--output", str(avi)], cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    results.append(run(a.binary, f"AVI ({avi.stat().st_size / 1e6:.0f} MB MJPEG)", str(avi), n))

    # raw bgr24 frames on stdin
    bgr = [i420_to_bgr(f) for f in frames]

    def feed_stdin(pipe):
        try:
            for i in range(n):
                pipe.write(bgr[i % len(bgr)])
            pipe.close()
        except BrokenPipeError:
            pass

    results.append(run(a.binary, "raw bgr24 pipe (stdin)", "-", n, feed=feed_stdin))

    # HTTP: an MJPEG server sending n parts as fast as the socket takes them
    jpegs = []
    # the AVI's own JPEG chunks
    data = avi.read_bytes()
    i = 0
    while i + 8 < len(data) and len(jpegs) < 16:
        if data[i:i + 4] == b"00dc":
            size = int.from_bytes(data[i + 4:i + 8], "little")
            jpegs.append(data[i + 8:i + 8 + size])
            i += 8 + size
        else:
            i += 1
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    sent = [0]

    def serve():
        c, _ = srv.accept()
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
        try:
            for k in range(n):
                j = jpegs[k % len(jpegs)]
                c.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(j)
                          + j + b"\r\n")
                sent[0] += 1
            c.sendall(b"--frame--\r\n")
        except OSError:
            pass
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    # a live source drops frames the model has no time for: marks count frames sent
    r = run(a.binary, "HTTP MJPEG (live)", f"http://127.0.0.1:{port}/", n,
            progress=lambda: sent[0])
    r["sent"] = sent[0]
    results.append(r)

    mb = lambda kb: f"{kb / 1024:.1f} MB" if kb else "?"
    print(f"{'source':<26} {'frames':>7} {'processed':>9} {'RSS @1000':>10} {'RSS @9800':>10} "
          f"{'RSS end':>9} {'peak':>8} {'fps':>6}  exit")
    ok = True
    for r in results:
        frames_in = r.get("sent", r["lines"])
        at1k, at_n = r["rss"].get(1000), r["rss"].get(n - 200)
        print(f"{r['name']:<26} {frames_in:>7} {r['lines']:>9} {mb(at1k):>10} {mb(at_n):>10} "
              f"{mb(r['last']):>9} {mb(r['peak']):>8} {r['lines'] / r['seconds']:>6.0f}  "
              f"{r['code']} {' '.join(r['err'])}")
        if r["code"] != 0 or not (at1k and at_n) or at_n > at1k + 8 * 1024:
            ok = False
    print("memory flat (within 8 MB from 1,000 to the end): " + ("yes" if ok else "NO"))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
