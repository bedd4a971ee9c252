"""The gRPC code of tensorcv-serve, from the published KServe v2 / Triton protocol.

    python3 tools/make_grpc.py

1. In a venv of `tritonclient[grpc]` (PyPI, the version pinned in venv_bootstrap.py), the
   descriptors of `grpc_service.proto` and `model_config.proto` that the wheel's generated
   modules carry are written as one `FileDescriptorSet` to `crates/serve/proto/grpc_service.fds`
   (the .proto files as protoc parsed them: every message, field number and service method).
2. `tools/grpc-codegen` (Rust, outside the workspace; tonic-prost-build reads the descriptor
   set, no `protoc`) writes `crates/serve/src/grpc/inference.rs`, which is committed: building
   tensorcv needs neither step.
"""
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__, ".serve-venv")

from google.protobuf import descriptor_pb2  # noqa: E402
from tritonclient.grpc import model_config_pb2, service_pb2  # noqa: E402

fds = descriptor_pb2.FileDescriptorSet()
for module in (model_config_pb2, service_pb2):
    module.DESCRIPTOR.CopyToProto(fds.file.add())
out = ROOT / "crates" / "serve" / "proto" / "grpc_service.fds"
out.parent.mkdir(parents=True, exist_ok=True)
out.write_bytes(fds.SerializeToString(deterministic=True))
print(f"wrote {out.relative_to(ROOT)}: {[f.name for f in fds.file]}")
subprocess.check_call(["cargo", "run", "--quiet", "--manifest-path",
                       str(ROOT / "tools" / "grpc-codegen" / "Cargo.toml")], cwd=ROOT)
