"""The cpu-tiny model-prep Job, run here step by step with /models and /tmp mapped to temp dirs: it leaves
the bundle exactly where the model-server pod waits for it and serves from (`serve --bundle`), and a rerun
skips every step while the bundle is up to date."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.deploy.policy import containers, pod_specs
from pipeline.deploy.prep import CURRENT_MARKER, EMBEDDED_TINY_DIR
from pipeline.deploy.render import golden_documents
from pipeline.model import TINY_MODEL_DIR
from pipeline.profiles import load_profile
from pipeline.weights_formats import FORMATS

pytestmark = pytest.mark.integration

MOUNT = re.compile(r"(?<![\w.-])/models(?=/)")


def _local(arg: str, root: Path) -> str:
    arg = arg.replace(EMBEDDED_TINY_DIR, str(TINY_MODEL_DIR)).replace(CURRENT_MARKER, str(root / "pod-tmp-marker"))
    return MOUNT.sub(str(root), arg)


def run_job(steps: list[dict], root: Path) -> list[str]:
    """Run the Job's containers in order (the CLI from this venv on PATH); their outputs."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = []
    for step in steps:
        result = subprocess.run([_local(a, root) for a in step["command"]], capture_output=True, text=True,
                                timeout=120, env=env)
        assert result.returncode == 0, f"{step['name']}: {result.stderr[-500:]}"
        outputs.append(result.stdout + result.stderr)
    return outputs


def test_cpu_tiny_prep_job_writes_the_bundle_the_server_waits_for_and_a_rerun_skips(tmp_path):
    docs = golden_documents("cpu-tiny")
    pods = {doc["metadata"]["name"]: pod for doc, pod in pod_specs(docs)}
    steps = containers(pods["hunyuan-trt-model-prep"])
    assert [c["name"] for c in steps] == ["check-bundle", "copy-embedded", "inspect", "build"]
    first = run_job(steps, tmp_path)
    assert "rebuild: no readable bundle.json" in first[0] and "skipped" not in "".join(first)
    server_pod = pods["hunyuan-trt-model"]
    waits_for = re.search(r"-f (\S+) \]", server_pod["initContainers"][0]["args"][0]).group(1)
    serve_args = server_pod["containers"][0]["args"]
    bundle = Path(_local(serve_args[serve_args.index("--bundle") + 1], tmp_path))
    assert Path(_local(waits_for, tmp_path)) == bundle / "bundle.json"
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["profile"] == "cpu-tiny"
    assert meta["model_path"] == _local("/models/hf/embedded/hunyuan-tiny", tmp_path)
    built = (bundle / "bundle.json").stat().st_mtime_ns
    assert not (tmp_path / "pod-tmp-marker").exists()
    second = run_job(steps, tmp_path)
    assert "up to date" in second[0] and all("skipped" in out for out in second[1:])
    assert (bundle / "bundle.json").stat().st_mtime_ns == built


def _rendered_step(profile: str, name: str) -> dict:
    """A prep-Job step of a GPU overlay, without the GPU image's entrypoint (this machine runs the CLI directly)."""
    from pipeline.deploy.settings import GPU_POD

    docs = golden_documents(profile)
    pods = {doc["metadata"]["name"]: pod for doc, pod in pod_specs(docs)}
    step = next(c for c in containers(pods["hunyuan-trt-model-prep"]) if c["name"] == name)
    return {**step, "command": step["command"][len(GPU_POD.entrypoint):]}


@pytest.mark.slow
@pytest.mark.parametrize("profile, download", [
    ("a100x2", lambda target: __import__("shutil").copytree(TINY_MODEL_DIR, target)),
    ("h100x2", lambda target: subprocess.run([sys.executable, "-m", "pipeline", "make-tiny", "--published-fp8",
                                              "--out", str(target)], check=True, capture_output=True)),
])
def test_rendered_quantize_step_converts_the_download_and_a_rerun_keeps_it(profile, download, tmp_path):
    """The quantize step exactly as rendered, on a tiny stand-in of the profile's download (the BF16 tiny model;
    make-tiny's synthetic AngelSlim FP8 layout): it writes the directory build reads, then leaves it alone."""
    pytest.importorskip("torch")  # make-tiny and the quantizer run torch
    quantize = _rendered_step(profile, "quantize")
    argv = [_local(a, tmp_path) for a in quantize["command"]]
    download(Path(argv[argv.index("--model-dir") + 1]))
    build = _rendered_step(profile, "build")["command"]
    first, second = run_job([quantize, quantize], tmp_path)
    out = Path(argv[argv.index("--out") + 1])
    assert "wrote" in first and "up to date" in second
    assert _local(build[build.index("--model-dir") + 1], tmp_path) == str(out)
    served = FORMATS[load_profile(profile)[0].weights].quant_algo
    assert json.loads((out / "hf_quant_config.json").read_text())["quantization"]["quant_algo"] == served
