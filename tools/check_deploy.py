"""deploy/ against the published schemas, and its arguments against `tensorcv serve --check`.

    python3 tools/check_deploy.py [--bin target/debug/tensorcv]

Every document of deploy/kubernetes.yaml and deploy/kserve.yaml is read into the model classes
of the Kubernetes Python client and of the KServe SDK (both generated from the published
OpenAPI schemas): required fields and types as the schema says, and — what the classes alone do
not check — every key one the schema has. Each container's `tensorcv serve` arguments, and the
Dockerfile's entry point and arguments, are run through `tensorcv serve --check` (the models
load, the flags and cards are valid). Run by tools/serve_clients.py (in .ci/run).
"""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_bootstrap import ROOT, ensure_venv  # noqa: E402
from tools_common import check, fail, ok  # noqa: E402

ensure_venv(__file__, ".serve-venv")

import yaml  # noqa: E402


PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def build(data, klass, models, where):
    """`data` read as the schema class `klass` (recursively), the way the clients' own readers do
    (constructors check required fields and enumerations) — and every key must be one the
    schema has, which their readers do not check."""
    if data is None:
        return None
    m = re.fullmatch(r"list\[(.+)\]", klass)
    if m:
        if not isinstance(data, list):
            fail(f"{where}: a list expected")
        return [build(item, m.group(1), models, f"{where}[{i}]") for i, item in enumerate(data)]
    m = re.fullmatch(r"dict\(([^,]+), (.+)\)", klass)
    if m:
        if not isinstance(data, dict):
            fail(f"{where}: a map expected")
        return {k: build(v, m.group(2), models, f"{where}.{k}") for k, v in data.items()}
    if klass in PRIMITIVES:
        if not isinstance(data, PRIMITIVES[klass]) or (klass == "int" and isinstance(data, bool)):
            fail(f"{where}: {data!r} is not {klass}")
        return data
    cls = next((getattr(m, klass) for m in models if hasattr(m, klass)), None)
    if cls is None or not hasattr(cls, "attribute_map"):
        return data  # a type the schema leaves open (IntOrString, quantities, dates)
    if not isinstance(data, dict):
        fail(f"{where}: an object ({klass}) expected, got {data!r}")
    by_key = {v: k for k, v in cls.attribute_map.items()}
    kwargs = {}
    for key, value in data.items():
        if key not in by_key:
            fail(f"{where}: '{key}' is not a field of {klass}")
        attr = by_key[key]
        kwargs[attr] = build(value, cls.openapi_types[attr], models, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        fail(f"{where}: {klass}: {e}")


def serve_args(container):
    """A container's `tensorcv serve` arguments (the image's entry point is `tensorcv serve`)."""
    return list((container.get("command") or [])[2:]) + list(container.get("args") or [])


def check_deploy(binary):
    import kserve
    import kubernetes.client as k8s
    kinds = {
        ("apps/v1", "Deployment"): "V1Deployment",
        ("v1", "Service"): "V1Service",
        ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2HorizontalPodAutoscaler",
        ("serving.kserve.io/v1beta1", "InferenceService"): "V1beta1InferenceService",
    }
    containers = []
    for name in ("kubernetes.yaml", "kserve.yaml"):
        docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / name).read_text()) if d]
        for doc in docs:
            klass = kinds.get((doc.get("apiVersion"), doc.get("kind")))
            if klass is None:
                fail(f"deploy/{name}: {doc.get('apiVersion')} {doc.get('kind')} is not checked")
            where = f"deploy/{name} {doc['kind']} {doc['metadata']['name']}"
            obj = build(doc, klass, [kserve.models, k8s], where)
            check(obj.metadata.name == doc["metadata"]["name"],
                  f"{where}: fields and types as the schema says")
            spec = obj.spec
            pod = None
            if klass == "V1Deployment":
                pod = spec.template.spec
                check(spec.selector.match_labels.items() <= spec.template.metadata.labels.items(),
                      f"{where}: its selector selects its pods")
                check(pod.termination_grace_period_seconds > 30,
                      f"{where}: the pod outlives --grace")
            elif klass == "V1beta1InferenceService":
                pod = spec.predictor
                check(pod.containers[0].name == "kserve-container",
                      f"{where}: the predictor container is KServe's kserve-container")
            elif klass == "V2HorizontalPodAutoscaler":
                check(spec.scale_target_ref.name == "tensorcv" and spec.min_replicas >= 1,
                      f"{where}: scales the Deployment")
            if pod is not None:
                for c in pod.containers:
                    containers.append((where, doc, c.to_dict(), serve_args(c.to_dict())))
    # each container's arguments, and the Dockerfile's, run through `tensorcv serve --check`
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    check(entry == ["/tensorcv", "serve"], "deploy/Dockerfile: the entry point is tensorcv serve")
    exposed = [{"container_port": int(p)}
               for line in re.findall(r"^EXPOSE (.*)$", dockerfile, re.M) for p in line.split()]
    containers.append(("deploy/Dockerfile", None, {"ports": exposed}, cmd))
    for where, doc, container, args in containers:
        # ports the container declares are the ones it listens on
        ports = {p.get("container_port") for p in container.get("ports") or []}
        # a port is declared by its number; the flags name it as ADDR:PORT
        # (`--http=ADDR` or `--http ADDR`)
        listening = set()
        for a, b in zip(args, [*args[1:], ""]):
            m = re.match(r"--(?:http|grpc)=.*:(\d+)$", a) or (
                re.match(r"--(?:http|grpc)$", a) and re.match(r".*:(\d+)$", b))
            if m:
                listening.add(int(m.group(1)))
        # (Knative lets a KServe container declare one port: the others may listen undeclared)
        check(ports and ports <= listening,
              f"{where}: declared ports {sorted(ports)} are served (listening: {sorted(listening)})")
        run = subprocess.run([binary, "serve", *args, "--check"], capture_output=True, text=True,
                             timeout=300)
        if run.returncode != 0:
            fail(f"{where}: tensorcv serve {' '.join(args)} --check: {run.stderr.strip()}")
        ok(f"{where}: tensorcv serve --check loads {len(run.stdout.splitlines())} models")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=str(ROOT / "target/debug/tensorcv"))
    check_deploy(parser.parse_args().bin)
