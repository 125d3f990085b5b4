"""Process helpers: an interrupt during a spawn never orphans the child; ports are distinct; a child that
fails to start is reported with its log."""

import signal
import socket
import sys

import pytest

from pipeline.errors import PipelineError
from pipeline.procs import ManagedProcess, deferred_interrupts, free_port, free_ports, wait_http

pytestmark = pytest.mark.integration


@pytest.fixture
def sigint_raises():
    """Python's own SIGINT handler: a shell that starts the suite in the background hands it SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_interrupt_during_spawn_is_delivered_after_the_child_is_tracked(sigint_raises):
    proc = ManagedProcess([sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            signal.raise_signal(signal.SIGINT)  # lands "inside Popen"
            proc.start()
    assert proc.process is not None  # the caller can still stop it
    assert proc.stop(grace=5) is not None and proc.process.poll() is not None


def test_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with deferred_interrupts():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(64)
    assert len(set(ports)) == 64
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))


def test_start_errors_carry_the_childs_log_tail(tmp_path):
    log = tmp_path / "child.log"
    child = ManagedProcess([sys.executable, "-c", "print('line one'); print('bind failed: boom'); raise SystemExit(3)"],
                           log_path=log).start()
    with pytest.raises(PipelineError) as error:
        wait_http(f"http://127.0.0.1:{free_port()}/health", timeout=30, process=child.process, log_path=log)
    child.stop()
    assert "exited with code 3" in str(error.value) and "bind failed: boom" in str(error.value)
    assert str(log) in str(error.value)
