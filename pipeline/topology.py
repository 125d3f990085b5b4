"""The CPU serving chain that the demo, the benchmarks and the drills start: replicas, each optionally
behind the Hunyuan adapter, and optionally smg in front.

A replica is either the CPU backend alone (`cpu_backend(model_dir)`) or `hunyuan-trt serve --bundle`
(`bundle_server(bundle)`, backend and adapter in one process tree, as the demo and Kubernetes run it).
Every process gets a free loopback port, is waited for by polling, and is stopped when the Topology closes,
also on failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.cpu_backend.runner import backend_argv
from pipeline.errors import PipelineError
from pipeline.gateway import Gateway
from pipeline.model import SERVED_MODEL_NAME
from pipeline.procs import ADDRESS_IN_USE, ManagedProcess, free_port, free_ports, log_tail, wait_http

LOOPBACK = "127.0.0.1"
# nothing is in flight when a demo, drill or benchmark tears the chain down, so smg need not wait for a grace period
GATEWAY_DEFAULTS = {"--shutdown-grace-period-secs": "1"}
WEIGHT_GLOB = "*.safetensors"

ArgvForPort = Callable[[int], list[str]]


def check_model_dir(model_dir: Path) -> Path:
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file() or not any(model_dir.glob(WEIGHT_GLOB)):
        raise PipelineError(f"{model_dir}: expected a Hugging Face model directory with config.json and "
                            f"*.safetensors (the embedded one comes from `make tiny-model`)")
    return model_dir


def cpu_backend(model_dir: Path, **flags) -> ArgvForPort:
    """Replicas that are the CPU backend serving `model_dir` on its defaults (the cpu-serve flags), or with
    `flags` such as surface="vllm"."""
    model_dir = check_model_dir(model_dir)
    return lambda port: backend_argv(model_dir, host=LOOPBACK, port=port, **flags)


def bundle_server(bundle: Path, ready_timeout: float) -> ArgvForPort:
    """Replicas that are `hunyuan-trt serve --bundle BUNDLE`: the bundle's backend with the adapter in front."""
    return lambda port: [sys.executable, "-m", "pipeline", "serve", "--bundle", str(bundle), "--port", str(port),
                         "--ready-timeout", str(ready_timeout)]


def adapter_argv(upstream: str, port: int) -> list[str]:
    return [sys.executable, "-m", "pipeline", "adapter", "--upstream", upstream, "--port", str(port),
            "--served-model-name", SERVED_MODEL_NAME]


class Server:
    """One HTTP child process on a loopback port; can be killed and started again on that port. If another
    process took the port before the child bound it, `wait(move_on_collision=True)` starts it on a fresh one."""

    def __init__(self, name: str, argv_for_port: ArgvForPort, log_dir: Path, port: int | None = None):
        self.name = name
        self.port = port or free_port()
        self.argv_for_port = argv_for_port
        self.log_path = Path(log_dir) / f"{name}.log"
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Server:
        self.process = ManagedProcess(self.argv_for_port(self.port), log_path=self.log_path).start()
        return self

    def wait(self, timeout: float = 120.0, move_on_collision: bool = False) -> float:
        try:
            return wait_http(f"{self.url}/health", timeout=timeout, process=self.process.process,
                             log_path=self.log_path)
        except PipelineError:
            if not move_on_collision or ADDRESS_IN_USE not in log_tail(self.log_path):
                raise
            self.stop()
            self.port = free_port()
            return self.start().wait(timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.process.wait(10)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


class Topology(contextlib.ExitStack):
    """Replicas (each optionally behind an adapter) and optionally smg in front; all stopped on close.

    `with Topology(...)` starts everything; the demo starts the replicas and the gateway as separate stages."""

    def __init__(self, replica: ArgvForPort, log_dir: Path, replicas: int = 1, adapters: bool = False,
                 gateway_key: str | None = None, gateway_overrides: dict | None = None, ready_timeout: float = 120.0):
        super().__init__()
        self.log_dir = Path(log_dir)
        ports = free_ports(replicas * (2 if adapters else 1))
        self.replicas = [Server(f"replica{i}", replica, log_dir, ports.pop()) for i in range(replicas)]
        self.adapters = [Server(f"adapter{i}", lambda port, r=r: adapter_argv(r.url, port), log_dir, ports.pop())
                         for i, r in enumerate(self.replicas)] if adapters else []
        self.gateway_key = gateway_key
        self.gateway_overrides = GATEWAY_DEFAULTS | (gateway_overrides or {})
        self.ready_timeout = ready_timeout
        self.gateway: Gateway | None = None

    @property
    def fronts(self) -> list[Server]:
        """What clients (and smg) talk to: the adapters, or the replicas themselves."""
        return self.adapters or self.replicas

    def __enter__(self) -> Topology:
        super().__enter__()
        try:
            self.start_replicas()
            if self.gateway_key:
                self.start_gateway()
        except BaseException:
            self.close()
            raise
        return self

    def start_replicas(self) -> None:
        """Start every replica and adapter, then wait for all of them (their imports overlap). A replica that
        lost its port to another process moves to a fresh one, and its adapter follows it."""
        servers = [*self.replicas, *self.adapters]
        for server in servers:
            self.callback(server.stop)  # registered first: an interrupt mid-start orphans nothing
            server.start()
        for i, replica in enumerate(self.replicas):
            port = replica.port
            replica.wait(self.ready_timeout, move_on_collision=True)
            if self.adapters and replica.port != port:
                self.adapters[i].stop()
                self.adapters[i].start()
        for adapter in self.adapters:
            adapter.wait(self.ready_timeout, move_on_collision=True)

    def start_gateway(self) -> Gateway:
        self.gateway = Gateway([s.url for s in self.fronts], self.gateway_key, log_path=self.log_dir / "gateway.log",
                               overrides=self.gateway_overrides)
        self.callback(self.gateway.stop)
        return self.gateway.start(timeout=self.ready_timeout)

    def processes(self) -> list[ManagedProcess]:
        """Every process started so far."""
        started = [s.process for s in [*self.replicas, *self.adapters] if s.process]
        return started + ([self.gateway.process] if self.gateway else [])

    def urls(self) -> list[str]:
        return [s.url for s in self.fronts] + ([self.gateway.url] if self.gateway else [])
