"""Rolling restart: replicas (3; the short form 2) of `hunyuan-trt serve` (CPU backend + adapter, as a pod runs
them) behind smg under steady load, each stopped with SIGTERM and started again, one at a time, as a Deployment
rollout does.

Goals: no request lost, streamed or not (serve drains: /health fails, new requests get 503 that smg retries
elsewhere, streams in flight finish); every replica ends by the SIGTERM (0, or 143 when the backend dies of
the SIGTERM it gets after the drain) and is healthy in smg again before the next one goes.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.drills.load import Load, Record
from pipeline.errors import PipelineError
from pipeline.gateway import healthy_workers
from pipeline.goals import GoalResult
from pipeline.procs import wait_until, with_log
from pipeline.topology import Server, Topology, bundle_server

PROFILE = "cpu-tiny"
READY_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 60.0
STOPPED_BY_SIGTERM = (0, 128 + signal.SIGTERM)


@dataclass(frozen=True)
class RollPlan:
    warm_s: float = 3.0  # load before the first restart
    tail_s: float = 2.0  # load after the last replica is back
    restarts: int = 3  # replicas restarted, one after the other (the short form restarts one)
    replicas: int = 3  # behind smg (the short form runs two: the survivor then serves everything)
    plain: int = 3
    streams: int = 3


@dataclass
class Restart:
    exit_code: int | None
    drain_s: float  # SIGTERM to exit
    back_s: float | None  # exit to healthy in smg again (None: never)


def build_bundle(model_dir: Path, out: Path, log_dir: Path) -> Path:
    log = log_dir / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        built = subprocess.run([sys.executable, "-m", "pipeline", "build", "--profile", PROFILE, "--model-dir",
                                str(model_dir), "--out", str(out), "--force"], stdout=output, stderr=subprocess.STDOUT)
    if built.returncode:
        raise PipelineError(with_log(f"rolling-restart drill: build failed with code {built.returncode}", log))
    return out


def restart(replica: Server, topology: Topology, count: int) -> Restart:
    """SIGTERM one replica, wait for its drain and exit, start it again, wait until smg has `count` healthy."""
    stopped_at = time.monotonic()
    replica.process.kill(signal.SIGTERM)
    try:
        code = replica.process.process.wait(DRAIN_TIMEOUT_S + 30)
    except subprocess.TimeoutExpired:
        code = None
    drain_s = time.monotonic() - stopped_at
    replica.stop()
    down_at = time.monotonic()
    replica.start()
    replica.wait(READY_TIMEOUT_S)
    gateway = topology.gateway
    back = wait_until(lambda: healthy_workers(gateway.url, gateway.api_key) >= count, 60, 0.2)
    return Restart(code, drain_s, time.monotonic() - down_at if back else None)


def _exercise(topology: Topology, key: str, plan: RollPlan) -> dict:
    load = Load(topology.gateway.url, key, plan.plain, plan.streams).start()
    try:
        time.sleep(plan.warm_s)  # a load phase of fixed length, not a readiness wait
        restarts = [restart(replica, topology, len(topology.replicas)) for replica in topology.replicas[:plan.restarts]]
        time.sleep(plan.tail_s)
    finally:
        records = load.stop()
    return {"records": records, "restarts": restarts, "replicas": len(topology.replicas)}


def evaluate(measured: dict) -> list[GoalResult]:
    records: list[Record] = measured["records"]
    restarts: list[Restart] = measured["restarts"]
    lost = [r for r in records if r.outcome != "ok"]
    plain = sum(r.kind == "plain" for r in records)
    streams = sum(r.kind == "stream" for r in records)
    drained = [r for r in restarts if r.exit_code in STOPPED_BY_SIGTERM]
    back = [r.back_s for r in restarts if r.back_s is not None]
    return [
        GoalResult(f"rolling restart: requests lost ({len(restarts)} of {measured['replicas']} replicas restarted one "
                   "by one under load)",
                   "0",
                   f"{len(lost)} / {len(records)} ({plain} non-streamed, {streams} streamed)",
                   not lost and plain > 0 and streams > 0,
                   [f"{r.kind} request {r.outcome} after {r.end - r.start:.2f} s" for r in lost[:5]]),
        GoalResult("rolling restart: each replica drains, stops, is healthy again", f"{len(restarts)}/{len(restarts)}",
                   f"{len(drained)}/{len(restarts)}; drain {max(r.drain_s for r in restarts):.1f} s max; "
                   f"back in smg {max(back, default=0):.1f} s max after exit",
                   len(drained) == len(back) == len(restarts),
                   [f"restart: exit code {r.exit_code}, back {r.back_s}" for r in restarts
                    if r.exit_code not in STOPPED_BY_SIGTERM or r.back_s is None]),
    ]


def run(model_dir: Path, log_dir: Path, plan: RollPlan = RollPlan()) -> list[GoalResult]:
    key = secrets.token_urlsafe(24)
    bundle = build_bundle(model_dir, log_dir / "bundle", log_dir)
    replica = bundle_server(bundle, READY_TIMEOUT_S)
    with Topology(lambda port: [*replica(port), "--drain-timeout", str(DRAIN_TIMEOUT_S)], log_dir, replicas=plan.replicas,
                  gateway_key=key, ready_timeout=READY_TIMEOUT_S) as topology:
        return evaluate(_exercise(topology, key, plan))
