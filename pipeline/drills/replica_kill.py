"""Replica kill: CPU replicas behind smg (our tuned flags), steady load, kill -9 one replica, restart it.

Goals: no non-streamed request lost (smg retries before the first byte); every stream cut by the kill ends
with an error event, none hangs or ends silently; smg marks the killed replica down within the bound of its
health checks while the others serve; the restarted replica takes traffic within 5 s of being ready. The drill
also fails if the victim served nothing before the kill (then it proved nothing).

The replicas can present an engine's surface (`surface="vllm"`: its health path and metrics). With
`KillPlan(restart=False)` the victim stays dead and the drill is the failover alone: what
`tests/test_cpu_backend_surfaces.py` runs against each surface, two replicas behind adapters.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.drills.load import Load, Record
from pipeline.gateway import mark_down_bound_s, worker_health
from pipeline.goals import GoalResult
from pipeline.procs import wait_until
from pipeline.topology import Topology, cpu_backend

RECOVERY_GOAL_S = 5.0
POLL_S = 0.1


@dataclass(frozen=True)
class KillPlan:
    warm_s: float = 4.0  # load before the kill, and at least until the victim has served a request
    down_s: float = 3.0  # how long the replica stays dead, and at least until smg marks it down
    restart: bool = True  # False: the replica stays dead (the failover alone)
    mark_down_timeout_s: float = 15.0  # give up waiting for smg to mark the killed replica down
    traffic_timeout_s: float = 30.0  # give up waiting for traffic on the victim (before the kill, after the restart)
    tail_s: float = 2.0  # load after recovery (after the mark-down when there is no restart)
    plain: int = 3  # non-streaming client threads
    streams: int = 3  # streaming client threads (64-token streams, so some are in flight at the kill)


def _wait_for_traffic(load: Load, worker: str, since: float, timeout: float) -> float | None:
    """Seconds from `since` to the first request routed to `worker`, or None if none came within `timeout`."""
    if wait_until(lambda: load.first_routed_to(worker, since) is not None, timeout, POLL_S):
        return load.first_routed_to(worker, since) - since
    return None


def _wait_marked_down(gateway_url: str, key: str, worker: str, since: float, timeout: float) -> float | None:
    """Seconds from `since` until smg lists `worker` as unhealthy, or None if it did not within `timeout`."""
    if wait_until(lambda: worker_health(gateway_url, key).get(worker) is False, timeout, POLL_S):
        return time.monotonic() - since
    return None


def exercise(topology: Topology, key: str, plan: KillPlan) -> dict:
    """Steady load through smg; kill -9 replica 0, wait until smg marks it down, restart it unless the plan
    says not to. Requests that start while smg holds it down count for the survivors."""
    victim, front, gateway_url = topology.replicas[0], victim_front(topology), topology.gateway.url
    load = Load(gateway_url, key, plan.plain, plan.streams).start()
    started_at, ready_at = time.monotonic(), math.inf
    restart_s = recovery = None
    try:
        time.sleep(plan.warm_s)  # a load phase of fixed length, not a readiness wait
        _wait_for_traffic(load, front, started_at, plan.traffic_timeout_s)  # a kill before it would prove nothing
        killed_at = time.monotonic()
        victim.kill()
        marked_down_s = _wait_marked_down(gateway_url, key, front, killed_at, plan.mark_down_timeout_s)
        time.sleep(max(0.0, killed_at + plan.down_s - time.monotonic()))
        if plan.restart:
            victim.start()
            restart_s = victim.wait()
            ready_at = time.monotonic()
            recovery = _wait_for_traffic(load, front, ready_at, plan.traffic_timeout_s)
        time.sleep(plan.tail_s)
    finally:
        records = load.stop()
    before = sum(r.worker == front and r.end < killed_at for r in records)
    survivors = 0 if marked_down_s is None else sum(
        r.outcome == "ok" and r.worker != front and killed_at + marked_down_s <= r.start < ready_at for r in records)
    return {"records": records, "victim_before": before, "marked_down_s": marked_down_s,
            "mark_down_bound_s": mark_down_bound_s(topology.gateway_overrides), "survivors_served": survivors,
            "restart_s": restart_s, "recovery_s": recovery}


def victim_front(topology: Topology) -> str:
    """The URL smg routes to for replica 0 (its adapter when the topology has adapters)."""
    return topology.fronts[0].url


def _count(records: list[Record], kind: str, outcome: str | None = None) -> int:
    return sum(r.kind == kind and (outcome is None or r.outcome == outcome) for r in records)


def evaluate(measured: dict, recovery_goal_s: float = RECOVERY_GOAL_S) -> list[GoalResult]:
    """The goals of one kill; the recovery goal only when the victim was restarted (`restart_s` is not None)."""
    records = measured["records"]
    plain, lost = _count(records, "plain"), [r for r in records if r.kind == "plain" and r.outcome != "ok"]
    streams = [r for r in records if r.kind == "stream"]
    failed_streams = [r for r in streams if r.outcome != "ok"]
    bad_streams = [r for r in failed_streams if r.outcome in ("hang", "cut")]
    before, recovery = measured["victim_before"], measured["recovery_s"]
    marked_down_s, bound_s = measured["marked_down_s"], measured["mark_down_bound_s"]
    lost_details = [f"non-streamed request {r.outcome} after {r.end - r.start:.2f} s" for r in lost[:5]]
    if before == 0:
        lost_details.append("the victim served no request before the kill: the drill proved nothing")
    results = [
        GoalResult("replica kill: non-streamed requests lost", "0",
                    f"{len(lost)} / {plain} (victim served {before} before the kill)",
                    not lost and before > 0 and plain > 0, lost_details),
        GoalResult("replica kill: cut streams end with an error event", "0 hung, 0 silently cut",
                    f"{len(failed_streams)} of {len(streams)} streams failed: "
                    f"{_count(records, 'stream', 'error_event')} error event, {_count(records, 'stream', 'cut')} "
                    f"silent cut, {_count(records, 'stream', 'hang')} hung", not bad_streams and streams != [],
                    [f"stream {r.outcome} after {r.end - r.start:.2f} s" for r in bad_streams[:5]]),
        GoalResult("replica kill: smg marks the victim down, the others serve",
                    f"<= {bound_s:g} s after the kill (smg's health checks: interval x failures + timeout)",
                    "never: still healthy in smg" if marked_down_s is None else
                    f"{marked_down_s:.2f} s after the kill; the others then served {measured['survivors_served']} requests",
                    marked_down_s is not None and marked_down_s <= bound_s and measured["survivors_served"] > 0),
    ]
    if measured["restart_s"] is not None:
        results.append(GoalResult(
            "replica kill: restarted replica takes traffic", f"<= {recovery_goal_s:g} s after ready",
            "never" if recovery is None else
            f"{recovery:.2f} s after ready (process start to ready {measured['restart_s']:.1f} s)",
            recovery is not None and recovery <= recovery_goal_s))
    return results


def run(model_dir: Path, log_dir: Path, plan: KillPlan = KillPlan(), surface: str | None = None) -> list[GoalResult]:
    """3 replicas of the CPU backend (presenting `surface` when given) behind smg, one killed as `plan` says."""
    key = secrets.token_urlsafe(24)
    with Topology(cpu_backend(model_dir, surface=surface), log_dir, replicas=3, gateway_key=key) as topology:
        return evaluate(exercise(topology, key, plan))
