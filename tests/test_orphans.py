"""No orphans (issue #17 item 5): a backend dies with its `serve` parent even on SIGKILL, and a closed terminal
(SIGHUP) stops the demo and everything it started, as SIGTERM does."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_build_serve import REPLAY_ARGV, make_bundle

from pipeline.model import TINY_MODEL_DIR
from pipeline.procs import free_port, wait_http, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state, past a name that may hold spaces


def descendants(root: int) -> set[int]:
    """Every living process under `root` (children in their own sessions included)."""
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    children: dict[int, list[int]] = {}
    for pid in pids:
        children.setdefault(parent_of(pid), []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ports_of(pids: set[int]) -> set[int]:
    """The --port values on the command lines of `pids`."""
    ports = set()
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        ports |= {int(argv[i + 1]) for i, arg in enumerate(argv[:-1]) if arg in ("--port", "--backend-port")}
    return ports


def kill_all(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_sigkill_on_serve_leaves_no_backend(tmp_path):
    port, backend_port = free_port(), free_port()
    bundle = make_bundle(tmp_path / "bundle", REPLAY_ARGV)
    serve = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--bundle", str(bundle), "--port", str(port),
                              "--backend-port", str(backend_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: set[int] = set()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=60, process=serve)
        children = descendants(serve.pid)
        assert children and listening(backend_port)
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        assert wait_until(lambda: not any(map(alive, children)), timeout=15), "backend outlived serve"
        assert not listening(backend_port)
    finally:
        serve.kill()
        kill_all(children)


def test_sighup_on_demo_stops_every_child_and_frees_every_port(tmp_path):
    demo = subprocess.Popen([sys.executable, "-m", "pipeline", "demo", "--model-dir", str(TINY_MODEL_DIR),
                             "--workdir", str(tmp_path / "demo")], stdout=subprocess.PIPE, text=True)
    children: set[int] = set()
    try:
        lines = []
        for line in demo.stdout:  # progress lines arrive as each stage ends
            lines.append(line)
            if "start smg gateway" in line:  # replicas, their backends and smg all run now
                break
        children = descendants(demo.pid)
        ports = ports_of(children) | {int(re.search(r"smg at http://127.0.0.1:(\d+)", lines[-1])[1])}
        assert len(ports) >= 5, lines  # two replicas, their two backends, smg
        demo.send_signal(signal.SIGHUP)  # the terminal closed
        out, _ = demo.communicate(timeout=120)
        assert demo.returncode == 1, out
        assert re.search(r"^stop everything\s+[\d.]+s\s+PASS", out, re.M), out
        assert not [pid for pid in children if alive(pid)]
        assert not [port for port in ports if listening(port)]
    finally:
        demo.kill()
        kill_all(children)
