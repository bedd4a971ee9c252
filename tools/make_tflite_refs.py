#!/usr/bin/env python3
"""Small `.tflite` files for what tensorcv lowers before tract-tflite reads a file, with the
TFLite interpreter's answers (its reference kernels, float):

- `prelu_fp16.tflite`: convolution -> PReLU -> depthwise -> PReLU (one slope) -> 1x1 -> global
  average pool (MEAN) -> dense -> softmax, converted with float16 weights (TFLiteConverter's
  `supported_types = [tf.float16]`: every weight and slope behind a DEQUANTIZE), random weights;
  the three things MediaPipe's models need (DEQUANTIZE, PRELU, a float MEAN);
- `depth_to_space.tflite`: a DEPTH_TO_SPACE, which tract-tflite does not translate (the error
  that names it).

Writes them and, for three photos, `prelu_fp16_<photo>_input.npy` (the photo made RGB, resized
to 24x24 by cv2.INTER_LINEAR, x / 127.5 - 1: what the test's card asks of imgproc) and
`prelu_fp16_<photo>_tflite.npy` (the output) into `tests/data/tflite/`.

    python3 tools/make_tflite_refs.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__, ".zoo-venv")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = ROOT / "tests" / "data" / "tflite"
PHOTOS = ["astronaut", "chelsea", "coffee"]


def convert(model, fp16):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if fp16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(22)
    # biases random, as trained ones are (the converter leaves out zero biases, which
    # tract-tflite cannot read: an optional input)
    bias = keras.initializers.RandomNormal(stddev=0.1)
    x = keras.Input((24, 24, 3), batch_size=1)
    y = keras.layers.Conv2D(8, 3, padding="same", bias_initializer=bias)(x)
    # slopes random around 0.25 (PReLU's own initializer is zeros: a ReLU)
    y = keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.RandomUniform(0.05, 0.5))(y)
    y = keras.layers.DepthwiseConv2D(3, padding="same", bias_initializer=bias)(y)
    y = keras.layers.PReLU(shared_axes=[1, 2, 3], alpha_initializer=keras.initializers.Constant(0.2))(y)
    y = keras.layers.Conv2D(16, 1, bias_initializer=bias)(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    y = keras.layers.Dense(5, activation="softmax", bias_initializer=bias)(y)
    model = keras.Model(x, y)
    data = convert(model, fp16=True)
    (OUT / "prelu_fp16.tflite").write_bytes(data)

    inputs = {}
    for photo in PHOTOS:
        bgr = cv2.imread(str(ROOT / "tests" / "data" / "imgproc" / f"{photo}.png"))
        rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (24, 24), interpolation=cv2.INTER_LINEAR)
        inputs[photo] = (rgb.astype(np.float32) / np.float32(127.5) - np.float32(1))[None]
    it = tf.lite.Interpreter(model_content=data,
                             experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    ops = {op["op_name"] for op in it._get_ops_details()}
    assert {"DEQUANTIZE", "PRELU", "MEAN"} <= ops, ops
    for photo, x in inputs.items():
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        np.save(OUT / f"prelu_fp16_{photo}_input.npy", x)
        np.save(OUT / f"prelu_fp16_{photo}_tflite.npy", it.get_tensor(it.get_output_details()[0]["index"]))
    print("prelu_fp16.tflite", len(data), "bytes, ops", sorted(ops))

    x = keras.Input((8, 8, 4), batch_size=1)
    y = keras.layers.Conv2D(8, 1)(x)
    y = keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, 2))(y)
    data = convert(keras.Model(x, y), fp16=False)
    (OUT / "depth_to_space.tflite").write_bytes(data)
    print("depth_to_space.tflite", len(data), "bytes")


if __name__ == "__main__":
    main()
