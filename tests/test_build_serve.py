"""`hunyuan-trt serve --bundle`: readiness, the adapter in front, signal forwarding and exit codes.

The bundles here run the corpus-replaying stand-in for trtllm-serve as their backend."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from pipeline.model import SERVED_MODEL_NAME
from pipeline.procs import free_port, wait_http

pytestmark = pytest.mark.integration

REPLAY = Path(__file__).parent / "data" / "hunyuan_outputs" / "replay_upstream.py"
SERVED = SERVED_MODEL_NAME


def make_bundle(directory: Path, serve_argv: list[str], serve_env: dict | None = None) -> Path:
    directory.mkdir()
    (directory / "bundle.json").write_text(json.dumps({"profile": "test", "served_model_name": SERVED,
                                                       "trtllm_version": "1.2.1", "serve_env": serve_env or {}}))
    (directory / "argv.json").write_text(json.dumps({"serve": serve_argv}))
    return directory


REPLAY_ARGV = ["{python}", str(REPLAY), "--host", "{host}", "--port", "{port}"]


class Serve:
    def __init__(self, bundle: Path, *extra):
        self.port, self.backend_port = free_port(), free_port()
        argv = [sys.executable, "-m", "pipeline", "serve", "--bundle", bundle, "--port", self.port,
                "--backend-port", self.backend_port, *extra]
        self.process = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, timeout=30) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self.stop()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()  # serve forwards it to the backend
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        # a backend left behind would keep its port: kill whatever still answers there
        try:
            requests.post(f"http://127.0.0.1:{self.backend_port}/debug/exit?code=0", timeout=1)
        except requests.RequestException:
            pass

    def output(self) -> str:
        return self.process.stdout.read() if self.process.poll() is not None else ""


@pytest.fixture
def served(tmp_path):
    instances = []

    def start(argv, *extra):
        instance = Serve(make_bundle(tmp_path / f"bundle{len(instances)}", argv), *extra)
        instances.append(instance)
        return instance

    yield start
    for instance in instances:
        instance.stop()


def backend_alive(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_adapter_in_front_then_sigterm_stops_both(served):
    serve = served(REPLAY_ARGV)
    wait_http(f"{serve.url}/health", timeout=60, process=serve.process)
    body = {"model": SERVED, "messages": [{"role": "user", "content": "case:slow_basic"}]}
    data = requests.post(f"{serve.url}/v1/chat/completions", json=body, timeout=30).json()
    assert data["model"] == SERVED
    assert data["choices"][0]["message"]["reasoning_content"] == "The user asks for 2 + 3. That is 5."
    assert backend_alive(serve.backend_port)
    serve.process.send_signal(signal.SIGTERM)
    # uvicorn in the backend re-raises the forwarded SIGTERM after shutting down: it dies of it, 128 + 15
    assert serve.wait() == 128 + signal.SIGTERM
    assert not backend_alive(serve.backend_port)


def test_backend_crash_exit_code_is_propagated(served):
    serve = served(REPLAY_ARGV)
    wait_http(f"{serve.url}/health", timeout=60, process=serve.process)
    with pytest.raises(requests.RequestException):
        requests.post(f"http://127.0.0.1:{serve.backend_port}/debug/exit?code=7", timeout=5)
    assert serve.wait() == 7
    assert "backend exited with code 7" in serve.output()


def test_backend_failing_at_start(served):
    serve = served(["{python}", "-c", "import sys; sys.exit(5)"])
    assert serve.wait() == 5


@pytest.mark.integration
def test_backend_runs_with_the_bundles_serve_env(tmp_path):
    record = tmp_path / "env.txt"
    script = "import os, sys; open(sys.argv[1], 'w').write(os.environ['ENABLE_CONFIGURABLE_MOE']); sys.exit(4)"
    bundle = make_bundle(tmp_path / "b", ["{python}", "-c", script, str(record)], {"ENABLE_CONFIGURABLE_MOE": "0"})
    serve = Serve(bundle)
    assert serve.wait() == 4
    assert record.read_text() == "0"


def test_readiness_timeout(served):
    serve = served(["{python}", "-c", "import time; time.sleep(60)"], "--ready-timeout", "1")
    started = time.monotonic()
    assert serve.wait() == 2
    assert time.monotonic() - started < 30
    assert "did not answer 200 within 1 s" in serve.output()


def test_missing_trtllm_serve_is_a_clear_error(run_cli, tmp_path, monkeypatch):
    bundle = make_bundle(tmp_path / "b", ["trtllm-serve", "/models/x", "--port", "{port}"])
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run_cli("serve", "--bundle", bundle)
    assert result.exit_code == 2 and "trtllm-serve: not installed here" in result.output


def test_not_a_bundle(run_cli, tmp_path):
    result = run_cli("serve", "--bundle", tmp_path)
    assert result.exit_code == 2 and "bundle.json: missing" in result.output
