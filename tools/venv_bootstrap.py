"""Shared by the tools/ scripts: run inside a venv of `tools/` with pinned packages.

`ensure_venv(__file__)` creates the venv on first use, installs its pinned packages, and
re-executes the calling script with the venv's Python; inside the venv it returns at once.
`tools/.venv` (OpenCV, scikit-image, Pillow) serves the imgproc scripts; `tools/.zoo-venv`
(TensorFlow, tf2onnx, onnxruntime, OpenCV) the model scripts; `tools/.mp-venv` MediaPipe alone
(it pins protobuf<5, which TensorFlow 2.21 cannot share).
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = {
    ".venv": [
        "opencv-python-headless==4.10.0.84",
        "scikit-image==0.25.2",
        "numpy==2.2.6",
        "pillow==11.3.0",
    ],
    ".zoo-venv": [
        "tensorflow-cpu==2.21.0",
        "tf2onnx==1.17.0",
        "onnxruntime==1.32.0",
        "opencv-python-headless==4.10.0.84",
    ],
    # mediapipe 0.10.14's bindings were built against NumPy 1: with NumPy 2 `create_matrix`
    # crashes the interpreter
    ".mp-venv": ["mediapipe==0.10.14", "numpy==1.26.4", "opencv-contrib-python==4.10.0.84"],
    # Wasmtime itself (its C API in the wheel), for the WASI build: tools/wasi_run.py
    ".wasm-venv": ["wasmtime==50.0.1"],
    # `tensorcv serve` against real clients (tools/serve_clients.py): Triton's client (HTTP
    # and gRPC; its wheel also carries the protocol's descriptors, tools/make_grpc.py),
    # onnxruntime for the reference outputs, requests as TF Serving's docs write requests,
    # and the KServe SDK whose model classes check deploy/
    ".serve-venv": [
        "tritonclient[http,grpc]==2.73.0",
        "onnxruntime==1.32.0",
        "requests==2.34.2",
        "pyyaml==6.0.3",
        "kserve==0.21.0",
    ],
}
PINNED = VENVS[".venv"]
VENV = ROOT / "tools" / ".venv"


def make_venv(name):
    """The venv `tools/<name>` with its pinned packages; returns its python."""
    venv = ROOT / "tools" / name
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
    subprocess.check_call([str(py), "-m", "pip", "install", "-q", *VENVS[name]])
    return py


def ensure_venv(script, name=".venv"):
    venv = ROOT / "tools" / name
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    py = make_venv(name)
    os.execv(str(py), [str(py), script, *sys.argv[1:]])
