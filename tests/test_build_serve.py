"""`hunyuan-trt serve --bundle`: readiness, the adapter in front, signal forwarding and exit codes.

The bundles here run the corpus-replaying stand-in for trtllm-serve as their backend."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from pipeline.model import SERVED_MODEL_NAME
from pipeline.procs import ManagedProcess, free_port, wait_http, wait_until

pytestmark = pytest.mark.integration

ABRUPT = Path(__file__).parent / "fixtures" / "abrupt_backend.py"
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


def status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


def data_lines(lines) -> list[bytes]:
    return [line for line in lines if line.startswith(b"data:")]


@pytest.mark.integration
@pytest.mark.slow
def test_sigterm_drains_a_stream_in_flight_before_stopping_an_abrupt_backend(served):
    """The backend dies at once on SIGTERM; serve must fail /health, refuse new requests with 503 and let the
    stream in flight finish with [DONE] before the backend gets SIGTERM."""
    serve = served(["{python}", str(ABRUPT), "{port}"])
    wait_http(f"{serve.url}/health", timeout=60, process=serve.process)
    body = {"model": SERVED, "stream": True, "max_tokens": 60, "messages": [{"role": "user", "content": "hi"}]}
    with requests.post(f"{serve.url}/v1/chat/completions", json=body, stream=True, timeout=30) as stream:
        lines = stream.iter_lines()
        first = next(line for line in lines if line.startswith(b"data:"))
        serve.process.send_signal(signal.SIGTERM)
        assert wait_until(lambda: status(f"{serve.url}/health") == 503, 10, 0.05)
        refused = requests.post(f"{serve.url}/v1/chat/completions", json={**body, "stream": False}, timeout=10)
        rest = data_lines(lines)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == 503
    assert rest[-1] == b"data: [DONE]"
    text = "".join(json.loads(line[5:])["choices"][0]["delta"].get("content") or ""
                   for line in [first, *rest[:-1]] if json.loads(line[5:])["choices"])
    assert "t0" in text and "t59" in text
    assert serve.wait() == 0


def read_only(root: Path) -> list[str]:
    """Command prefix: run with `root` bind-mounted read-only in a private mount namespace (EROFS even for
    root, as a `readOnly: true` volume in Kubernetes)."""
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(root)]


@pytest.fixture
def read_only_models(tmp_path) -> tuple[Path, Path, list[str]]:
    """(models root, HF_HOME, command prefix): the root bind-mounted read-only where this machine allows mounts
    (as Kubernetes mounts it); elsewhere HF_HOME sits below a regular file, where nobody, root included, can
    create the modules folder (ENOTDIR instead of EROFS: the same failure to write the cache)."""
    root = tmp_path / "models"
    (root / "hf-home").mkdir(parents=True)
    probe = subprocess.run([*read_only(root), "touch", str(root / "probe")], capture_output=True, text=True) \
        if shutil.which("unshare") else None
    if probe and "Read-only file system" in probe.stderr:
        return root, root / "hf-home", read_only(root)
    (tmp_path / "not-a-directory").write_text("")
    return root, tmp_path / "not-a-directory" / "hf-home", []


@pytest.mark.integration
@pytest.mark.slow
def test_remote_code_checkpoint_serves_from_a_read_only_model_cache(read_only_models, tmp_path):
    """Kubernetes and compose mount the model cache read-only with HF_HOME on it; transformers copies
    `auto_map` code into $HF_HOME/modules unless serve points HF_MODULES_CACHE somewhere writable."""
    pytest.importorskip("torch")  # make-tiny writes the weights with torch
    root, hf_home, prefix = read_only_models
    model = root / "hf" / "tiny-remote"
    subprocess.run([sys.executable, "-m", "pipeline", "make-tiny", "--out", str(model), "--remote-code",
                    "--shards", "1"], check=True, capture_output=True)
    assert "auto_map" in json.loads((model / "config.json").read_text())
    bundle = make_bundle(tmp_path / "bundle", ["{python}", str(ABRUPT), "{port}", str(model)])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "HF_MODULES_CACHE"} | {"HF_HOME": str(hf_home)}
    serve = ManagedProcess([*prefix, sys.executable, "-m", "pipeline", "serve", "--bundle", str(bundle),
                            "--port", str(port)], log_path=tmp_path / "serve.log")
    serve.env = env
    with serve:
        try:
            wait_http(f"http://127.0.0.1:{port}/health", timeout=120, process=serve.process)
        except Exception:
            pytest.fail((tmp_path / "serve.log").read_text()[-2000:])
