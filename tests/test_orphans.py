"""No orphans (issue #17 item 5): a backend dies with its `serve` parent even on SIGKILL, and a closed terminal
(SIGHUP) stops the demo and everything it started, as SIGTERM does. The orphans drill's own functions
(pipeline/drills/orphans.py) do the signalling and the looking."""

from __future__ import annotations

import pytest
from test_build_serve import REPLAY_ARGV, make_bundle

from pipeline.drills import orphans
from pipeline.drills.suite import DRILLS, Context
from pipeline.model import TINY_MODEL_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sigkill_on_serve_leaves_no_backend(tmp_path):
    """Against the replaying stand-in (fast); the drill below does the same with the CPU backend."""
    found = orphans.sigkill_serve(make_bundle(tmp_path / "bundle", REPLAY_ARGV), tmp_path / "serve.log")
    result = orphans.judge_sigkill(found)
    assert result.passed, (result.measured, (tmp_path / "serve.log").read_text())


def test_orphans_drill(tmp_path):
    """SIGHUP on the demo once its chain serves, then SIGKILL on `serve` of the demo's own bundle."""
    sighup, sigkill = DRILLS["orphans"](Context(TINY_MODEL_DIR, tmp_path, short=True))
    assert sighup.passed, (sighup.measured, sighup.details)
    assert sigkill.passed, (sigkill.measured, sigkill.details)
