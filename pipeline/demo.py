"""`make demo`: the whole pipeline on the embedded tiny model, end to end, on CPU.

inspect + plan cpu-tiny -> convert at tp=2/ep=2 -> verify the shards against transformers -> build the
serve bundle -> 2 replicas of `hunyuan-trt serve --bundle` (CPU backend + Hunyuan adapter) ->
smg in front with an API key (`pipeline.topology`) -> the smoke client through the gateway -> a summary table
-> stop everything (also on failure, Ctrl-C, SIGTERM or SIGHUP). Each stage runs the real `hunyuan-trt`
command as a child process and logs to WORKDIR/logs/; a stage whose prerequisite failed is reported as not
run, never silently skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from pipeline.errors import PipelineError
from pipeline.gateway import API_KEY_ENV
from pipeline.topology import Topology, bundle_server

PROFILE = "cpu-tiny"
REPLICAS = 2
STAGE_TIMEOUT_S = 300
READY_TIMEOUT_S = 180


class StageFailed(Exception):
    """A stage did not do its job; the message is the one-line reason shown in the summary."""


@dataclass
class StageResult:
    name: str
    seconds: float
    status: str  # PASS | FAILED | NOT RUN
    detail: str


@dataclass
class Demo:
    model_dir: Path
    work: Path
    api_key: str
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    chain: Topology | None = None

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    def cli(self, log_name: str, *args: str, env: dict | None = None) -> str:
        """Run `hunyuan-trt ARGS` as a child process; its output goes to logs/<log_name>.log."""
        log = self.logs / f"{log_name}.log"
        with open(log, "w") as out:
            done = subprocess.run([sys.executable, "-m", "pipeline", *args], stdout=out, stderr=subprocess.STDOUT,
                                  timeout=STAGE_TIMEOUT_S, env=env)
        text = log.read_text(errors="replace")
        if done.returncode != 0:
            raise StageFailed(f"`hunyuan-trt {args[0]}` exited {done.returncode}: {last_line(text)} (log: {log})")
        return text

    def topology(self) -> Topology:
        """REPLICAS x `hunyuan-trt serve --bundle` behind smg; stopped with the demo's stack."""
        if self.chain is None:
            self.chain = Topology(bundle_server(self.work / "bundle", READY_TIMEOUT_S), self.logs, replicas=REPLICAS,
                                  gateway_key=self.api_key, ready_timeout=READY_TIMEOUT_S)
            self.stack.callback(self.chain.close)
        return self.chain


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "(no output)"


# stages -------------------------------------------------------------------------------------------

def inspect_and_plan(demo: Demo) -> str:
    params = json.loads(demo.cli("inspect", "inspect", "--model-dir", str(demo.model_dir), "--json"))["params"]
    plan = json.loads(demo.cli("plan", "plan", "--profile", PROFILE, "--json"))
    return f"{params['total']:,} params; plan: {plan['verdict']}"


def convert(demo: Demo) -> str:
    out = demo.cli("convert", "convert", "--model-dir", str(demo.model_dir), "--profile", PROFILE,
                   "--tp", "2", "--ep", "2", "--out", str(demo.work / "checkpoint"), "--force")
    ranks = sorted(p.name for p in (demo.work / "checkpoint").glob("rank*.safetensors"))
    if len(ranks) != 2:
        raise StageFailed(f"expected 2 rank files, found {ranks}: {last_line(out)}")
    return f"{', '.join(ranks)} written"


def verify(demo: Demo) -> str:
    report = demo.work / "verify.json"
    demo.cli("verify", "verify", "--checkpoint", str(demo.work / "checkpoint"), "--hf-dir", str(demo.model_dir),
             "--json", str(report))
    data = json.loads(report.read_text())
    return f"max |dlogit| {data['max_abs_diff']:.1e}, top-1 agreement {100 * data['top1_agreement']:.0f}%"


def build(demo: Demo) -> str:
    demo.cli("build", "build", "--profile", PROFILE, "--model-dir", str(demo.model_dir),
             "--out", str(demo.work / "bundle"), "--force")
    files = sorted(p.name for p in (demo.work / "bundle").iterdir())
    argv = json.loads((demo.work / "bundle" / "argv.json").read_text())["serve"]
    return f"{', '.join(files)}; backend `{' '.join(argv[1:3])}`"


def start_replicas(demo: Demo) -> str:
    """Each replica is `hunyuan-trt serve --bundle`: the bundle's CPU backend with the Hunyuan adapter in front."""
    chain = demo.topology()
    chain.start_replicas()
    return f"{REPLICAS} x (CPU backend + adapter) ready: {', '.join(s.url for s in chain.fronts)}"


def start_gateway(demo: Demo) -> str:
    gateway = demo.topology().start_gateway()
    return f"smg at {gateway.url}, cache_aware, {len(gateway.worker_urls)} healthy workers, API key required"


def smoke(demo: Demo) -> str:
    """The smoke client through the gateway; the key travels in the environment, not on the command line."""
    out = demo.cli("smoke", "smoke", "--url", demo.chain.gateway.url, env={**os.environ, API_KEY_ENV: demo.api_key})
    return last_line(out)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Demo], str]
    needs: tuple[str, ...] = ()


STAGES = (
    Stage("inspect + plan cpu-tiny", inspect_and_plan),
    Stage("convert tp=2 ep=2", convert),
    Stage("verify shards", verify, ("convert tp=2 ep=2",)),
    Stage("build bundle", build),
    Stage("start replicas + adapters", start_replicas, ("build bundle",)),
    Stage("start smg gateway", start_gateway, ("start replicas + adapters",)),
    Stage("smoke via gateway", smoke, ("start smg gateway",)),
)


def run_stage(stage: Stage, demo: Demo, failed: set[str]) -> StageResult:
    missing = [n for n in stage.needs if n in failed]
    if missing:
        failed.add(stage.name)
        return StageResult(stage.name, 0.0, "NOT RUN", f"needs '{missing[0]}', which failed")
    if "interrupted" in failed:
        return StageResult(stage.name, 0.0, "NOT RUN", "the demo was interrupted")
    start = time.monotonic()
    try:
        detail, status = stage.run(demo), "PASS"
    except (StageFailed, PipelineError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as exc:
        detail, status = str(exc).splitlines()[0] if str(exc) else type(exc).__name__, "FAILED"
        failed.add(stage.name)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: report it, let the caller stop everything
        detail, status = "interrupted", "FAILED"
        failed.update({stage.name, "interrupted"})
    return StageResult(stage.name, time.monotonic() - start, status, detail)


def run_demo(model_dir: Path, work: Path, api_key: str | None = None,
             report: Callable[[StageResult], None] = lambda r: None) -> list[StageResult]:
    """Run every stage, then stop everything that was started; returns one result per stage."""
    work.mkdir(parents=True, exist_ok=True)
    demo = Demo(Path(model_dir).resolve(), work.resolve(), api_key or secrets.token_urlsafe(18))
    demo.logs.mkdir(exist_ok=True)
    results, failed = [], set()
    with demo.stack:
        for stage in STAGES:
            try:  # an interrupt can land between stages too, not only inside one
                result = run_stage(stage, demo, failed)
            except KeyboardInterrupt:
                failed.update({stage.name, "interrupted"})
                result = StageResult(stage.name, 0.0, "FAILED", "interrupted")
            results.append(result)
            try:
                report(result)
            except KeyboardInterrupt:
                failed.add("interrupted")
        start = time.monotonic()
    results.append(stopped(demo, time.monotonic() - start))
    report(results[-1])
    return results


def stopped(demo: Demo, seconds: float) -> StageResult:
    """Every child exited and none of the demo's URLs still answers."""
    children = demo.chain.processes() if demo.chain else []
    alive = [" ".join(c.argv[2:4]) for c in children if c.process.poll() is None]
    alive += [url for url in (demo.chain.urls() if demo.chain else []) if answers(url)]
    if alive:
        return StageResult("stop everything", seconds, "FAILED", f"still running: {', '.join(alive)}")
    return StageResult("stop everything", seconds, "PASS", f"{len(children)} child processes stopped, ports closed")


def answers(url: str) -> bool:
    try:
        requests.get(f"{url}/health", timeout=2)
    except requests.RequestException:
        return False
    return True


def summary_table(results: list[StageResult], total: float) -> str:
    width = max(len(r.name) for r in results)
    lines = [f"{'stage':<{width}}  {'time':>7}  result", f"{'-' * width}  {'-' * 7}  {'-' * 40}"]
    lines += [f"{r.name:<{width}}  {r.seconds:>6.1f}s  {r.status}: {r.detail}" for r in results]
    passed = sum(r.status == "PASS" for r in results)
    lines.append(f"{'total':<{width}}  {total:>6.1f}s  {passed}/{len(results)} stages passed")
    return "\n".join(lines)

