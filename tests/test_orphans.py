"""No orphans (issue #17 item 5): a backend dies with its `serve` parent even on SIGKILL, and a closed terminal
(SIGHUP) stops the demo and everything it started, as SIGTERM does. The orphans drill's own functions
(pipeline/drills/orphans.py) do the signalling and the looking."""

from __future__ import annotations

import pytest
from test_build_serve import REPLAY_ARGV, make_bundle

from pipeline.drills import orphans
from pipeline.model import TINY_MODEL_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sigkill_on_serve_leaves_no_backend(tmp_path):
    bundle = make_bundle(tmp_path / "bundle", REPLAY_ARGV)
    found = orphans.sigkill_serve(bundle, tmp_path / "serve.log")
    result = orphans.judge_sigkill(found)
    assert found.children and found.ports == 1, (tmp_path / "serve.log").read_text()
    assert result.passed, result.measured


def test_sighup_on_demo_stops_every_child_and_frees_every_port(tmp_path):
    found = orphans.sighup_demo(TINY_MODEL_DIR, tmp_path / "demo", timeout=120)
    assert found.ports >= 5, found.output  # two replicas, their two backends, smg
    assert found.exit_code == 1, found.output
    result = orphans.judge_sighup(found)
    assert result.passed, (result.measured, found.output)
