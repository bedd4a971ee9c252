#!/usr/bin/env python3
"""Run a WASI command module under wasmtime (the PyPI `wasmtime` wheel: Wasmtime's own engine).

    tools/wasi_run.py [--dir HOST[::GUEST]]... MODULE.wasm [ARGS...]

Like `wasmtime run --dir ...`: the guest gets ARGS (argv[0] is the module's file name), the
host's environment, stdin, stdout and stderr, and the directories given (`--dir .` is the current
directory as `.`; `--dir /tmp::/tmp` the host's /tmp at the same path). The exit code is the
guest's; a trap (a panic that aborts, an out-of-bounds access) exits 134 with wasmtime's message.

The compiled machine code is cached beside the module (`MODULE.wasm.<wasmtime version>.cwasm`,
rebuilt when the module changes), so the end-to-end tests pay Cranelift's compile once, not per
run. Used by `.ci/run` as TENSORCV_TEST_RUNNER for the WASI build (README "WebAssembly").
"""
import os
import sys
import tempfile

from venv_bootstrap import ensure_venv

ensure_venv(__file__, ".wasm-venv")

import wasmtime  # noqa: E402


def compiled(engine, path):
    """The module at `path`, from the cache when it is newer than the module."""
    version = getattr(wasmtime, "__version__", "x")
    cache = f"{path}.{version}.cwasm"
    try:
        if os.stat(cache).st_mtime_ns >= os.stat(path).st_mtime_ns:
            return wasmtime.Module.deserialize_file(engine, cache)
    except (OSError, wasmtime.WasmtimeError):
        pass
    module = wasmtime.Module.from_file(engine, path)
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(module.serialize())
        os.replace(tmp, cache)  # atomic: parallel test runs never read half a file
    except OSError:
        pass
    return module


def main(argv):
    dirs = []
    while argv and argv[0] == "--dir":
        if len(argv) < 2:
            sys.exit("wasi_run: --dir needs HOST[::GUEST]")
        host, _, guest = argv[1].partition("::")
        dirs.append((host, guest or host))
        argv = argv[2:]
    if not argv:
        sys.exit(__doc__.strip().splitlines()[2])
    module_path, args = argv[0], argv[1:]
    engine = wasmtime.Engine()
    module = compiled(engine, module_path)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = [os.path.basename(module_path), *args]
    wasi.inherit_env()
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    for host, guest in dirs:
        wasi.preopen_dir(host, guest)
    store.set_wasi(wasi)
    instance = linker.instantiate(store, module)
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        return e.code
    except wasmtime.Trap as e:
        print(f"wasi_run: the module trapped: {e}", file=sys.stderr)
        return 134
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)
