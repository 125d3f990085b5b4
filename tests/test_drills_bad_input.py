"""Bad-input corpus (what `make test` runs, on the embedded hunyuan-tiny): malformed profiles and checkpoints to the CLI, malformed
requests to the CPU backend, the adapter and the gateway; plus the gateway's auth drill on the same chain."""

from __future__ import annotations

import pytest

from pipeline.drills import bad_input
from pipeline.drills.suite import DRILLS, Context
from pipeline.drills.table import markdown
from pipeline.model import TINY_MODEL_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_corpus_has_at_least_30_cases():
    total = len(bad_input.HTTP_CASES) * 3 + len(bad_input.PROFILE_CASES) + len(bad_input.CHECKPOINT_CASES)
    assert total >= 30


def test_malformed_profiles_and_checkpoints_exit_2_with_one_line(tmp_path):
    results = DRILLS["bad-input"](Context(tmp_path, tmp_path, short=True))
    assert [r.name for r in results] == ["bad input: profiles (plan)", "bad input: checkpoints (inspect, convert)"]
    assert all(result.passed for result in results), markdown(results)


def test_malformed_requests_get_4xx_and_gateway_refuses_bad_keys(tmp_path):
    results = DRILLS["http-auth"](Context(TINY_MODEL_DIR, tmp_path, short=True))
    assert [r.name.split(":")[0] for r in results] == ["bad input", "auth", "auth"]
    assert all(result.passed for result in results), markdown(results)
