"""Hostile input through the CPU chain of issue #17, as the hostile-input drill runs it (its short form): two
replicas (CPU stand-in + adapter) behind smg.

- oversized bodies (100 MB and 4 x 10 MB, through smg and straight at the adapters) while normal requests
  go on: every body refused, every normal request succeeds, their p99 within 2x of the idle p99, replicas
  alive and healthy, no process grows;
- open-proxy attempts (`//127.0.0.1:PORT/...`, absolute-form targets, CONNECT) through raw sockets: 404, and the
  bystander is never contacted;
- 16 abandoned non-streamed requests: the backend's running gauge is 0 within 2 s of the clients leaving;
- fuzzing: every leaf of a valid request replaced by values of the wrong type, through the adapter and
  straight at the stand-in: never a 5xx, never a traceback in a log.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.drills.suite import DRILLS, Context
from pipeline.model import TINY_MODEL_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL_DIR = Path(os.environ.get("HUNYUAN_TINY_DIR", TINY_MODEL_DIR))
ROWS = ["oversized bodies refused", "normal requests under attack", "replicas after the attack",
        "open-proxy attempts (raw sockets)", "abandoned non-streamed requests", "fuzzed requests"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    rows = DRILLS["hostile-input"](Context(MODEL_DIR, tmp_path_factory.mktemp("hostile"), short=True))
    for row in rows:
        print(f"{row.name}: {row.measured}")
    return {row.name.removeprefix("hostile input: "): row for row in rows}


def test_every_row_is_there(results):
    assert list(results) == ROWS


@pytest.mark.parametrize("row", ROWS)
def test_goal_met(results, row):
    result = results[row]
    assert result.passed, (result.measured, result.details)
