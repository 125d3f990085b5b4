"""Child processes and readiness: free loopback ports, polling /health, clean shutdown.

Used by `serve`, the demo, the drills and the tests, so that every server is started on a free port, waited
for by polling (never a fixed sleep), and stopped, also on failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

from pipeline.errors import PipelineError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None,
              headers: dict | None = None, interval: float = 0.1) -> float:
    """Poll `url` until it answers 200; return seconds waited. Fails early if `process` exits."""
    start = time.monotonic()
    while True:
        if process is not None and process.poll() is not None:
            raise PipelineError(f"process {process.args[0]!s} exited with code {process.returncode} before {url} was ready")
        try:
            if requests.get(url, timeout=2, headers=headers).status_code == 200:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        if time.monotonic() - start > timeout:
            raise PipelineError(f"{url} not ready after {timeout:.0f} s")
        time.sleep(interval)


@contextmanager
def deferred_interrupts():
    """Hold SIGINT/SIGTERM while a child is spawned, then deliver them.

    An interrupt that lands inside `Popen()` after the fork raises before the Popen object exists, so the
    caller can never stop that child: it is orphaned. Only the main thread can swap handlers; elsewhere
    this is a no-op (signals are delivered to the main thread anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous = {sig: handler for sig, handler in previous.items() if handler is not None}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in caught:
            signal.raise_signal(sig)


class ManagedProcess:
    """A child process in its own session, stopped (TERM, then KILL) on exit of the `with` block."""

    def __init__(self, argv: Sequence[str], log_path: Path | None = None, env: dict | None = None,
                 cwd: Path | None = None, inherit_output: bool = False):
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.inherit_output = inherit_output  # the child writes to our stdout/stderr instead of a log
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> ManagedProcess:
        if self.log_path:
            Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        with deferred_interrupts():
            output = {} if self.inherit_output else {"stdout": self._log or subprocess.DEVNULL,
                                                     "stderr": subprocess.STDOUT}
            self.process = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, start_new_session=True,
                                            **output)
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a crash drill uses SIGKILL)."""
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace: float = 10.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.process.wait(5)
        if self._log:
            self._log.close()
            self._log = None
        return self.process.returncode

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
