"""Replica kill: 3 CPU replicas behind smg (our tuned flags), steady load, kill -9 one replica, restart it.

Goals: no non-streamed request lost (smg retries before the first byte); every stream cut by the kill ends
with an error event, none hangs or ends silently; the restarted replica takes traffic within 5 s of being
ready. The drill also fails if the victim served nothing before the kill (then it proved nothing).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.drills.load import Load, Record
from pipeline.goals import GoalResult
from pipeline.procs import wait_until
from pipeline.topology import Topology, cpu_backend

RECOVERY_GOAL_S = 5.0
POLL_S = 0.1


@dataclass(frozen=True)
class KillPlan:
    warm_s: float = 4.0  # load before the kill
    down_s: float = 3.0  # how long the replica stays dead
    recover_timeout_s: float = 30.0  # give up waiting for traffic on the restarted replica
    tail_s: float = 2.0  # load after recovery
    plain: int = 3  # non-streaming client threads
    streams: int = 3  # streaming client threads (64-token streams, so some are in flight at the kill)


def _wait_for_traffic(load: Load, worker: str, since: float, timeout: float) -> float | None:
    """Seconds from `since` to the first request routed to `worker`, or None if none came within `timeout`."""
    if wait_until(lambda: load.first_routed_to(worker, since) is not None, timeout, POLL_S):
        return load.first_routed_to(worker, since) - since
    return None


def _exercise(topology: Topology, key: str, plan: KillPlan) -> dict:
    victim = topology.replicas[0]
    load = Load(topology.gateway.url, key, plan.plain, plan.streams).start()
    try:
        time.sleep(plan.warm_s)  # a load phase of fixed length, not a readiness wait
        killed_at = time.monotonic()
        victim.kill()
        time.sleep(plan.down_s)
        victim.start()
        restart_s = victim.wait()
        ready_at = time.monotonic()
        recovery = _wait_for_traffic(load, victim_front(topology), ready_at, plan.recover_timeout_s)
        time.sleep(plan.tail_s)
    finally:
        records = load.stop()
    before = sum(r.worker == victim_front(topology) and r.end < killed_at for r in records)
    return {"records": records, "recovery_s": recovery, "restart_s": restart_s, "victim_before": before}


def victim_front(topology: Topology) -> str:
    """The URL smg routes to for replica 0 (its adapter when the topology has adapters)."""
    return topology.fronts[0].url


def _count(records: list[Record], kind: str, outcome: str | None = None) -> int:
    return sum(r.kind == kind and (outcome is None or r.outcome == outcome) for r in records)


def evaluate(measured: dict, recovery_goal_s: float = RECOVERY_GOAL_S) -> list[GoalResult]:
    records = measured["records"]
    plain, lost = _count(records, "plain"), [r for r in records if r.kind == "plain" and r.outcome != "ok"]
    streams = [r for r in records if r.kind == "stream"]
    failed_streams = [r for r in streams if r.outcome != "ok"]
    bad_streams = [r for r in failed_streams if r.outcome in ("hang", "cut")]
    before, recovery = measured["victim_before"], measured["recovery_s"]
    lost_details = [f"non-streamed request {r.outcome} after {r.end - r.start:.2f} s" for r in lost[:5]]
    if before == 0:
        lost_details.append("the victim served no request before the kill: the drill proved nothing")
    return [
        GoalResult("replica kill: non-streamed requests lost", "0",
                    f"{len(lost)} / {plain} (victim served {before} before the kill)",
                    not lost and before > 0 and plain > 0, lost_details),
        GoalResult("replica kill: cut streams end with an error event", "0 hung, 0 silently cut",
                    f"{len(failed_streams)} of {len(streams)} streams failed: "
                    f"{_count(records, 'stream', 'error_event')} error event, {_count(records, 'stream', 'cut')} "
                    f"silent cut, {_count(records, 'stream', 'hang')} hung", not bad_streams and streams != [],
                    [f"stream {r.outcome} after {r.end - r.start:.2f} s" for r in bad_streams[:5]]),
        GoalResult("replica kill: restarted replica takes traffic", f"<= {recovery_goal_s:g} s after ready",
                    "never" if recovery is None else
                    f"{recovery:.2f} s after ready (process start to ready {measured['restart_s']:.1f} s)",
                    recovery is not None and recovery <= recovery_goal_s),
    ]


def run(model_dir: Path, log_dir: Path, plan: KillPlan = KillPlan()) -> list[GoalResult]:
    key = secrets.token_urlsafe(24)
    with Topology(cpu_backend(model_dir), log_dir, replicas=3, gateway_key=key) as topology:
        return evaluate(_exercise(topology, key, plan))
