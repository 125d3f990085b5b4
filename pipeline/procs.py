"""Child processes and readiness: free loopback ports, polling, clean shutdown, no orphans.

Used by `serve`, the demo, the drills and the tests, so that every server is started on a free port, waited
for by polling (never a fixed sleep), and stopped, also on failure. A child never outlives the process that
started it: it gets SIGTERM when its parent dies, even of SIGKILL (Linux `PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

from pipeline.errors import PipelineError

# Ctrl-C, `kill`, and a closed terminal (SIGHUP) all mean "stop everything you started".
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# SIGTERM, not SIGKILL: trtllm-serve and the CPU stand-in stop their own workers on SIGTERM, while a SIGKILL
# would orphan those grandchildren in the backend's process group.
PARENT_DEATH_SIGNAL = signal.SIGTERM
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


# How a server that lost the race for its port says so (uvicorn, smg and Python all quote errno 98's text).
ADDRESS_IN_USE = "Address already in use"


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free loopback ports: every socket stays bound until all are chosen, so no two are the
    same. Another process may still take one before our child binds it: callers retry on ADDRESS_IN_USE."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def log_tail(path: Path | None, lines: int = 20) -> str:
    """The last `lines` lines of a child's log ('' when there is none), for error messages."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:]) if path else ""
    except OSError:
        return ""


def with_log(message: str, log_path: Path | None) -> str:
    """`message` plus where the child's log is and its last lines."""
    tail = log_tail(log_path)
    return f"{message} (log: {log_path})" + (f"; last lines:\n{tail}" if tail else "") if log_path else message


def wait_until(ready: Callable[[], bool], timeout: float, interval: float = 0.1,
               give_up: Callable[[], bool] = lambda: False) -> bool:
    """The one polling loop: call `ready()` every `interval` s; True once it is true, False when `timeout` s
    have passed or `give_up()` is true (checked before each try). `ready` runs at least once unless given up."""
    deadline = time.monotonic() + timeout
    while not give_up():
        if ready():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return False


def answers_200(url: str, headers: dict | None = None) -> bool:
    try:
        return requests.get(url, timeout=2, headers=headers).status_code == 200
    except requests.RequestException:
        return False


def wait_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None,
              headers: dict | None = None, interval: float = 0.1, log_path: Path | None = None) -> float:
    """Poll `url` until it answers 200; return seconds waited. Fails early if `process` exits; the error
    carries the tail of `log_path`."""
    start = time.monotonic()

    def exited() -> bool:
        return process is not None and process.poll() is not None

    if wait_until(lambda: answers_200(url, headers), timeout, interval, give_up=exited):
        return time.monotonic() - start
    if exited():
        raise PipelineError(with_log(f"process {process.args[0]!s} exited with code {process.returncode} before "
                                     f"{url} was ready", log_path))
    raise PipelineError(with_log(f"{url} not ready after {timeout:.0f} s", log_path))


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does, so that `with` blocks and
    ExitStacks unwind and stop every child. Main thread only (Python delivers signals there)."""
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in STOP_SIGNALS if sig != signal.SIGINT}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def deferred_interrupts():
    """Hold the stop signals while a child is spawned, then deliver them.

    An interrupt that lands inside `Popen()` after the fork raises before the Popen object exists, so the
    caller can never stop that child: it is orphaned. Only the main thread can swap handlers; elsewhere
    this is a no-op (signals are delivered to the main thread anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
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


def _die_with(parent: int) -> Callable[[], None]:
    """A preexec_fn (runs in the child between fork and exec): ask the kernel for PARENT_DEATH_SIGNAL when the
    thread that forked us dies, however it dies; if the parent is already gone, nobody would send it: exit."""
    def arm() -> None:
        _PRCTL(PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL)
        if os.getppid() != parent:
            os._exit(1)
    return arm


class ManagedProcess:
    """A child process in its own session, stopped (TERM, then KILL) on exit of the `with` block.

    It also dies with this process (see `_die_with`). The kernel ties that to the thread that starts it, so
    start children from a thread that outlives them (the main thread, as every caller here does).
    """

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
                                            preexec_fn=_die_with(os.getpid()) if _PRCTL else None, **output)
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
