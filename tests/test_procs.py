"""Process helpers: an interrupt during a spawn never orphans the child."""

import signal
import sys

import pytest

from pipeline.procs import ManagedProcess, deferred_interrupts

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
