"""Ports on a busy, shared machine: when another process takes the port chosen for smg or a server before
the child binds it, the child starts again on a fresh port instead of failing; other start failures are
reported with the child's log; and smg starts whatever characters its random key begins with."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

import pipeline.gateway as gateway_mod
from pipeline.errors import PipelineError
from pipeline.gateway import Gateway
from pipeline.procs import ManagedProcess, free_port, free_ports, wait_http
from pipeline.topology import GATEWAY_DEFAULTS, Server

BACKEND = Path(__file__).parent / "fixtures" / "abrupt_backend.py"


@pytest.fixture
def worker(tmp_path):
    port = free_port()
    with ManagedProcess([sys.executable, str(BACKEND), str(port)], log_path=tmp_path / "worker.log") as proc:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=30, process=proc.process)
        yield f"http://127.0.0.1:{port}"


@pytest.mark.integration
@pytest.mark.slow
def test_gateway_retries_on_fresh_ports_when_its_port_was_taken(worker, tmp_path, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        choices = iter([[taken.getsockname()[1], free_port()]])
        monkeypatch.setattr(gateway_mod, "free_ports", lambda count: next(choices, None) or free_ports(count))
        log = tmp_path / "smg.log"
        with Gateway([worker], "key-1", log_path=log, overrides=GATEWAY_DEFAULTS) as gateway:
            assert gateway.port != taken.getsockname()[1]
        assert "Address already in use" in log.read_text()


@pytest.mark.integration
@pytest.mark.slow
def test_gateway_start_failure_shows_the_log_tail(worker, tmp_path):
    gateway = Gateway([worker], "key-1", log_path=tmp_path / "smg.log", overrides={"--policy": "no-such-policy"})
    with pytest.raises(PipelineError) as error:
        gateway.start(timeout=60)
    assert "smg exited with code" in str(error.value) and "no-such-policy" in str(error.value)


@pytest.mark.integration
def test_server_moves_to_a_fresh_port_when_its_port_was_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = Server("abrupt", lambda port: [sys.executable, str(BACKEND), str(port)], tmp_path,
                        port=taken.getsockname()[1]).start()
        try:
            server.wait(60, move_on_collision=True)
            assert server.port != taken.getsockname()[1]
            assert "Address already in use" in server.log_path.read_text()
        finally:
            server.stop()


@pytest.mark.integration
def test_gateway_starts_with_a_key_that_starts_with_a_dash(worker, tmp_path):
    """secrets.token_urlsafe gives such a key 1 time in 64: smg must not read it as an option (the cause of
    the drills' intermittent "smg exited with code 2 before it was ready")."""
    with Gateway([worker], "-dash-first-key", log_path=tmp_path / "smg.log", overrides=GATEWAY_DEFAULTS) as gateway:
        assert gateway.process.process.poll() is None
