"""`hunyuan-trt demo` as an integration test: the whole chain on the embedded tiny model, plus its failure path.

The full run is what `make demo` does (convert, verify, build, two replicas behind smg, smoke); it must pass,
print the summary and leave nothing running. A broken checkpoint must fail the right stages, mark the
stages that depend on them as not run, and still stop every process it started.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.demo import STAGES, run_demo
from pipeline.model import TINY_MODEL_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL_DIR = Path(os.environ.get("HUNYUAN_TINY_DIR", TINY_MODEL_DIR))


def run_cli(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_demo_runs_the_whole_pipeline_and_prints_the_summary(tmp_path):
    done = run_cli("demo", "--model-dir", MODEL_DIR, "--workdir", tmp_path / "demo")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    table = done.stdout[done.stdout.index("\nstage"):]
    for stage in [s.name for s in STAGES] + ["stop everything"]:
        assert re.search(rf"^{re.escape(stage)}\s+[\d.]+s\s+PASS", table, re.M), f"{stage} did not pass:\n{table}"
    assert re.search(r"^total\s+[\d.]+s", table, re.M), table  # the wall time is a benchmark line, not a goal here
    assert (tmp_path / "demo" / "checkpoint" / "rank1.safetensors").is_file()
    assert (tmp_path / "demo" / "bundle" / "argv.json").is_file()


def test_demo_refuses_a_model_dir_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    done = run_cli("demo", "--model-dir", tmp_path, "--workdir", tmp_path / "demo", timeout=60)
    assert done.returncode == 2
    assert "safetensors" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "demo").exists()


def test_a_broken_checkpoint_fails_its_stages_and_everything_is_stopped(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(MODEL_DIR, broken, ignore=shutil.ignore_patterns("*.safetensors"))
    (broken / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    lines = []
    results = {r.name: r for r in run_demo(broken, tmp_path / "demo", "k", report=lines.append)}
    assert results["convert tp=2 ep=2"].status == "FAILED"
    assert results["verify shards"].status == "NOT RUN"
    assert results["start replicas + adapters"].status == "FAILED"
    assert results["start smg gateway"].status == "NOT RUN"
    assert results["smoke via gateway"].status == "NOT RUN"
    assert results["stop everything"].status == "PASS", results["stop everything"].detail
    assert len(lines) == len(STAGES) + 1  # progress reported for every stage, none silently skipped


def test_sigterm_mid_demo_reports_the_interruption_and_stops_everything(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "demo", "--model-dir", str(MODEL_DIR),
                             "--workdir", str(tmp_path / "demo")], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:  # progress lines arrive as each stage ends
            lines.append(line)
            if "build bundle" in line:
                break
        proc.send_signal(signal.SIGTERM)  # lands while the replicas are starting
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert re.search(r"^start replicas \+ adapters\s+[\d.]+s\s+(FAILED|NOT RUN): .*interrupted", out, re.M), out
    assert re.search(r"^smoke via gateway\s+[\d.]+s\s+NOT RUN", out, re.M)
    assert re.search(r"^stop everything\s+[\d.]+s\s+PASS", out, re.M), out
