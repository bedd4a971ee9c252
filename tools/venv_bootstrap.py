"""Shared by the tools/ scripts: run inside `tools/.venv` with the pinned packages.

`ensure_venv(__file__)` creates the venv on first use, installs PINNED into it, and re-executes
the calling script with the venv's Python; inside the venv it returns at once.
"""
import os
import subprocess
import sys
from pathlib import Path

PINNED = [
    "opencv-python-headless==4.10.0.84",
    "scikit-image==0.25.2",
    "numpy==2.2.6",
    "pillow==11.3.0",
]
ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "tools" / ".venv"


def ensure_venv(script):
    py = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    subprocess.check_call([str(py), "-m", "pip", "install", "-q", *PINNED])
    os.execv(str(py), [str(py), script, *sys.argv[1:]])
