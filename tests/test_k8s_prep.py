"""The cpu-tiny model-prep Job, run here step by step with /models mapped to a temp dir: it leaves the
bundle exactly where the model-server pod waits for it and serves from (`serve --bundle`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.deploy.policy import containers, pod_specs
from pipeline.deploy.prep import EMBEDDED_TINY_DIR
from pipeline.deploy.render import K8S_ROOT
from pipeline.model import TINY_MODEL_DIR

pytestmark = pytest.mark.integration

MOUNT = re.compile(r"(?<![\w.-])/models(?=/)")


def _local(arg: str, root: Path) -> str:
    return MOUNT.sub(str(root), arg.replace(EMBEDDED_TINY_DIR, str(TINY_MODEL_DIR)))


def _argv(container: dict, root: Path) -> list[str]:
    if "command" in container:
        return [_local(a, root) for a in container["command"]]
    return [sys.executable, "-m", "pipeline", *(_local(a, root) for a in container["args"])]


def test_cpu_tiny_prep_job_writes_the_bundle_the_server_waits_for(tmp_path):
    docs = list(yaml.safe_load_all((K8S_ROOT / "rendered" / "cpu-tiny.yaml").read_text()))
    pods = {doc["metadata"]["name"]: pod for doc, pod in pod_specs(docs)}
    steps = containers(pods["hunyuan-trt-model-prep"])
    assert [c["name"] for c in steps] == ["copy-embedded", "inspect", "build"]
    for step in steps:
        result = subprocess.run(_argv(step, tmp_path), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{step['name']}: {result.stderr[-500:]}"
    server_pod = pods["hunyuan-trt-model"]
    waits_for = re.search(r"-f (\S+) \]", server_pod["initContainers"][0]["args"][0]).group(1)
    serve_args = server_pod["containers"][0]["args"]
    bundle = Path(_local(serve_args[serve_args.index("--bundle") + 1], tmp_path))
    assert Path(_local(waits_for, tmp_path)) == bundle / "bundle.json"
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["profile"] == "cpu-tiny"
    assert meta["model_path"] == _local("/models/hf/embedded/hunyuan-tiny", tmp_path)
