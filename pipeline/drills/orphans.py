"""Orphan checks (issue #17 item 5): SIGHUP on `hunyuan-trt demo` (a closed terminal) stops every process it
started and frees every port; SIGKILL on `hunyuan-trt serve` takes its backend with it. The drill suite and
tests/test_orphans.py run the same functions; process trees are read from /proc (Linux)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.goals import GoalResult
from pipeline.procs import free_port, wait_http, wait_until

GATEWAY_STARTED = "start smg gateway"  # the demo's progress line after which replicas, backends and smg all run
PORT_FLAGS = ("--port", "--backend-port")


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state, past a name that may hold spaces


def descendants(root: int) -> set[int]:
    """Every living process under `root` (children in their own sessions included)."""
    children: dict[int | None, list[int]] = {}
    for pid in (int(name) for name in os.listdir("/proc") if name.isdigit()):
        children.setdefault(parent_of(pid), []).append(pid)
    found, pending = set(), [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
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
    """The --port / --backend-port values on the command lines of `pids`."""
    ports = set()
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        ports |= {int(argv[i + 1]) for i, arg in enumerate(argv[:-1]) if arg in PORT_FLAGS}
    return ports


def kill_all(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Leftovers:
    children: int           # processes under the signalled one before the signal
    ports: int              # their listening ports before the signal
    alive: list[int]        # of those processes, still running after it
    open_ports: list[int]   # of those ports, still open after it
    exit_code: int | None   # the signalled process's exit status
    output: str = ""        # its output, when it was read


def sighup_demo(model_dir: Path, workdir: Path, timeout: float = 600) -> Leftovers:
    """Run `hunyuan-trt demo` until its chain serves, SIGHUP it, and look for what survived."""
    demo = subprocess.Popen([sys.executable, "-m", "pipeline", "demo", "--model-dir", str(model_dir),
                             "--workdir", str(workdir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children: set[int] = set()
    try:
        lines = []
        for line in demo.stdout:  # progress lines arrive as each stage ends
            lines.append(line)
            if GATEWAY_STARTED in line:
                break
        children = descendants(demo.pid)
        gateway = re.search(r"smg at http://127.0.0.1:(\d+)", lines[-1]) if lines else None
        ports = ports_of(children) | ({int(gateway[1])} if gateway else set())
        demo.send_signal(signal.SIGHUP)  # the terminal closed
        out, _ = demo.communicate(timeout=timeout)
        return Leftovers(len(children), len(ports), [p for p in children if alive(p)],
                         [p for p in ports if listening(p)], demo.returncode, "".join(lines) + out)
    finally:
        demo.kill()
        kill_all(children)


def sigkill_serve(bundle: Path, log_path: Path) -> Leftovers:
    """Start `hunyuan-trt serve --bundle`, SIGKILL it once it answers, and look for its backend."""
    port, backend_port = free_port(), free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        serve = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--bundle", str(bundle), "--port",
                                  str(port), "--backend-port", str(backend_port)], stdout=log, stderr=subprocess.STDOUT)
    children: set[int] = set()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=180, process=serve)
        children = descendants(serve.pid)
        ports = {backend_port} if listening(backend_port) else set()
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        wait_until(lambda: not any(map(alive, children)), timeout=15)
        return Leftovers(len(children), len(ports), [p for p in children if alive(p)],
                         [p for p in ports if listening(p)], serve.returncode)
    finally:
        serve.kill()
        kill_all(children)


def judge_sighup(found: Leftovers) -> GoalResult:
    stopped = re.search(r"^stop everything\s+[\d.]+s\s+PASS", found.output, re.M) is not None
    passed = found.children > 0 and found.ports >= 5 and not found.alive and not found.open_ports and stopped
    return GoalResult("orphans: SIGHUP on demo (closed terminal)", "no child process, no open port left",
                      f"{found.children} processes and {found.ports} ports before; after: {len(found.alive)} processes, "
                      f"{len(found.open_ports)} ports open (exit {found.exit_code}, stop stage "
                      f"{'PASS' if stopped else 'missing'})", passed,
                      [f"alive: {found.alive}", f"open: {found.open_ports}"] if not passed else [])


def judge_sigkill(found: Leftovers) -> GoalResult:
    passed = found.children > 0 and found.ports == 1 and not found.alive and not found.open_ports
    return GoalResult("orphans: SIGKILL on serve", "no backend left, its port closed",
                      f"{found.children} child process(es) before; after: {len(found.alive)} alive, "
                      f"{len(found.open_ports)}/{found.ports} backend port open", passed,
                      [f"alive: {found.alive}", f"open: {found.open_ports}"] if not passed else [])
