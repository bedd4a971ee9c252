#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (fuzz/fuzz_targets), made from tests/data and models/.

Usage: python3 tools/fuzz_seeds.py [OUT]   (default fuzz/corpus; one folder per target)

Each target gets the repository's own files of its kind, kept small (libFuzzer mutates faster
on small inputs), plus a few hand-made ones for what the test files do not show (other Y4M
chroma layouts, a two-frame GIF, multipart streams with and without Content-Length, HTTP
requests). Standard library only.
"""

import struct
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def put(out, target, name, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def png(w, h, rgb):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def gif_two_frames():
    """A 2x2, two-frame animated GIF with a loop extension and delays."""
    head = b"GIF89a" + struct.pack("<HH", 2, 2) + b"\x80\x00\x00" + b"\xff\x00\x00\x00\x00\xff"
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = lambda delay, idx: (b"!\xf9\x04\x00" + struct.pack("<H", delay) + b"\x00\x00"
                                + b",\x00\x00\x00\x00\x02\x00\x02\x00\x00"
                                + b"\x02\x03" + bytes([0x84 if idx else 0x04, 0x51 if idx else 0x11, 0x00])
                                + b"\x00")
    return head + loop + frame(10, 0) + frame(20, 1) + b";"


def y4m(w, h, chroma, frames):
    sizes = {"420jpeg": w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2), "422": w * h + 2 * ((w + 1) // 2) * h,
             "444": 3 * w * h, "mono": w * h}
    out = f"YUV4MPEG2 W{w} H{h} F30000:1001 Ip A1:1 C{chroma}\n".encode()
    for i in range(frames):
        out += b"FRAME\n" + bytes((i * 37 + k) % 256 for k in range(sizes[chroma]))
    return out


def multipart(bodies, with_length):
    s = b""
    for b in bodies:
        s += b"--frame\r\nContent-Type: image/jpeg\r\n"
        if with_length:
            s += b"Content-Length: %d\r\n" % len(b)
        s += b"\r\n" + b + b"\r\n"
    return s + b"--frame--\r\n"


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz/corpus"
    img = ROOT / "tests/data/imgproc"
    small = sorted(p for p in img.iterdir() if p.suffix in (".png", ".jpg") and p.stat().st_size <= 40_000)
    for p in small[::3] + [img / "chelsea_q90_420.jpg"]:
        put(out, "image_decode", p.name, p.read_bytes())
    put(out, "image_decode", "tiny.png", png(3, 2, (10, 200, 30)))
    jpeg = (img / "exif_orientation_6.jpg").read_bytes()
    # y4m: the test video's header and two frames, and other layouts
    video = (ROOT / "tests/data/capture/pan.y4m").read_bytes()
    header_end = video.index(b"\n") + 1
    frame = 160 * 120 * 3 // 2 + 6
    put(out, "y4m", "pan2.y4m", video[:header_end + 2 * frame])
    for chroma in ("420jpeg", "422", "444", "mono"):
        put(out, "y4m", f"small_{chroma}.y4m", y4m(5, 3, chroma, 2))
    # avi: the test video, and its start
    avi = (ROOT / "tests/data/capture/pan.avi").read_bytes()
    put(out, "avi", "pan.avi", avi)
    put(out, "avi", "pan_cut.avi", avi[:12_000])
    # gif
    put(out, "gif", "two.gif", gif_two_frames())
    put(out, "gif", "pan.gif", (ROOT / "tests/data/capture/pan.gif").read_bytes()[:20_000])
    # multipart: (piece size, part limit) + a stream
    for i, (piece, limit, length) in enumerate([(0, 255, True), (7, 255, False), (60, 20, True)]):
        put(out, "multipart", f"stream{i}", bytes([piece, limit]) + multipart([jpeg, b"\xff\xd8x\xff\xd9"], length))
    # raw: (w, h, format) + bytes
    for i in range(5):
        put(out, "raw", f"raw{i}", bytes([7, 5, i]) + bytes(range(256)) * 2)
    # models
    for m in ("shapes.onnx", "emotion_int8.onnx"):
        put(out, "onnx", m, (ROOT / "models" / m).read_bytes())
    put(out, "tflite", "shapes_int8.tflite", (ROOT / "models/shapes_int8.tflite").read_bytes())
    for card in sorted((ROOT / "models").glob("*.toml")):
        put(out, "card", card.name, card.read_bytes())
    # http requests to the preview server
    for i, req in enumerate([
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /results HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /frame.jpg?x=1 HTTP/1.0\r\n\r\n",
        b"POST /results HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    ]):
        put(out, "preview_http", f"req{i}", req)
    print(f"seed corpora in {out}")


if __name__ == "__main__":
    main()
