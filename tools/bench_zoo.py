#!/usr/bin/env python3
"""Time the zoo models in tract (criterion, `benches/infer.rs`) against onnxruntime and
TensorFlow on the same input, and print one table.

    python3 tools/bench_zoo.py             # exports MobileNetV2, runs `cargo bench`, then the peers
    python3 tools/bench_zoo.py --no-cargo  # reuse the last criterion results
    python3 tools/bench_zoo.py --profile   # also print tract's per-op profile of MobileNetV2

MobileNetV2 (`keras.applications.MobileNetV2(weights=None)`, random weights: for timing only) is
exported the zoo's way (SavedModel -> tf2onnx) into `tools/.cache/mobilenet_v2.onnx`, never
committed. TensorFlow runs the original: the SavedModel / Keras model for ONNX-from-Keras models,
the TFLite interpreter (XNNPACK) for models that came from .tflite files. Every engine gets 1 and
2 threads; ratios are peer time / tract time (above 1: tract is faster).
"""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402
from tools_common import export_classifier, median_ms  # noqa: E402

ensure_venv(__file__, ".zoo-venv")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402

CACHE = ROOT / "tools" / ".cache"
MODELS = ROOT / "models"
CRITERION = ROOT / "target" / "criterion"
PHOTO = ROOT / "tests" / "data" / "imgproc" / "astronaut.png"


def export_mobilenet():
    out = CACHE / "mobilenet_v2.onnx"
    if out.exists():
        return out
    import keras
    keras.utils.set_random_seed(1)
    model = keras.applications.MobileNetV2(weights=None)
    export_classifier(model, CACHE / "mobilenet_v2_savedmodel", out, 224)
    return out


def tf_runner(name, x, threads):
    """TensorFlow's own run of the model the zoo entry came from."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    if name in ("mobilenet_v2", "shapes"):  # SavedModels written by export_classifier
        saved = CACHE / f"{name}_savedmodel"
        fn = tf.saved_model.load(str(saved)).signatures["serving_default"]
        xt = tf.constant(x)
        return lambda: fn(image=xt)
    if name == "emotion":
        import keras
        model = keras.models.load_model(str(CACHE / "emotion_model.hdf5"), compile=False)
        xt = tf.constant(x)
        return lambda: model(xt, training=False)
    tflite = {"face_detection_short_range": "face_detection_short_range.tflite",
              "selfie_segmentation": None, "emotion_int8": "emotion_int8.tflite",
              "shapes_int8": str(MODELS / "shapes_int8.tflite")}[name]
    if tflite is None:
        return None  # MediaPipe's custom op: the stock interpreter cannot run it
    path = Path(tflite) if "/" in tflite else CACHE / tflite
    it = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], x.astype(d["dtype"]))
    return it.invoke


def criterion_ms(bench):
    f = CRITERION / bench / "new" / "estimates.json"
    if not f.exists():
        return None
    return json.loads(f.read_text())["median"]["point_estimate"] / 1e6


def main():
    export_mobilenet()
    if "--no-cargo" not in sys.argv:
        subprocess.check_call(["cargo", "bench", "-p", "tensorcv-benches", "--bench", "infer"],
                              cwd=ROOT)
    names = ["face_detection_short_range", "selfie_segmentation", "emotion", "emotion_int8",
             "shapes", "shapes_int8", "mobilenet_v2"]
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"onnxruntime {ort.__version__}, tensorflow {tf.__version__}; ms per inference "
          f"(median); ratio = peer / tract\n")
    print(f"{'model':<28} {'thr':>3} {'load':>8} {'tract':>8} {'ort':>8} {'tf':>8} "
          f"{'ort/tract':>9} {'tf/tract':>9}")
    for name in names:
        onnx = CACHE / "mobilenet_v2.onnx" if name == "mobilenet_v2" else (
            MODELS / f"{name}.tflite" if name == "shapes_int8" else MODELS / f"{name}.onnx")
        sess0 = ort.InferenceSession(str(onnx)) if onnx.suffix == ".onnx" else None
        if sess0 is not None:
            inp = sess0.get_inputs()[0]
            shape = [1 if not isinstance(d, int) else d for d in inp.shape]
            dtype = np.float32 if "float" in inp.type else np.uint8
        else:
            shape, dtype = [1, 64, 64, 3], np.int8
        x = np.random.default_rng(0).uniform(0, 1, shape).astype(dtype)
        load = criterion_ms(f"infer_{name}_load")
        for threads in (1, 2):
            tract = criterion_ms(f"infer_{name}_run_{threads}t")
            ort_ms = None
            if sess0 is not None:
                so = ort.SessionOptions()
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                s = ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
                feed = {inp.name: x}
                ort_ms = median_ms(lambda: s.run(None, feed))
            run = tf_runner(name, x, threads)
            tf_ms = median_ms(run) if run else None

            def fmt(v):
                return f"{v:8.3f}" if v is not None else f"{'-':>8}"

            def ratio(v):
                return f"{v / tract:9.2f}" if v is not None and tract else f"{'-':>9}"
            print(f"{name:<28} {threads:>3} {fmt(load if threads == 1 else None)} {fmt(tract)} "
                  f"{fmt(ort_ms)} {fmt(tf_ms)} {ratio(ort_ms)} {ratio(tf_ms)}")
    if "--profile" in sys.argv:
        print("\ntract's per-op profile of MobileNetV2 (tract CLI-like, from the profile example):")
        subprocess.check_call(["cargo", "run", "--release", "-q", "-p", "tensorcv-infer",
                               "--example", "profile", "--", str(CACHE / "mobilenet_v2.onnx")],
                              cwd=ROOT)


if __name__ == "__main__":
    main()
