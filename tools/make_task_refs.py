#!/usr/bin/env python3
"""Reference results for `crates/tasks`, made by MediaPipe itself (tools/.mp-venv,
mediapipe 0.10.14): its face detection solution (`face_detection_short_range.tflite` through
MediaPipe's own graph: ImageToTensor letterbox, SsdAnchorsCalculator,
TensorsToDetectionsCalculator, weighted NonMaxSuppression, letterbox removal) on the test photos.
Writes `tests/data/tasks/face_detections.json`: per photo, every face as a box
[x1, y1, x2, y2] and six keypoints [x, y] in source pixels, and its score.

    python3 tools/make_task_refs.py
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__, ".mp-venv")

import cv2  # noqa: E402  (opencv-contrib-python, a mediapipe dependency)
import mediapipe as mp  # noqa: E402

PHOTOS = ["astronaut", "coffee", "chelsea"]
OUT = ROOT / "tests" / "data" / "tasks"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"generator": "tools/make_task_refs.py", "mediapipe": mp.__version__,
              "model": "face_detection_short_range (model_selection=0)",
              "min_detection_confidence": 0.5, "photos": {}}
    with mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                   min_detection_confidence=0.5) as fd:
        for name in PHOTOS:
            path = ROOT / "tests" / "data" / "imgproc" / f"{name}.png"
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            faces = []
            for d in fd.process(rgb).detections or []:
                r = d.location_data.relative_bounding_box
                faces.append({
                    "score": d.score[0],
                    "box": [r.xmin * w, r.ymin * h, (r.xmin + r.width) * w,
                            (r.ymin + r.height) * h],
                    "keypoints": [[k.x * w, k.y * h]
                                  for k in d.location_data.relative_keypoints],
                })
            result["photos"][f"tests/data/imgproc/{name}.png"] = faces
            print(name, json.dumps(faces))
    (OUT / "face_detections.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
