"""Short rolling-restart drill (what `make test` runs): 3 `hunyuan-trt serve` replicas behind smg under load,
one restarted with SIGTERM; serve's drain must lose no request, streamed or not."""

from __future__ import annotations

import pytest

from pipeline.drills.suite import DRILLS, Context
from pipeline.drills.table import markdown
from pipeline.model import TINY_MODEL_DIR


@pytest.mark.integration
@pytest.mark.slow
def test_rolling_restart_loses_no_request(tmp_path):
    results = DRILLS["rolling-restart"](Context(TINY_MODEL_DIR, tmp_path, short=True))
    assert len(results) == 2
    assert all(result.passed for result in results), markdown(results)
