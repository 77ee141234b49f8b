"""Checks the deploy files offline: ``python deploy/check.py`` from the repository's root, in a
venv with the package installed (``make setup``). Exits 1 and names each failure.

- ``ray/cluster.yaml``: parses; valid against the installed Ray's own schema
  (``ray/autoscaler/ray-schema.json``) before and after Ray fills in its defaults
  (``prepare_config`` + ``validate_config``, which need no cloud access); every shell command
  passes ``bash -n``; it pins the installed Ray version.
- ``kuberay/*.yaml``: parse; each object has ``apiVersion``, ``kind`` and ``metadata.name``;
  the gateway Deployment has readiness and liveness probes on ``/healthz``, a ``preStop`` hook
  and a ``terminationGracePeriodSeconds``; the RayCluster's ``rayVersion`` is the installed
  Ray's; the Deployment's selector matches its pod labels and the Service's selector.
  (The full Kubernetes schemas: ``kubernetes-validate --strict deploy/kuberay/gateway.yaml``;
  the RayCluster against KubeRay's CRD, ``ray.io_rayclusters.yaml``, with jsonschema.)
- ``Dockerfile``: the Ray version it pins is the installed one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import ray
import yaml

HERE = Path(__file__).resolve().parent


def check_cluster_yaml(failures: list[str]) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((HERE / "ray" / "cluster.yaml").read_text())
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    try:
        jsonschema.validate(config, schema)
        validate_config(prepare_config(config))
    except (jsonschema.ValidationError, ValueError, RuntimeError) as exc:
        failures.append(f"ray/cluster.yaml: {exc}")
        return
    commands = list(config.get("setup_commands", [])) + config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    for node_type in config["available_node_types"].values():
        commands += node_type.get("worker_setup_commands", [])
    for command in commands:
        result = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
        if result.returncode:
            failures.append(f"ray/cluster.yaml: bash -n fails on {command!r}: {result.stderr.strip()}")
    if f'"ray[default]=={ray.__version__}"' not in " ".join(commands):
        failures.append(f"ray/cluster.yaml: does not pin the installed Ray {ray.__version__}")


def check_kuberay(failures: list[str]) -> None:
    objects = {}
    for path in sorted((HERE / "kuberay").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            name = (doc.get("metadata") or {}).get("name")
            if not (doc.get("apiVersion") and doc.get("kind") and name):
                failures.append(f"kuberay/{path.name}: an object lacks apiVersion, kind or metadata.name")
                continue
            objects[(doc["kind"], name)] = doc
    cluster = objects.get(("RayCluster", "starhold"))
    if cluster is None or cluster["spec"].get("rayVersion") != ray.__version__:
        failures.append(f"kuberay: no RayCluster 'starhold' with rayVersion {ray.__version__}")
    deployment = objects.get(("Deployment", "starhold-gateway"))
    service = objects.get(("Service", "starhold"))
    if deployment is None or service is None:
        failures.append("kuberay: the gateway Deployment or Service is missing")
        return
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    for selector in (deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"]):
        if any(labels.get(k) != v for k, v in selector.items()):
            failures.append(f"kuberay: selector {selector} does not match the gateway pods' labels {labels}")
    container = pod["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        if (container.get(probe) or {}).get("httpGet", {}).get("path") != "/healthz":
            failures.append(f"kuberay/gateway.yaml: no {probe} on /healthz")
    if "preStop" not in container.get("lifecycle", {}) or "terminationGracePeriodSeconds" not in pod["spec"]:
        failures.append("kuberay/gateway.yaml: no preStop hook or terminationGracePeriodSeconds")


def check_dockerfile(failures: list[str]) -> None:
    match = re.search(r"^ARG RAY_VERSION=(\S+)$", (HERE / "Dockerfile").read_text(), re.M)
    if not match or match.group(1) != ray.__version__:
        failures.append(f"Dockerfile: RAY_VERSION is not the installed Ray {ray.__version__}")


def main() -> int:
    failures: list[str] = []
    check_cluster_yaml(failures)
    check_kuberay(failures)
    check_dockerfile(failures)
    for failure in failures:
        print("FAIL", failure)
    print("deploy files: ok" if not failures else f"deploy files: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
