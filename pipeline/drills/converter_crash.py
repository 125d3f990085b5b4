"""Converter crash: kill -9 `hunyuan-trt convert` at random points, then check what it left behind.

A source checkpoint large enough that writing takes a measurable time is generated with `make-tiny`.
A reference run records when the hidden `.OUT.partial-PID` directory appears and when OUT appears; each
kill waits for the partial directory, then lands at a seeded random point of that write window (the first at
its start, the second early in it, a few just after it). After each kill the output
directory must be absent, or complete and pass `verify`; a re-run must finish with shards byte-identical to
the reference and leave no partial directory behind.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.goals import GoalResult
from pipeline.model import TINY_MODEL_DIR
from pipeline.procs import ManagedProcess, wait_until

# A13B-style config scaled so that conversion writes ~120 MB (fp32): a write window of ~0.2 s on the
# development machine, long enough to be hit by a kill polled every 2 ms.
SIZES = {"hidden_size": 512, "intermediate_size": 512, "num_experts": 16, "vocab_size": 4096,
         "num_attention_heads": 8, "num_key_value_heads": 4, "attention_head_dim": 64, "head_dim": 64}
PER_LAYER = {"moe_intermediate_size": 512, "moe_topk": 2, "num_shared_expert": 1}
LAYERS = 2
POLL_S = 0.002


@dataclass(frozen=True)
class CrashPlan:
    kills: int = 20
    seed: int = 7
    profile: str = "cpu-tiny"


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "pipeline", *map(str, args)]


def make_source(work: Path) -> Path:
    config = json.loads((TINY_MODEL_DIR / "config.json").read_text()) | SIZES | {"num_hidden_layers": LAYERS}
    config |= {key: [value] * LAYERS for key, value in PER_LAYER.items()}
    (work / "source-config.json").write_text(json.dumps(config, indent=2))
    source = work / "source"
    _check(cli("make-tiny", "--out", source, "--config", work / "source-config.json", "--force"), "make-tiny")
    return source


def _check(argv: list[str], what: str) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PipelineError(f"converter drill: {what} failed with exit {result.returncode}: {last[0]}")
    return result


def shard_digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.safetensors"))}


def partials(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.partial-*"))


def reference_run(source: Path, out: Path, profile: str) -> float:
    """Convert once, watching the clock: seconds from the partial directory appearing to the output appearing."""
    process = ManagedProcess(cli("convert", "--model-dir", source, "--profile", profile, "--out", out)).start()
    staged = renamed = None

    def exited() -> bool:  # records when the partial directory and the output first appear
        nonlocal staged, renamed
        now = time.monotonic()
        staged = staged or (now if partials(out) else None)
        renamed = renamed or (now if out.exists() else None)
        return process.process.poll() is not None

    wait_until(exited, math.inf, POLL_S)
    if process.process.returncode != 0 or not out.exists():
        raise PipelineError(f"converter drill: reference convert exited with {process.process.returncode}")
    renamed = renamed or time.monotonic()
    return renamed - (staged or renamed)


def kill_at(source: Path, out: Path, profile: str, delay: float) -> bool:
    """Start convert; once its partial directory appears, wait `delay` s and kill -9 its process group.

    Anchoring on the partial directory (not on the start) keeps the kill inside the write phase however
    long the imports take on a busy machine. True if the process was still writing when killed.
    """
    process = ManagedProcess(cli("convert", "--model-dir", source, "--profile", profile, "--out", out)).start()
    def exited() -> bool:
        return process.process.poll() is not None

    wait_until(lambda: bool(partials(out)) or exited(), math.inf, POLL_S)
    wait_until(exited, delay, POLL_S)
    writing = bool(partials(out)) and process.process.poll() is None
    process.kill()
    process.process.wait(10)
    return writing


def inspect_after_kill(source: Path, out: Path) -> str:
    """absent | verified | broken: the state a crash left the output directory in."""
    if not out.exists():
        return "absent"
    result = subprocess.run(cli("verify", "--checkpoint", out, "--hf-dir", source), capture_output=True,
                            check=False)
    return "verified" if result.returncode == 0 else "broken"


def _one_kill(source: Path, out: Path, plan: CrashPlan, delay: float, reference: dict) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    writing = kill_at(source, out, plan.profile, delay)
    state = inspect_after_kill(source, out)
    _check(cli("convert", "--model-dir", source, "--profile", plan.profile, "--out", out), "re-run of convert")
    identical = shard_digests(out) == reference
    return {"delay": delay, "writing": writing, "state": state, "identical": identical,
            "partials_left": len(partials(out))}


def run(work: Path, plan: CrashPlan = CrashPlan()) -> list[GoalResult]:
    work.mkdir(parents=True, exist_ok=True)
    source, out = make_source(work), work / "converted"
    shutil.rmtree(out, ignore_errors=True)
    window = reference_run(source, out, plan.profile)
    reference = shard_digests(out)
    rng = random.Random(plan.seed)
    # delays after the partial directory appears: the first lands the moment it appears and the second early in
    # the write window, so even the short drill hits a half-written state however fast the kernel copies run on
    # this machine; the rest are spread over the window and a little past it
    shares = [0.0, 0.3][:plan.kills] + [rng.uniform(0.0, 1.2) for _ in range(plan.kills - 2)]
    delays = [share * window for share in shares]
    trials = [_one_kill(source, out, plan, delay, reference) for delay in delays]
    return evaluate(trials, len(reference))


def evaluate(trials: list[dict], shards: int) -> list[GoalResult]:
    states = {state: sum(t["state"] == state for t in trials) for state in ("absent", "verified", "broken")}
    writing = sum(t["writing"] for t in trials)
    bad_rerun = [t for t in trials if not t["identical"] or t["partials_left"]]
    return [
        GoalResult("converter crash: output after kill -9", f"absent or complete + verified ({len(trials)}/"
                    f"{len(trials)})", f"{states['absent'] + states['verified']}/{len(trials)}: {states['absent']} "
                    f"absent, {states['verified']} verified, {states['broken']} broken; {writing} kills landed "
                    "while shards were being written", states["broken"] == 0 and writing > 0 and shards > 0,
                    [f"kill {t['delay']:.2f} s into writing left a broken output" for t in trials if t["state"] == "broken"]
                    + ([] if writing else ["no kill landed while writing: the drill proved nothing"])),
        GoalResult("converter crash: re-run after each kill", "byte-identical shards, no partial dir left",
                    f"{len(trials) - len(bad_rerun)}/{len(trials)} identical ({shards} shards compared)",
                    not bad_rerun and shards > 0,
                    [f"kill {t['delay']:.2f} s into writing: identical={t['identical']}, partial dirs left="
                     f"{t['partials_left']}" for t in bad_rerun]),
    ]
