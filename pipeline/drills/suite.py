"""The drill suite: which drills exist, their short (make test) and full (make drills) forms, and how to run
them against one shared serving chain."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.drills import auth, bad_input, converter_crash, hostile, orphans, replica_kill, rolling_restart
from pipeline.errors import PipelineError
from pipeline.goals import GoalResult
from pipeline.topology import Topology, cpu_backend


@dataclass(frozen=True)
class Context:
    model_dir: Path
    work: Path
    short: bool
    surface: str | None = None  # the engine surface the CPU replicas present (the drills in SURFACE_DRILLS)


def _replica_kill(ctx: Context) -> list[GoalResult]:
    plan = replica_kill.KillPlan(warm_s=2, down_s=2, tail_s=1) if ctx.short else replica_kill.KillPlan()
    return replica_kill.run(ctx.model_dir, ctx.work / "replica-kill", plan, ctx.surface)


def _rolling_restart(ctx: Context) -> list[GoalResult]:
    plan = rolling_restart.RollPlan(warm_s=2, tail_s=1, restarts=1, replicas=2, plain=2, streams=1) if ctx.short \
        else rolling_restart.RollPlan()
    return rolling_restart.run(ctx.model_dir, ctx.work / "rolling-restart", plan)


def _converter_crash(ctx: Context) -> list[GoalResult]:
    plan = converter_crash.CrashPlan(kills=2 if ctx.short else 20)
    return converter_crash.run(ctx.work / "converter-crash", plan)


def _bad_input_cli(ctx: Context) -> list[GoalResult]:
    work = ctx.work / "bad-input"
    work.mkdir(parents=True, exist_ok=True)
    source = work / "source"
    made = subprocess.run([sys.executable, "-m", "pipeline", "make-tiny", "--out", str(source), "--force"],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        raise PipelineError(f"bad-input drill: make-tiny failed: {made.stderr.strip()[-200:]}")
    return [bad_input.run_profiles(work), bad_input.run_checkpoints(work, source)]


def _http_and_auth(ctx: Context) -> list[GoalResult]:
    """One replica behind an adapter behind smg: bad HTTP input to each hop, then the gateway's auth."""
    key = secrets.token_urlsafe(24)
    with Topology(cpu_backend(ctx.model_dir), ctx.work / "http", replicas=1, adapters=True, gateway_key=key) as chain:
        targets = [bad_input.Target("cpu backend", chain.replicas[0].url, {}),
                   bad_input.Target("adapter", chain.adapters[0].url, {}),
                   bad_input.Target("gateway", chain.gateway.url, {"Authorization": f"Bearer {key}"})]
        return [bad_input.run_http(targets), *auth.run(chain.gateway.url, key)]


def _hostile_input(ctx: Context) -> list[GoalResult]:
    """Two replicas, each behind an adapter, behind smg: open-proxy attempts, fuzz, abandoned requests, then
    oversized bodies while normal requests run. The short form (`make test`) takes 60 normal requests per phase,
    the full one 180, so that its p99 is not just the slowest request."""
    key = secrets.token_urlsafe(24)
    with Topology(cpu_backend(ctx.model_dir), ctx.work / "hostile", replicas=2, adapters=True,
                  gateway_key=key) as chain:
        replica, adapter = chain.replicas[1], chain.adapters[1]
        proxy = hostile.judge_open_proxy([hostile.probe_open_proxy(a.url) for a in chain.adapters])
        fuzz = hostile.judge_fuzz({
            "adapter": hostile.fuzz(adapter.url, True, [adapter.log_path, replica.log_path]),
            "stand-in": hostile.fuzz(replica.url, False, [replica.log_path])})
        abandoned = hostile.judge_abandoned(hostile.abandon_requests(chain.adapters[0].url, chain.replicas[0].url))
        processes = {s.name: s.process for s in [*chain.replicas, *chain.adapters]}
        run = hostile.oversized_attack(chain.gateway.url, key, [a.url for a in chain.adapters], processes,
                                       per_phase=20 if ctx.short else 60)
        return [*hostile.judge_attack(run), proxy, abandoned, fuzz]


def _orphans(ctx: Context) -> list[GoalResult]:
    """SIGHUP on the demo, then SIGKILL on `serve` of the bundle that demo built."""
    work = ctx.work / "orphans"
    sighup = orphans.judge_sighup(orphans.sighup_demo(ctx.model_dir, work / "demo"))
    bundle = work / "demo" / "bundle"
    if not (bundle / "bundle.json").is_file():
        return [sighup, GoalResult("orphans: SIGKILL on serve", "no backend left", "not run: the demo built no "
                                   "bundle", False)]
    return [sighup, orphans.judge_sigkill(orphans.sigkill_serve(bundle, work / "serve.log"))]


DRILLS: dict[str, Callable[[Context], list[GoalResult]]] = {
    "replica-kill": _replica_kill,
    "rolling-restart": _rolling_restart,
    "converter-crash": _converter_crash,
    "bad-input": _bad_input_cli,
    "http-auth": _http_and_auth,
    "hostile-input": _hostile_input,
    "orphans": _orphans,
}
# the drills whose CPU replicas can present an engine's surface (`Context.surface`): failover behind smg per engine
SURFACE_DRILLS = ("replica-kill",)


def run_drills(names: list[str], ctx: Context, progress: Callable[[str], None] = print) -> list[GoalResult]:
    results = []
    for name in names:
        surface = f", {ctx.surface} surface" if ctx.surface else ""
        progress(f"drill {name} ({'short' if ctx.short else 'full'}{surface}) ...")
        results += DRILLS[name](ctx)
    return results
