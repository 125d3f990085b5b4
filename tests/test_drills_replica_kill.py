"""Short replica-kill drill (what `make test` runs): 3 CPU replicas behind smg, kill -9 one under load."""

from __future__ import annotations

import pytest
from drills_support import shared_servable_model

from pipeline.drills.suite import DRILLS, Context
from pipeline.drills.table import markdown


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return shared_servable_model(tmp_path_factory)


def test_replica_kill_loses_no_request_and_recovers_within_5s(model_dir, tmp_path):
    results = DRILLS["replica-kill"](Context(model_dir, tmp_path, short=True))
    assert len(results) == 3
    assert all(result.passed for result in results), markdown(results)
