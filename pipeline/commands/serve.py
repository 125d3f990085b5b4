"""`hunyuan-trt serve --bundle DIR`: the bundle's backend on a loopback port, the Hunyuan adapter in front.

The backend (trtllm-serve, or the CPU stand-in for cpu-tiny) runs in its own session with its logs on
this process's stdout/stderr. Readiness is its /health answering 200 within --ready-timeout; only then
does the adapter listen on --port. SIGTERM/SIGINT/SIGHUP stop the adapter and are forwarded to the backend;
the exit code is the backend's (128+N when it died of signal N). If the backend dies, the adapter stops; if
`serve` dies, even of SIGKILL, the kernel sends the backend SIGTERM (`pipeline.procs`).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import click

from pipeline.errors import PipelineError
from pipeline.procs import STOP_SIGNALS, ManagedProcess, answers_200, free_port, wait_until
from pipeline.request_limits import RequestLimits

STOP_GRACE_S = 30.0
POLL_S = 0.2


def exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class Backend(ManagedProcess):
    """The bundle's backend in its own session, logging to our stdout/stderr; signals received by `serve`
    are forwarded to its process group."""

    def __init__(self, argv: list[str], env: dict | None = None):
        super().__init__(argv, env=env, inherit_output=True)
        self.signals: list[int] = []

    def on_signal(self, signum, frame) -> None:
        self.signals.append(signum)
        self.kill(signal.SIGTERM)

    def gone(self) -> bool:
        """A stop signal arrived or the backend exited."""
        return bool(self.signals) or self.process.poll() is not None

    def wait_ready(self, url: str, timeout: float) -> bool:
        """True once /health answers 200; False if the backend exited or a signal arrived first."""
        if wait_until(lambda: answers_200(url), timeout, POLL_S, give_up=self.gone):
            return True
        if self.gone():
            return False
        self.stop()
        raise PipelineError(f"backend not ready: {url} did not answer 200 within {timeout:.0f} s "
                            f"(command: {' '.join(self.argv[:2])} ...)")

    def stop(self) -> int:
        return exit_code(super().stop(grace=STOP_GRACE_S))


async def adapter_while_backend_runs(backend: Backend, upstream: str, host: str, port: int,
                                     model_name: str | None, limits: RequestLimits) -> None:
    import uvicorn

    from pipeline.adapter.app import server_config

    server = uvicorn.Server(server_config(upstream, host, port, model_name, limits=limits))

    async def watch():
        while not server.should_exit:
            if backend.process.poll() is not None:
                click.echo(f"serve: backend exited with code {backend.process.returncode}; stopping", err=True)
                server.should_exit = True
            await asyncio.sleep(POLL_S)

    watcher = asyncio.create_task(watch())
    try:
        await server.serve()
    finally:
        watcher.cancel()


def backend_command(bundle: Path, argv: dict, port: int) -> list[str]:
    from pipeline.trtllm.options import fill

    values = {"host": "127.0.0.1", "port": str(port), "bundle": str(bundle.resolve()), "python": sys.executable}
    command = fill(argv["serve"], values)
    if shutil.which(command[0]) is None:
        raise PipelineError(f"{command[0]}: not installed here; run {bundle / 'serve.sh'} where TensorRT-LLM is "
                            "installed (the GPU image), or build a cpu-tiny bundle to serve on CPU")
    return command


def build_engine_if_needed(bundle: Path, argv: dict) -> None:
    from pipeline.trtllm.options import fill

    if "build" not in argv or (bundle / "engine").is_dir():
        return
    command = fill(argv["build"], {"bundle": str(bundle.resolve())})
    if shutil.which(command[0]) is None:
        raise PipelineError(f"{command[0]}: not installed here; the tensorrt bundle needs it to build its engine")
    code = subprocess.run(command).returncode
    if code:
        raise PipelineError(f"{command[0]} failed with exit code {code}")


@click.command()
@click.option("--bundle", required=True, type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Directory written by `hunyuan-trt build`.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the adapter listens on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Adapter port.")
@click.option("--backend-port", type=click.IntRange(1, 65535), default=None,
              help="Loopback port for the backend (default: a free one).")
@click.option("--ready-timeout", type=click.FloatRange(min=0.1), default=1800.0, show_default=True,
              help="Seconds to wait for the backend's /health (trtllm-serve loads and warms up for minutes).")
def serve(bundle, host, port, backend_port, ready_timeout):
    """Start the bundle's backend, wait for /health, then serve the Hunyuan adapter in front of it."""
    from pipeline.bundle import read_bundle

    meta, argv = read_bundle(bundle)
    build_engine_if_needed(bundle, argv)
    backend_port = backend_port or free_port()
    backend = Backend(backend_command(bundle, argv, backend_port), env=meta.get("serve_env"))
    upstream = f"http://127.0.0.1:{backend_port}"
    previous = {sig: signal.signal(sig, backend.on_signal) for sig in STOP_SIGNALS}
    backend.start()
    try:
        if backend.wait_ready(f"{upstream}/health", ready_timeout):
            click.echo(f"serve: backend ready on {upstream}; adapter on http://{host}:{port}", err=True)
            asyncio.run(adapter_while_backend_runs(backend, upstream, host, port, meta.get("served_model_name"),
                                                   RequestLimits.from_profile(meta.get("resolved_profile", {}))))
    finally:
        code = backend.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.exit(code)
