"""Short replica-kill drill (what `make test` runs): 3 CPU replicas behind smg, kill -9 one under load."""

from __future__ import annotations

import pytest

from pipeline.drills.suite import DRILLS, Context
from pipeline.drills.table import markdown
from pipeline.model import TINY_MODEL_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_replica_kill_loses_no_request_is_marked_down_and_recovers_within_5s(tmp_path):
    results = DRILLS["replica-kill"](Context(TINY_MODEL_DIR, tmp_path, short=True))
    assert len(results) == 4  # lost, cut streams, marked down, recovery
    assert all(result.passed for result in results), markdown(results)
