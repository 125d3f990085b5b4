"""RoPE past the published context, proven on CPU: hunyuan-tiny with max_position_embeddings raised to 262,144 in a
derived directory (as the 256K profile serves it), converted to TP2/EP2 rank shards, verified against
transformers' HunYuanMoEV1ForCausalLM at positions 200,000..200,063; a wrong rotary base or positions that ignore
the offset fail the same check."""

from __future__ import annotations

import json

import pytest

from pipeline.derived_model import derived_entries, write_entries
from pipeline.errors import PipelineError
from pipeline.model import TINY_MODEL_DIR
from pipeline.reference import forward
from pipeline.reference.compare import verify

START, TOKENS, SERVED = 200_000, 64, 262_144
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_model(tmp_path_factory):
    """(derived HF directory, its TP2/EP2 rank shards)."""
    from click.testing import CliRunner

    from pipeline.cli import main

    root = tmp_path_factory.mktemp("long")
    hf_dir = root / "tiny-256k"
    write_entries(derived_entries(TINY_MODEL_DIR, {"max_position_embeddings": SERVED}), hf_dir)
    result = CliRunner().invoke(main, ["convert", "--model-dir", str(hf_dir), "--profile", "cpu-tiny",
                                       "--out", str(root / "ckpt")])
    assert result.exit_code == 0, result.output
    return hf_dir, root / "ckpt"


def test_rope_matches_transformers_past_200k(run_cli, long_model):
    hf_dir, ckpt = long_model
    assert json.loads((hf_dir / "config.json").read_text())["max_position_embeddings"] == SERVED
    result = run_cli("verify", "--checkpoint", ckpt, "--hf-dir", hf_dir, "--position-start", START,
                     "--seq-len", TOKENS, "--batch", 1)
    assert result.exit_code == 0, result.output
    assert f"64 tokens from position {START:,}" in result.output and "PASS" in result.output


def test_a_wrong_rotary_base_fails_at_200k(long_model, tmp_path):
    """Plain rope_theta (no NTK alpha) instead of the NTK-alpha base: the same check fails."""
    hf_dir, ckpt = long_model
    wrong = tmp_path / "ckpt"
    config = json.loads((ckpt / "config.json").read_text())
    write_entries(derived_entries(ckpt, {"rotary_base": config["rotary_base"] / 4 ** (16 / 14)}), wrong)
    report = verify(wrong, hf_dir, batch=1, seq_len=TOKENS, position_start=START)
    assert not report.passed and report.max_abs_diff > 1e-2


def test_positions_matter_past_200k(long_model, monkeypatch):
    """RoPE then QK-norm is not shift-invariant: our side at positions 0.. against transformers at 200,000.. fails."""
    hf_dir, ckpt = long_model
    monkeypatch.setattr(forward, "rope", lambda x, base, start=0: ORIGINAL_ROPE(x, base, 0))
    report = verify(ckpt, hf_dir, batch=1, seq_len=TOKENS, position_start=START)
    assert not report.passed and report.max_abs_diff > 1e-2


def test_the_published_config_does_not_cover_200k(long_model):
    _, ckpt = long_model
    with pytest.raises(PipelineError, match="max_position_embeddings 1,024 does not cover positions up to 200,063"):
        verify(ckpt, TINY_MODEL_DIR, batch=1, seq_len=TOKENS, position_start=START)


ORIGINAL_ROPE = forward.rope
