"""The hostile-input and orphan drills' judges on synthetic outcomes: a clean run passes, each missed goal
fails its row."""

from __future__ import annotations

import random

import pytest

from pipeline.drills import hostile, orphans


def attack(**changes) -> hostile.AttackRun:
    run = hostile.AttackRun(idle=[(0.10, 200)] * 20, under_attack=[(0.15, 200)] * 20, outcomes=[413] * 5 + ["reset"],
                            grown_mib=[2.0, 5.0], healthy_workers=2, workers=2)
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def verdicts(results) -> list[bool]:
    return [r.passed for r in results]


def test_a_clean_attack_passes_and_reports_the_ratio():
    results = hostile.judge_attack(attack())
    assert verdicts(results) == [True, True, True]
    assert "p99 idle 100 ms, under attack 150 ms (x1.50)" in results[1].measured


@pytest.mark.parametrize(("changes", "expected"), [
    ({"outcomes": [413, 200]}, [False, True, True]),          # one oversized body was served
    ({"outcomes": ["reset"]}, [False, True, True]),           # no 413 ever seen: the limit was never exercised
    ({"under_attack": [(0.15, 200)] * 19 + [(0.2, 503)]}, [True, False, True]),
    ({"under_attack": [(0.25, 200)] * 20}, [True, False, True]),   # p99 x2.5
    ({"dead": ["replica0"]}, [True, True, False]),
    ({"unhealthy": ["http://127.0.0.1:1"]}, [True, True, False]),
    ({"healthy_workers": 1}, [True, True, False]),
    ({"grown_mib": [2.0, 900.0]}, [True, True, False]),
])
def test_each_missed_attack_goal_fails_its_row(changes, expected):
    assert verdicts(hostile.judge_attack(attack(**changes))) == expected


def proxy(reply=b"HTTP/1.1 404 Not Found", connect=b"HTTP/1.1 400 Bad Request", contacts=0) -> hostile.ProxyProbe:
    return hostile.ProxyProbe([(b"GET //127.0.0.1:1/workers", b"HTTP/1.1 404 Not Found"), (b"GET /x", reply)],
                              connect, contacts)


@pytest.mark.parametrize(("probe", "ok"), [(proxy(), True), (proxy(reply=b"HTTP/1.1 200 OK"), False),
                                           (proxy(connect=b"HTTP/1.1 200 Connection established"), False),
                                           (proxy(contacts=1), False)])
def test_open_proxy_judge(probe, ok):
    assert hostile.judge_open_proxy([probe]).passed is ok


@pytest.mark.parametrize(("found", "ok"), [(hostile.Abandonment(16, 0.4), True), (hostile.Abandonment(16, 2.5), False),
                                           (hostile.Abandonment(16, None), False), (hostile.Abandonment(9, 0.1), False)])
def test_abandoned_judge(found, ok):
    assert hostile.judge_abandoned(found).passed is ok


@pytest.mark.parametrize(("run", "ok"), [(hostile.FuzzRun([200, 400], [], []), True),
                                         (hostile.FuzzRun([500], ["x -> 500"], []), False),
                                         (hostile.FuzzRun([400], [], ["adapter.log"]), False)])
def test_fuzz_judge(run, ok):
    assert hostile.judge_fuzz({"adapter": run}).passed is ok


def test_fuzz_bodies_put_a_wrong_type_at_every_leaf_and_container():
    bodies = hostile.fuzz_bodies({"a": [1, {"b": "x"}]}, random.Random(0))
    paths = {("a", 0), ("a", 1, "b"), ("a",), ("a", 1)}
    assert len(bodies) == 3 * len(paths)
    assert all(body != {"a": [1, {"b": "x"}]} for body in bodies[:3])


STOPPED = "stop everything                1.7s  PASS: 3 child processes stopped\n"


@pytest.mark.parametrize(("found", "ok"), [
    (orphans.Leftovers(7, 5, [], [], 1, STOPPED), True),
    (orphans.Leftovers(7, 5, [123], [], 1, STOPPED), False),
    (orphans.Leftovers(7, 5, [], [8000], 1, STOPPED), False),
    (orphans.Leftovers(7, 5, [], [], 1, "stop everything   1.7s  FAIL: 1 left\n"), False),
    (orphans.Leftovers(0, 0, [], [], 1, STOPPED), False),     # the chain never started: nothing was checked
])
def test_sighup_judge(found, ok):
    assert orphans.judge_sighup(found).passed is ok


@pytest.mark.parametrize(("found", "ok"), [(orphans.Leftovers(1, 1, [], [], -9), True),
                                           (orphans.Leftovers(1, 1, [42], [], -9), False),
                                           (orphans.Leftovers(1, 1, [], [9001], -9), False),
                                           (orphans.Leftovers(0, 0, [], [], -9), False)])
def test_sigkill_judge(found, ok):
    assert orphans.judge_sigkill(found).passed is ok
