"""verify must catch a deliberately wrong split: the faults are injected into the converter (the table and the
expert ownership rule), the checkpoint is written, and the unmodified verify has to reject it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.checkpoint import tensor_plan as plan_module
from pipeline.checkpoint.layout import Layout
from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf")
    write_checkpoint(tiny_config(), directory, seed=2)
    return directory


def swapped_gate_up(rows):
    fc = next(row for row in rows if row.target.endswith(".mlp.fc.weight"))
    wrong = dataclasses.replace(fc, sources=tuple(reversed(fc.sources)))
    return tuple(wrong if row is fc else row for row in rows)


def other_ep_block(self, rank, num_experts):
    per_rank = num_experts // self.moe_ep
    first = (self.moe_ep - 1 - self.moe_ep_rank(rank)) * per_rank
    return range(first, first + per_rank)


def convert_then_verify(run_cli, monkeypatch, hf_dir, tmp_path, fault):
    out = tmp_path / "ckpt"
    with monkeypatch.context() as patch:
        fault(patch)
        result = run_cli("convert", "--model-dir", hf_dir, "--profile", "cpu-tiny", "--tp", 2, "--ep", 2, "--out", out)
        assert result.exit_code == 0, result.output
    verdict = run_cli("verify", "--checkpoint", out, "--hf-dir", hf_dir, "--json", tmp_path / "report.json")
    return verdict, json.loads((tmp_path / "report.json").read_text())


@pytest.mark.parametrize("fault", [
    lambda patch: patch.setattr(plan_module, "ROWS", swapped_gate_up(plan_module.ROWS)),
    lambda patch: patch.setattr(Layout, "experts", other_ep_block),
], ids=["gate-up-swapped", "wrong-expert-block"])
def test_verify_rejects_a_wrong_split(run_cli, monkeypatch, hf_dir, tmp_path, fault):
    verdict, report = convert_then_verify(run_cli, monkeypatch, hf_dir, tmp_path, fault)
    assert verdict.exit_code == 1 and "FAIL" in verdict.output
    assert report["max_abs_diff"] > 100 * report["tolerance"]
    assert report["reassembly_problems"]


def test_verify_accepts_the_same_run_without_the_fault(run_cli, monkeypatch, hf_dir, tmp_path):
    verdict, report = convert_then_verify(run_cli, monkeypatch, hf_dir, tmp_path, lambda patch: None)
    assert verdict.exit_code == 0 and report["passed"]
