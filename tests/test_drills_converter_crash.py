"""Short converter-crash drill (what `make test` runs): kill -9 `convert` twice, check, re-run."""

from __future__ import annotations

import pytest

from pipeline.drills.suite import DRILLS, Context
from pipeline.drills.table import markdown

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_killed_converter_leaves_nothing_half_written(tmp_path):
    results = DRILLS["converter-crash"](Context(tmp_path / "unused-model", tmp_path, short=True))
    assert len(results) == 2
    assert all(result.passed for result in results), markdown(results)
