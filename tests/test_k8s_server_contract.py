"""The cpu-tiny model server started exactly as the manifest says (its args, with loopback ports) answers
the probe paths, and its PodMonitor path exports the series the ScaledObject scales on, which is one the
pinned TensorRT-LLM exports (facts.json)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import requests

from pipeline.deploy.render import golden_documents
from pipeline.model import TINY_MODEL_DIR
from pipeline.procs import ManagedProcess, free_port, wait_http
from pipeline.trtllm import prometheus_metrics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "generation_config.json")


def _doc(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.fixture(scope="module")
def manifest():
    return golden_documents("cpu-tiny")


@pytest.fixture(scope="module")
def server(manifest, tmp_path_factory):
    """One replica: random-weight tiny checkpoint -> bundle -> `hunyuan-trt serve` with the manifest's args."""
    root = tmp_path_factory.mktemp("models")
    model = root / "hf"
    cli = [sys.executable, "-m", "pipeline"]
    subprocess.run([*cli, "make-tiny", "--out", str(model), "--config", str(TINY_MODEL_DIR / "config.json"),
                    "--shards", "1"], check=True, capture_output=True)
    for name in TOKENIZER_FILES:
        shutil.copy(TINY_MODEL_DIR / name, model / name)
    subprocess.run([*cli, "build", "--profile", "cpu-tiny", "--model-dir", str(model), "--out", str(root / "bundle")],
                   check=True, capture_output=True)
    container = _doc(manifest, "Deployment", "hunyuan-trt-model")["spec"]["template"]["spec"]["containers"][0]
    args, port = list(container["args"]), free_port()
    for flag, value in (("--bundle", root / "bundle"), ("--host", "127.0.0.1"), ("--port", port),
                        ("--backend-port", free_port())):
        args[args.index(flag) + 1] = str(value)
    process = ManagedProcess([*cli, *args], log_path=root / "serve.log").start()
    try:
        probe = container["startupProbe"]
        budget = probe["periodSeconds"] * probe["failureThreshold"]
        wait_http(f"http://127.0.0.1:{port}{probe['httpGet']['path']}", timeout=budget, process=process.process)
        yield container, f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def test_started_server_answers_liveness_and_readiness_paths(server):
    container, url = server
    for probe in ("livenessProbe", "readinessProbe"):
        assert requests.get(url + container[probe]["httpGet"]["path"], timeout=10).status_code == 200


def test_pod_monitor_path_exports_the_pinned_series_the_autoscaler_queries(server, manifest):
    _, url = server
    path = _doc(manifest, "PodMonitor", "hunyuan-trt-model")["spec"]["podMetricsEndpoints"][0]["path"]
    query = _doc(manifest, "ScaledObject", "hunyuan-trt-model")["spec"]["triggers"][0]["metadata"]["query"]
    queried = set(re.findall(r"\b([a-z0-9_]+)\{", query))
    assert queried == {"request_queue_time_seconds_sum"}
    assert {name.removesuffix("_sum") for name in queried} <= set(prometheus_metrics())
    chat = {"messages": [{"role": "user", "content": "1+1?"}], "max_tokens": 2}  # the counter appears with one
    assert requests.post(f"{url}/v1/chat/completions", json=chat, timeout=60).status_code == 200
    text = requests.get(url + path, timeout=10).text
    exported = set(re.findall(r"^([a-z0-9_]+)\{", text, re.MULTILINE))
    assert queried <= exported, f"{path} lacks {queried - exported}"
    missing = [name for name in prometheus_metrics() if not any(e.startswith(name) for e in exported)]
    assert missing == [], f"the CPU stand-in does not export the pinned {missing}"
