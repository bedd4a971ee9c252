#!/usr/bin/env python3
"""A hostile-input campaign against the release `tensorcv` binary.

Every case runs the binary once and is judged on what a user sees:

  ok       exit 0, 1 or 2, no panic message, done in time, memory under the bound
  panic    a Rust panic (exit 101, or "panicked" on stderr)
  abort    killed by a signal (an allocation failure aborts: SIGABRT)
  hang     not done within the time bound (killed)
  memory   peak RSS above the bound

Case families (``--only`` picks some):

  flags       every numeric flag at the extremes (0, -1, huge, NaN, inf, ...)
  files       mutated images, Y4M, AVI, GIF (bit flips, truncation, interesting values
              at random offsets, duplicated and deleted runs)
  models      mutated ONNX and TFLite files, and mutated model cards
  streams     hostile MJPEG-over-HTTP servers and raw pipes
  serve       hostile clients of --serve (slow headers, many connections)
  downstream  stdout closed early (| head -1), /dev/full, closed stdout

Usage: python3 tools/hostile.py [--binary target/release/tensorcv] [--cases N]
       [--seed S] [--jobs J] [--only flags,files,...] [--keep DIR]

Needs only the Python standard library. Failing inputs are copied to --keep (default
target/hostile) with a line saying how to reproduce them.
"""

import argparse
import concurrent.futures as cf
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMG = "tests/data/imgproc/astronaut.png"
JPG = "tests/data/imgproc/chelsea_q90_420.jpg"
TIME_BOUND = 30.0  # seconds per case
MEMORY_BOUND_MB = 1024

INTERESTING = [
    b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00",
    b"\xff\xff", b"\x7f\xff", b"\x00\x80", b"\x01\x00\x00\x00", b"\x00\x00\x01\x00",
    b"\xff\xff\xff\x7f", b"\x00\x00\x00\x40",
]


class Result:
    def __init__(self, name, argv, verdict, code, seconds, rss_mb, tail, files=()):
        self.name, self.argv, self.verdict, self.code = name, argv, verdict, code
        self.seconds, self.rss_mb, self.tail, self.files = seconds, rss_mb, tail, files


def run_case(binary, name, args, stdin=None, stdout=subprocess.DEVNULL, files=(), env=None,
             timeout=TIME_BOUND, shell=None):
    """Run one case; judge it."""
    argv = [str(binary)] + [str(a) for a in args]
    start = time.monotonic()
    kw = dict(cwd=ROOT, stdin=stdin if stdin is not None else subprocess.DEVNULL,
              stdout=stdout, stderr=subprocess.PIPE, start_new_session=True,
              env=dict(os.environ, RUST_BACKTRACE="0", **(env or {})))
    if shell:
        proc = subprocess.Popen(shell, shell=True, executable="/bin/bash", **kw)
        argv = [shell]
    else:
        proc = subprocess.Popen(argv, **kw)
    err = bytearray()

    def drain():
        while True:
            b = proc.stderr.read(65536)
            if not b:
                break
            if len(err) < 1 << 20:
                err.extend(b)

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    hung = False
    deadline = start + timeout
    status = rusage = None
    while True:
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, rusage = st, ru
            break
        if time.monotonic() > deadline:
            hung = True
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)
    t.join(2)
    seconds = time.monotonic() - start
    rss_mb = rusage.ru_maxrss / 1024
    text = err.decode("utf8", "replace")
    code = proc.returncode
    if hung:
        verdict = "hang"
    elif code < 0:
        verdict = "abort"
    elif code == 101 or "panicked" in text:
        verdict = "panic"
    elif rss_mb > MEMORY_BOUND_MB:
        verdict = "memory"
    elif code in (0, 1, 2):
        verdict = "ok"
    else:
        verdict = f"exit {code}"
    tail = " | ".join(l for l in text.strip().splitlines()[-3:])[:300]
    return Result(name, argv, verdict, code, seconds, rss_mb, tail, files)


# ---------------------------------------------------------------- flags

EXTREMES = ["0", "-1", "1e308", "-1e308", "inf", "-inf", "nan", "NaN", "18446744073709551615",
            "18446744073709551616", "9223372036854775807", "4294967296", "1e-300", "0.0", "",
            " ", "0x10", "1,2", "2.5"]


def flag_cases():
    """(name, args) pairs."""
    det = ["detect", IMG]
    cls = ["classify", "-m", "emotion", "--roi-from", "face", IMG]
    seg = ["segment", IMG]
    video = ["detect", "tests/data/capture/pan.avi"]
    flags = {
        "--threads": det, "--top-k": cls, "--score-threshold": det, "--iou-threshold": det,
        "--max-detections": det, "--threshold": seg, "--max-frames": video, "--every": video,
        "--fps": video, "--timeout": ["detect", "http://127.0.0.1:9/x"], "--decoders": det,
        "--roi-scale": cls, "--roi-pad": cls, "--camera-fps": ["detect", "camera:99"],
    }
    for flag, base in flags.items():
        for v in EXTREMES:
            yield f"{flag} {v!r}", base + [flag, v]
    for flag, base in {"--size": det, "--camera-size": ["detect", "camera:99"]}.items():
        for v in ["0x0", "1x1", "100000x100000", "4294967296x1", "18446744073709551615x2",
                  "-1x5", "x", "3x", "65536x65536", "nanxnan"]:
            yield f"{flag} {v}", base + [flag, v]
    for v in ["nan,0,0", "inf,1,1", "1,2", "1e39,0,0", "0,0,0,0", ",,"]:
        yield f"--mean {v}", det + ["--mean", v]
        yield f"--std {v}", det + ["--std", v]
    for v in ["0x0:rgb24", "100000x100000:rgb24", "65536x65536:gray", "3x3:nv12", "2x2:bad",
              "18446744073709551615x1:gray", "8192x8192:rgb24"]:
        yield f"--raw {v}", ["detect", "--raw", v, "-"]
    for v in ["blur:0", "blur:1", "blur:99999999", "blur:18446744073709551615", "blur:-3",
              "#12345", "#gggggg", "/nonexistent.png", "blur:100001"]:
        yield f"--background {v}", ["segment", IMG, "--save", "{tmp}", "--background", v]
    for v in ["0", "-1", "18446744073709551615", "1000000000"]:
        yield f"bench --iterations {v}", ["bench", "-m", "face", "--iterations", v]
        yield f"bench --top {v}", ["bench", "-m", "face", "--iterations", "2", "--top", v]
        yield f"bench --threads {v}", ["bench", "-m", "face", "--iterations", "2", "--threads", v]
    for v in ["99999", "0.0.0.0:99999", "[::1]:0", "not an address", "1.2.3.4:80"]:
        yield f"--serve {v!r}", ["detect", "tests/data/capture/pan.avi", "--serve", v]
    yield "--output nodir/x.avi", ["detect", "tests/data/capture/pan.avi", "--output",
                                   "nodir/x.avi"]
    yield "--output /dev/full", ["detect", "tests/data/capture/pan.avi", "--output",
                                 "/dev/full.y4m"]
    yield "--labels /dev/zero", ["classify", "-m", "emotion", IMG, "--labels", "/dev/zero"]
    yield "--labels dir", ["classify", "-m", "emotion", IMG, "--labels", "tests"]


# ---------------------------------------------------------------- mutations

def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 8, 16])):
        if not b:
            break
        op = rng.randrange(7)
        i = rng.randrange(len(b))
        if op == 0:  # bit flip
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # random byte
            b[i] = rng.randrange(256)
        elif op == 2:  # interesting value
            v = rng.choice(INTERESTING)
            b[i:i + len(v)] = v
        elif op == 3:  # truncate
            del b[rng.randrange(max(1, len(b) // 2), len(b) + 1):]
        elif op == 4:  # delete a run
            del b[i:i + rng.randrange(1, 64)]
        elif op == 5:  # duplicate a run
            j = min(len(b), i + rng.randrange(1, 256))
            b[i:i] = b[i:j]
        else:  # header-focused: a value in the first 256 bytes
            i = rng.randrange(min(256, len(b)))
            v = rng.choice(INTERESTING)
            b[i:i + len(v)] = v
    return bytes(b)


def file_cases(rng, n, tmp):
    seeds = [
        (IMG, ["detect"]), (JPG, ["detect"]), ("tests/data/imgproc/coffee_bgra.png", ["detect"]),
        ("tests/data/imgproc/exif_orientation_6.jpg", ["detect"]),
        ("tests/data/capture/pan.avi", ["detect", "--max-frames", "4"]),
        ("tests/data/capture/pan.y4m", ["detect", "--max-frames", "4"]),
        ("tests/data/capture/pan.gif", ["detect", "--max-frames", "4"]),
    ]
    seeds = [(s, c) for s, c in seeds if (ROOT / s).exists()]
    for k in range(n):
        seed, cmd = seeds[k % len(seeds)]
        data = mutate((ROOT / seed).read_bytes(), rng)
        p = Path(tmp) / f"m{k}{Path(seed).suffix}"
        p.write_bytes(data)
        yield f"mutated {seed} #{k}", cmd + [p], [p]


def bomb_cases(tmp):
    """Small files that decode or load into a lot: a PNG of 16384x8192 zeros (400 kB), the
    kept ONNX and GIF bombs of tests/data/fuzz."""
    import struct
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    w, h = 16384, 8192
    c = zlib.compressobj(9)
    row = b"\x00" * (w * 3 + 1)
    idat = b"".join(c.compress(row) for _ in range(h)) + c.flush()
    png = Path(tmp) / "bomb.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                    + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    yield "bomb: PNG 16384x8192 of zeros", ["detect", png], [png]
    for f in sorted((ROOT / "tests/data/fuzz/onnx").glob("*")):
        yield f"bomb: {f.name}", ["inspect", f], []
        yield f"bomb: {f.name} (run)", ["run", "-m", f, IMG], []
    for f in sorted((ROOT / "tests/data/fuzz/gif").glob("crash-*")):
        g = Path(tmp) / (f.name + ".gif")
        g.write_bytes(f.read_bytes())
        yield f"bomb: {f.name}", ["detect", g], [g]


def model_cases(rng, n, tmp):
    models = [m for m in ["models/face_detection_short_range.onnx", "models/emotion.onnx",
                          "models/shapes.onnx", "models/shapes_int8.tflite",
                          "models/emotion_int8.onnx"] if (ROOT / m).exists()]
    for k in range(n):
        seed = models[k % len(models)]
        d = Path(tmp) / f"model{k}"
        d.mkdir()
        src = ROOT / seed
        dst = d / src.name
        card = src.with_suffix(".toml")
        if k % 3 == 2 and card.exists():
            # a mutated card beside the real model
            shutil.copy(src, dst)
            text = card.read_bytes()
            dst.with_suffix(".toml").write_bytes(mutate(text, rng))
        else:
            dst.write_bytes(mutate(src.read_bytes(), rng))
            if card.exists():
                shutil.copy(card, dst.with_suffix(".toml"))
        files = [dst, dst.with_suffix(".toml")]
        if k % 2:
            yield f"mutated {seed} #{k} (inspect)", ["inspect", dst], files
        else:
            yield f"mutated {seed} #{k} (run)", ["run", "-m", dst, IMG], files


# ---------------------------------------------------------------- streams

class Server:
    """A one-purpose TCP server: `behave(conn)` talks to each client."""

    def __init__(self, behave):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.behave = behave
        self.stop = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.client, args=(c,), daemon=True).start()

    def client(self, c):
        try:
            c.recv(65536)
            self.behave(c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.sock.close()


def jpeg_bytes():
    return (ROOT / JPG).read_bytes()


def stream_behaviours():
    jpg = jpeg_bytes()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"

    def endless_part(c):
        c.sendall(head + b"--frame\r\nContent-Type: image/jpeg\r\n\r\n")
        chunk = b"\x00" * 65536
        for _ in range(4096):  # 256 MB, never an end-of-image marker
            c.sendall(chunk)

    def wrong_boundary(c):
        c.sendall(head)
        for _ in range(20):
            c.sendall(b"--other\r\nContent-Type: image/jpeg\r\n\r\n" + jpg + b"\r\n")

    def chunked(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame"
                  b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):
            part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(
                jpg) + jpg + b"\r\n"
            for i in range(0, len(part), 1000):
                piece = part[i:i + 1000]
                c.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        c.sendall(b"0\r\n\r\n")

    def huge_length(c):
        c.sendall(head + b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                  b"99999999999999\r\n\r\n" + jpg)

    def trickle(c):
        c.sendall(head + b"--frame\r\nContent-Type: image/jpeg\r\n\r\n")
        for i in range(60):  # one byte a second: never idle, never a frame
            c.sendall(jpg[i:i + 1])
            time.sleep(1)

    def silent(c):
        time.sleep(60)

    def garbage_status(c):
        c.sendall(b"\x00\xff" * 5000)

    def endless_headers(c):
        c.sendall(b"HTTP/1.1 200 OK\r\n")
        for i in range(100000):
            c.sendall(b"X-%d: y\r\n" % i)

    def long_line(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=" +
                  b"a" * 10_000_000 + b"\r\n\r\n")

    return {
        "endless part": (endless_part, []), "wrong boundary": (wrong_boundary, []),
        "chunked": (chunked, []), "huge Content-Length": (huge_length, []),
        "trickle": (trickle, ["--timeout", "5"]), "silent": (silent, ["--timeout", "2"]),
        "garbage status": (garbage_status, []), "endless headers": (endless_headers, []),
        "long header line": (long_line, []),
    }


def stream_cases(binary):
    out = []
    for name, (behave, extra) in stream_behaviours().items():
        s = Server(behave)
        out.append(run_case(binary, f"http: {name}", ["detect", f"http://{s.addr}/"] + extra))
        s.close()
    # raw pipes: a partial frame, nothing at all, a slow producer
    for name, data in [("raw: partial frame", b"\x00" * 1000), ("raw: empty", b"")]:
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            out.append(run_case(binary, name, ["detect", "--raw", "64x64:rgb24", "-"], stdin=f))
    return out


# ---------------------------------------------------------------- serve

def serve_cases(binary):
    """Slow clients hold connections open; a normal client must still get /results."""
    proc = subprocess.Popen([str(binary), "detect", "tests/data/capture/pan.avi", "--fps", "2",
                             "--serve", "127.0.0.1:0"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=dict(os.environ, RUST_BACKTRACE="0"))
    line = proc.stderr.readline().decode()
    addr = line.strip().removeprefix("tensorcv: preview on http://").rstrip("/")
    slow = []
    results = []
    try:
        for _ in range(64):
            s = socket.create_connection(addr.rsplit(":", 1) and (addr.rsplit(":", 1)[0],
                                                                   int(addr.rsplit(":", 1)[1])))
            s.sendall(b"GET /results HTTP/1.1\r\n")
            slow.append(s)
        time.sleep(1)
        for s in slow:
            try:
                s.sendall(b"X-a: b\r\n")
            except OSError:
                pass
        t = time.monotonic()
        ok = 0
        for _ in range(20):
            try:
                c = socket.create_connection((addr.rsplit(":", 1)[0], int(addr.rsplit(":", 1)[1])),
                                             timeout=5)
                c.sendall(b"GET /results HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                got = c.recv(100)
                ok += got.startswith(b"HTTP/1.1 200")
                c.close()
            except OSError:
                pass
        seconds = time.monotonic() - t
        verdict = "ok" if ok == 20 else "hang"
        results.append(Result("serve: 64 slow clients, then 20 normal", [line.strip()], verdict,
                              0, seconds, 0, f"{ok}/20 answered"))
    finally:
        for s in slow:
            s.close()
        proc.kill()
        proc.wait()
    return results


# ---------------------------------------------------------------- downstream

def downstream_cases(binary):
    b = str(binary)
    video = "tests/data/capture/pan.avi"
    return [
        run_case(binary, "stdout: | head -1", [], shell=f"{b} detect {video} --json | head -1"),
        run_case(binary, "stdout: | head -c 10 (output -)",
                 [], shell=f"{b} detect {video} --output - | head -c 10 >/dev/null"),
        run_case(binary, "stdout: > /dev/full", [], shell=f"{b} detect {video} --json > /dev/full"),
        run_case(binary, "stdout: closed", [], shell=f"{b} detect {video} --json >&-"),
        run_case(binary, "stderr: | head -1", [],
                 shell=f"{b} detect {video} --summary 2>&1 >/dev/null | head -1"),
        run_case(binary, "models: | head -1", [], shell=f"{b} models | head -1"),
        run_case(binary, "inspect: > /dev/full", [], shell=f"{b} inspect face > /dev/full"),
    ]


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=ROOT / "target/release/tensorcv", type=Path)
    ap.add_argument("--cases", type=int, default=600, help="mutated files and models, each")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="flags,files,models,streams,serve,downstream")
    ap.add_argument("--keep", default=ROOT / "target/hostile", type=Path)
    a = ap.parse_args()
    if not a.binary.exists():
        sys.exit(f"no binary at {a.binary}: cargo build --release -p tensorcv-cli")
    only = set(a.only.split(","))
    rng = random.Random(a.seed)
    results = []
    tmp = tempfile.mkdtemp(prefix="tensorcv-hostile-")
    start = time.monotonic()
    try:
        jobs = []
        if "flags" in only:
            for name, args in flag_cases():
                d = tempfile.mkdtemp(dir=tmp)
                jobs.append((name, [x.replace("{tmp}", d) for x in args], ()))
        if "files" in only:
            jobs += list(file_cases(rng, a.cases, tmp))
        if "models" in only:
            jobs += list(model_cases(rng, a.cases, tmp))
            jobs += list(bomb_cases(tmp))
        with cf.ThreadPoolExecutor(a.jobs) as ex:
            futs = [ex.submit(run_case, a.binary, n, args, files=f) for n, args, f in jobs]
            for f in cf.as_completed(futs):
                results.append(f.result())
        if "streams" in only:
            results += stream_cases(a.binary)
        if "serve" in only:
            results += serve_cases(a.binary)
        if "downstream" in only:
            results += downstream_cases(a.binary)
        bad = [r for r in results if r.verdict != "ok"]
        a.keep.mkdir(parents=True, exist_ok=True)
        with open(a.keep / "failures.txt", "w") as log:
            for i, r in enumerate(bad):
                kept = []
                for f in r.files:
                    if Path(f).exists():
                        dst = a.keep / f"{i}-{Path(f).name}"
                        shutil.copy(f, dst)
                        kept.append(str(dst))
                log.write(f"{r.verdict}\t{r.name}\t{' '.join(map(str, r.argv))}\t{kept}\t"
                          f"{r.tail}\n")
        counts = {}
        for r in results:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        for r in sorted(bad, key=lambda r: (r.verdict, r.name)):
            print(f"{r.verdict:7} {r.name}: {r.tail}")
        worst = max(results, key=lambda r: r.rss_mb) if results else None
        slowest = max(results, key=lambda r: r.seconds) if results else None
        print(f"\n{len(results)} cases in {time.monotonic() - start:.0f} s: " +
              ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if worst:
            print(f"peak RSS {worst.rss_mb:.0f} MB ({worst.name}); slowest "
                  f"{slowest.seconds:.1f} s ({slowest.name})")
        print(f"failures: {a.keep / 'failures.txt'}")
        return 1 if bad else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
