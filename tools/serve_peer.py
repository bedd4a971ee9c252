"""The peer of tools/bench_serve.py: KServe's Python model server (the `kserve` wheel) with
onnxruntime, serving ONNX files over the same v2 protocol (REST and gRPC).

    python3 tools/serve_peer.py --model NAME=FILE.onnx [...] --http_port P --grpc_port Q

Tuned as a user would: onnxruntime with one intra-op thread per session and `--sessions N`
sessions (default: the cores), each request's `run` on a thread pool of that size, so N
requests run at once on N cores (KServe calls an `async` predict on its event loop; a plain
one would block it). KServe's own flags (ports, workers, …) pass through.
"""
import argparse
import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ensure_venv  # noqa: E402

ensure_venv(__file__, ".serve-venv")

ours = argparse.ArgumentParser(add_help=False)
ours.add_argument("--model", action="append", default=[])
ours.add_argument("--sessions", type=int, default=os.cpu_count() or 1)
mine, rest = ours.parse_known_args()
sys.argv = [sys.argv[0], *rest]  # KServe parses its flags from sys.argv when imported

import kserve  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from kserve import InferOutput, InferRequest, InferResponse  # noqa: E402


class OnnxModel(kserve.Model):
    def __init__(self, name, path, sessions):
        super().__init__(name)
        self.path = path
        self.pool = ThreadPoolExecutor(sessions)
        self.free = asyncio.Queue()
        self.count = sessions
        self.load()

    def load(self):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.sessions = [ort.InferenceSession(self.path, so, providers=["CPUExecutionProvider"])
                         for _ in range(self.count)]
        self.input_name = self.sessions[0].get_inputs()[0].name
        self.output_names = [o.name for o in self.sessions[0].get_outputs()]
        self.ready = True
        return self.ready

    async def predict(self, payload: InferRequest, headers=None, response_headers=None):
        if self.free.empty() and not getattr(self, "_filled", False):
            for s in self.sessions:
                self.free.put_nowait(s)
            self._filled = True
        x = payload.inputs[0].as_numpy()
        session = await self.free.get()
        try:
            outs = await asyncio.get_running_loop().run_in_executor(
                self.pool, session.run, None, {self.input_name: x})
        finally:
            self.free.put_nowait(session)
        outputs = []
        for name, value in zip(self.output_names, outs):
            o = InferOutput(name=name, shape=list(value.shape), datatype="FP32")
            o.set_data_from_numpy(np.ascontiguousarray(value, dtype=np.float32), binary_data=True)
            outputs.append(o)
        return InferResponse(response_id=payload.id, model_name=self.name, infer_outputs=outputs,
                             use_binary_outputs=True)


if __name__ == "__main__":
    models = []
    for spec in mine.model:
        name, path = spec.split("=", 1)
        models.append(OnnxModel(name, path, mine.sessions))
    kserve.ModelServer().start(models)
