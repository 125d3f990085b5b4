"""Hostile input through the CPU chain of issue #17: two replicas (CPU stand-in + adapter) behind smg, driven by
the hostile-input drill's own functions (pipeline/drills/hostile.py).

- oversized bodies (100 MB and 4 x 10 MB, through smg and straight at the adapters) while normal requests
  go on: every normal request succeeds, their p99 stays within 2x of the idle p99, no process grows;
- 16 abandoned non-streamed requests: the backend's running gauge is 0 within 2 s of the clients leaving;
- fuzzing: every leaf of a valid request replaced by values of the wrong type, through the adapter and
  straight at the stand-in: never a 5xx, never a traceback in a log.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.drills import hostile
from pipeline.model import TINY_MODEL_DIR
from pipeline.topology import Topology, cpu_backend

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL_DIR = Path(os.environ.get("HUNYUAN_TINY_DIR", TINY_MODEL_DIR))
KEY = "hostile-test-key"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with Topology(cpu_backend(MODEL_DIR), tmp_path_factory.mktemp("hostile"), replicas=2, adapters=True,
                  gateway_key=KEY) as topology:
        yield topology


def passed(results: list) -> None:
    for result in results:
        print(f"{result.name}: {result.measured}")
    assert all(r.passed for r in results), [(r.name, r.measured, r.details) for r in results if not r.passed]


def test_oversized_bodies_leave_the_service_serving(chain):
    processes = {s.name: s.process for s in [*chain.replicas, *chain.adapters]}
    run = hostile.oversized_attack(chain.gateway.url, KEY, [a.url for a in chain.adapters], processes)
    passed(hostile.judge_attack(run))


def test_abandoned_non_streamed_requests_are_cancelled(chain):
    passed([hostile.judge_abandoned(hostile.abandon_requests(chain.adapters[0].url, chain.replicas[0].url))])


@pytest.mark.parametrize("target", ["adapter", "stand-in"])
def test_fuzzed_requests_are_never_5xx(chain, target):
    backend, adapter = chain.replicas[1], chain.adapters[1]
    if target == "adapter":
        run = hostile.fuzz(adapter.url, True, [adapter.log_path, backend.log_path])
    else:
        run = hostile.fuzz(backend.url, False, [backend.log_path])
    assert len(run.statuses) > 100
    passed([hostile.judge_fuzz({target: run})])
