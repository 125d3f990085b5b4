"""The serving chain the drills and the overhead benchmark start: CPU-backend replicas, adapters, smg.

Every process gets a free loopback port, is waited for by polling and is stopped when the `Topology`
context exits, also on failure.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.gateway import Gateway
from pipeline.model import TINY_MODEL_DIR
from pipeline.procs import ManagedProcess, free_port, wait_http

SERVED_NAME = "tencent/Hunyuan-A13B-Instruct"
# nothing is in flight when a drill or benchmark tears the chain down, so smg need not wait for a grace period
GATEWAY_DEFAULTS = {"--shutdown-grace-period-secs": "1"}
WEIGHT_GLOB = "*.safetensors"


def check_model_dir(model_dir: Path) -> Path:
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file() or not any(model_dir.glob(WEIGHT_GLOB)):
        raise PipelineError(f"{model_dir}: expected a Hugging Face model directory with config.json and "
                            f"*.safetensors (the embedded one comes from `make tiny-model`)")
    return model_dir


def replica_argv(model_dir: Path, port: int, max_batch_size: int = 8, max_seq_len: int = 1024) -> list[str]:
    return [sys.executable, "-m", "pipeline.cpu_backend", str(model_dir), "--host", "127.0.0.1",
            "--port", str(port), "--served_model_name", SERVED_NAME, "--max_batch_size", str(max_batch_size),
            "--max_seq_len", str(max_seq_len)]


def adapter_argv(upstream: str, port: int) -> list[str]:
    return [sys.executable, "-m", "pipeline", "adapter", "--upstream", upstream, "--port", str(port),
            "--served-model-name", SERVED_NAME]


class Server:
    """One HTTP child process on a fixed loopback port; can be killed and started again on that port."""

    def __init__(self, name: str, argv_for_port, log_dir: Path, port: int | None = None):
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = argv_for_port(self.port)
        self.log_path = Path(log_dir) / f"{name}.log"
        self.process: ManagedProcess | None = None

    def start(self) -> Server:
        self.process = ManagedProcess(self.argv, log_path=self.log_path).start()
        return self

    def wait(self, timeout: float = 120.0) -> float:
        return wait_http(f"{self.url}/health", timeout=timeout, process=self.process.process)

    def kill(self) -> None:
        self.process.kill()
        self.process.process.wait(10)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


class Topology(contextlib.ExitStack):
    """Replicas (each optionally behind an adapter) and optionally smg in front; all stopped on exit."""

    def __init__(self, model_dir: Path, log_dir: Path, replicas: int = 1, adapters: bool = False,
                 gateway_key: str | None = None, gateway_overrides: dict | None = None):
        super().__init__()
        model_dir = check_model_dir(model_dir or TINY_MODEL_DIR)
        self.log_dir = Path(log_dir)
        self.replicas = [Server(f"replica{i}", lambda port: replica_argv(model_dir, port), log_dir)
                         for i in range(replicas)]
        self.adapters = [Server(f"adapter{i}", lambda port, up=r.url: adapter_argv(up, port), log_dir)
                         for i, r in enumerate(self.replicas)] if adapters else []
        self.gateway_key = gateway_key
        self.gateway_overrides = GATEWAY_DEFAULTS | (gateway_overrides or {})
        self.gateway: Gateway | None = None

    def __enter__(self) -> Topology:
        super().__enter__()
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        for server in [*self.replicas, *self.adapters]:  # start all, then wait: the imports overlap
            self.callback(server.stop)
            server.start()
        for server in [*self.replicas, *self.adapters]:
            server.wait()
        if self.gateway_key:
            fronts = [s.url for s in (self.adapters or self.replicas)]
            self.gateway = Gateway(fronts, self.gateway_key, log_path=self.log_dir / "gateway.log",
                                   overrides=self.gateway_overrides)
            self.callback(self.gateway.stop)
            self.gateway.start()
