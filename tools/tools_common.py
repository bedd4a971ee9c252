"""Helpers shared by the tools/ scripts (import after `ensure_venv`)."""
import statistics
import subprocess
import sys
import time


def median_ms(fn, min_time=2.0, min_runs=20):
    """Median wall time of `fn()` in milliseconds, after one warm-up call."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def cpu_model():
    """The CPU's model name (Linux), else the architecture."""
    import platform

    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_frames(frames_dir, n):
    """`n` 1080p JPEG files (q 90) in `frames_dir`: a pan down astronaut.png scaled to 1920x1920
    (the end-to-end benchmarks' input; needs OpenCV)."""
    from pathlib import Path

    import cv2

    frames_dir.mkdir(parents=True, exist_ok=True)
    if len(list(frames_dir.glob("*.jpg"))) >= n:
        return
    root = Path(__file__).resolve().parent.parent
    photo = cv2.imread(str(root / "tests" / "data" / "imgproc" / "astronaut.png"))
    big = cv2.resize(photo, (1920, 1920), interpolation=cv2.INTER_CUBIC)
    for i in range(n):
        y = round((1920 - 1080) * i / max(n - 1, 1))
        cv2.imwrite(str(frames_dir / f"{i:04d}.jpg"), big[y:y + 1080],
                    [cv2.IMWRITE_JPEG_QUALITY, 90])


def save_serving(model, saved, size):
    """Save a Keras classifier as a SavedModel whose `serving_default` signature maps `image`
    [N, size, size, 3] float32 to `probabilities`."""
    import tensorflow as tf

    class Serving(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32,
                                                    name="image")])
        def serve(self, image):
            return {"probabilities": self.model(image, training=False)}

    module = Serving(model)
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve})


def export_classifier(model, saved, onnx_path, size):
    """The users' workflow: save a Keras classifier as a SavedModel (`save_serving`), then
    convert it with tf2onnx (opset 17). Returns the loaded signature, to run TensorFlow's
    reference."""
    import tensorflow as tf

    save_serving(model, saved, size)
    subprocess.check_call([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved),
                           "--signature_def", "serving_default", "--opset", "17",
                           "--output", str(onnx_path)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return tf.saved_model.load(str(saved)).signatures["serving_default"]


def shapes_model():
    """The zoo's `shapes` classifier, untrained: 64x64 RGB -> circle/square/triangle."""
    import keras
    L = keras.layers

    def block(n):
        return [L.Conv2D(n, 3, padding="same", use_bias=False), L.BatchNormalization(),
                L.ReLU()]
    return keras.Sequential([
        keras.Input((64, 64, 3)),
        *block(16), L.MaxPooling2D(), *block(32), L.MaxPooling2D(),
        *block(32), L.MaxPooling2D(), *block(48),
        # a 1x1 convolution head before the average, not Dense after it: tract-tflite 0.23.9
        # builds the nodes after an int8 MEAN for a wrong quantization (see crates/infer)
        L.Conv2D(3, 1), L.GlobalAveragePooling2D(), L.Softmax(),
    ])


CHECKS = []


def ok(what):
    """A check that passed, said on a line of its own."""
    CHECKS.append(what)
    print(f"ok   {what}", flush=True)


def fail(what):
    """A check that failed: said, and the script ends with 1."""
    print(f"FAIL {what}", flush=True)
    sys.exit(1)


def check(cond, what):
    if not cond:
        fail(what)
    ok(what)
