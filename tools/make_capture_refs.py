#!/usr/bin/env python3
"""Test videos for `crates/capture` and the streaming CLI tests, made from a real photo.

A camera pans and zooms across astronaut.png (tests/data/imgproc), so the face moves and
changes size: each frame is a crop window of the photo resized to 160x120 with cv2.resize
(INTER_AREA). Written as:

- `pan.avi`  — MJPEG in AVI by OpenCV's own `cv2.VideoWriter(..., fourcc MJPG)`, 10 fps;
- `pan.y4m`  — Y4M 4:2:0 (`cv2.cvtColor(BGR2YUV_I420)` frames behind a YUV4MPEG2 header);
- `pan.gif`  — the first 8 frames as an animated GIF (Pillow), 100 ms per frame;
- `pan_cv2_frame0.png` — frame 0 of pan.avi as `cv2.VideoCapture` decodes it;
- `pan.json` — the crop window of every frame, so a test can map the face found in the still
  photo into each frame.

    python3 tools/make_capture_refs.py
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

OUT = ROOT / "tests" / "data" / "capture"
W, H, FRAMES, FPS = 160, 120, 16, 10


def windows(photo_w, photo_h):
    """Crop windows [x, y, w, h] (4:3) panning left to right and zooming in."""
    out = []
    for i in range(FRAMES):
        t = i / (FRAMES - 1)
        w = round(320 - 80 * t)  # 320 -> 240 wide: zoom in
        h = round(w * 3 / 4)
        x = round((photo_w - w) * t)
        y = round((photo_h - h) * (0.2 + 0.3 * t))
        out.append([x, y, w, h])
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    photo = cv2.imread(str(ROOT / "tests" / "data" / "imgproc" / "astronaut.png"))
    ph, pw = photo.shape[:2]
    wins = windows(pw, ph)
    frames = [cv2.resize(photo[y:y + h, x:x + w], (W, H), interpolation=cv2.INTER_AREA)
              for x, y, w, h in wins]

    writer = cv2.VideoWriter(str(OUT / "pan.avi"), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    cap = cv2.VideoCapture(str(OUT / "pan.avi"))
    ok, first = cap.read()
    count = 1 if ok else 0
    while cap.read()[0]:
        count += 1
    assert ok and count == FRAMES, count
    cv2.imwrite(str(OUT / "pan_cv2_frame0.png"), first)

    with open(OUT / "pan.y4m", "wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for fr in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(fr, cv2.COLOR_BGR2YUV_I420).tobytes())

    gif = [Image.fromarray(cv2.cvtColor(fr, cv2.COLOR_BGR2RGB)) for fr in frames[:8]]
    gif[0].save(OUT / "pan.gif", save_all=True, append_images=gif[1:], duration=100, loop=0)

    meta = {"generator": "tools/make_capture_refs.py", "opencv": cv2.__version__,
            "source": "tests/data/imgproc/astronaut.png", "width": W, "height": H,
            "fps": FPS, "frames": FRAMES, "gif_frames": 8, "windows": wins}
    (OUT / "pan.json").write_text(json.dumps(meta, indent=1) + "\n")
    for p in sorted(OUT.iterdir()):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
