#!/usr/bin/env python3
"""Make the MediaPipe references that `crates/tasks/tests/landmarks.rs` checks against.

    python3 tools/make_landmark_refs.py

Runs in `tools/.mp-venv` (mediapipe 0.10.14 with its own models, NumPy 1, OpenCV; made on first
use). Photos are real (scikit-image's astronaut, committed in tests/data/imgproc, and Grace
Hopper's portrait from the matplotlib wheel), turned, mirrored and put side by side so the
turned crops and several objects are exercised; each is
written as PNG into `tests/data/landmarks/` and run through MediaPipe's own Python solution in
static-image mode. The manifest holds every object's points in image pixels (`z` scaled by
the image width, as MediaPipe normalizes it), so the tests need no Python.
"""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__, ".mp-venv")

import cv2  # noqa: E402
import mediapipe as mp  # noqa: E402
import numpy as np  # noqa: E402

OUT = ROOT / "tests" / "data" / "landmarks"
PNG9 = [cv2.IMWRITE_PNG_COMPRESSION, 9]


def turned(img, angle, size=None):
    """`img` turned by `angle` degrees about its center (reflected border), resized to a square
    of `size` (None: its own size)."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return out if size is None else cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)


def grace_hopper():
    """Grace Hopper's portrait (US Navy, public domain), from the matplotlib wheel's sample data
    (`pip download --no-deps`, nothing else fetched), as OpenCV decodes it."""
    cache = ROOT / "tools" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("matplotlib-3.9.2-*.whl"))
    if not found:
        subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                               "--only-binary=:all:", "-d", str(cache), "matplotlib==3.9.2"])
        found = sorted(cache.glob("matplotlib-3.9.2-*.whl"))
    with zipfile.ZipFile(found[-1]) as z:
        data = z.read("matplotlib/mpl-data/sample_data/grace_hopper.jpg")
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def photos():
    astro = cv2.imread(str(ROOT / "tests" / "data" / "imgproc" / "astronaut.png"))
    small = cv2.resize(astro, (320, 320), interpolation=cv2.INTER_AREA)
    grace = grace_hopper()
    h, w = grace.shape[:2]
    grace = cv2.resize(grace, (320, round(h * 320 / w)), interpolation=cv2.INTER_AREA)
    return {
        "grace_hopper": grace,
        "grace_hopper_turned_25": turned(grace, 25),
        "astronaut_320": small,
        "astronaut_turned_35": turned(astro, 35, 320),
        "astronaut_turned_-60": turned(astro, -60, 320),
        # two faces: the photo and its mirror image side by side
        "astronaut_pair": np.hstack([cv2.resize(astro, (256, 256), interpolation=cv2.INTER_AREA),
                                     cv2.flip(cv2.resize(astro, (256, 256),
                                                         interpolation=cv2.INTER_AREA), 1)]),
    }


def clip_frames(n=60, size=240):
    """A turning, moving camera on the astronaut: each frame the photo turned about the face (up
    to 100 degrees: beyond what the detector finds, within what tracking follows) and shifted,
    resized to size x size."""
    astro = cv2.imread(str(ROOT / "tests" / "data" / "imgproc" / "astronaut.png"))
    frames = []
    for i in range(n):
        t = i / (n - 1)
        angle = 100.0 * np.sin(2 * np.pi * t)
        m = cv2.getRotationMatrix2D((220.0, 110.0), angle, 1.0 + 0.3 * t)
        m[0, 2] += 60.0 * np.sin(np.pi * t)
        m[1, 2] += 30.0 * t
        f = cv2.warpAffine(astro, m, (512, 512), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT_101)
        frames.append(cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA))
    return frames


def video(manifest):
    """The clip as MJPEG AVI (OpenCV's writer), and MediaPipe's face mesh on the frames as
    cv2.VideoCapture decodes them, in tracking mode and in static-image mode."""
    path = OUT / "turning.avi"
    frames = clip_frames()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    cap = cv2.VideoCapture(str(path))
    decoded = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        decoded.append(f)
    entry = {"video": path.name, "width": w, "height": h, "frames": len(decoded)}
    for mode, static in (("tracking", False), ("static", True)):
        per_frame = []
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=1,
                                             refine_landmarks=False,
                                             min_detection_confidence=0.5,
                                             min_tracking_confidence=0.5) as mesh:
            for f in decoded:
                res = mesh.process(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
                per_frame.append([[[round(p.x * w, 2), round(p.y * h, 2), round(p.z * w, 2)]
                                   for p in lms.landmark]
                                  for lms in res.multi_face_landmarks or []])
        # the points of tracking mode; static mode only counts faces (the comparison)
        entry[mode] = per_frame if mode == "tracking" else [len(f) for f in per_frame]
        print(f"video {mode}: a face in {sum(1 for f in per_frame if f)} of {len(per_frame)} frames")
    manifest["video"] = entry


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {"generator": "tools/make_landmark_refs.py", "mediapipe": mp.__version__,
                "opencv": cv2.__version__, "face_mesh": []}
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4,
                                         refine_landmarks=False,
                                         min_detection_confidence=0.5) as mesh:
        for name, bgr in photos().items():
            path = OUT / f"{name}.png"
            cv2.imwrite(str(path), bgr, PNG9)
            bgr = cv2.imread(str(path))
            h, w = bgr.shape[:2]
            res = mesh.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            faces = []
            for lms in res.multi_face_landmarks or []:
                faces.append([[round(p.x * w, 3), round(p.y * h, 3), round(p.z * w, 3)]
                              for p in lms.landmark])
            manifest["face_mesh"].append({"image": path.name, "width": w, "height": h,
                                          "faces": faces})
            print(f"{name}: {len(faces)} faces")
    video(manifest)
    (OUT / "manifest.json").write_text(json.dumps(manifest) + "\n")


if __name__ == "__main__":
    main()
