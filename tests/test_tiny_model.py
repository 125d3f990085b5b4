"""hunyuan-tiny's trained weights: held-out format compliance and accuracy agree with its model card."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.model import TINY_MODEL_DIR
from pipeline.tiny import runtime
from pipeline.tiny.config import write_configs
from pipeline.tiny.evaluate import CARD_TABLE, card_table, evaluate_group, generate, weights_digest
from pipeline.tiny.tasks import EVAL_GROUPS, eval_examples
from pipeline.tiny.tokenizer import write_tokenizer
from pipeline.tiny.train import TrainConfig, learning_rate, train_model

FORMAT_GOAL = 0.95  # per group, held-out prompts
ACCURACY_GOAL = 0.90  # per group, over all the prompts eval.json measured
TOLERANCE = 0.02  # one prompt in 50: CPU kernels may differ between machines


@pytest.fixture(scope="module")
def results():
    return json.loads((TINY_MODEL_DIR / "eval.json").read_text())


@pytest.fixture(scope="module")
def loaded():
    runtime.use_cpu_threads()
    return runtime.load_model(TINY_MODEL_DIR), runtime.load_tokenizer(TINY_MODEL_DIR)


def test_eval_file_belongs_to_the_shipped_weights(results):
    assert results["weights_sha256"] == weights_digest(TINY_MODEL_DIR)
    assert results["prompts_per_group"] >= 50 and set(results["groups"]) == set(EVAL_GROUPS)


@pytest.mark.parametrize("group", sorted(EVAL_GROUPS))
def test_recorded_numbers_meet_the_goals(results, group):
    recorded = results["groups"][group]
    assert recorded["format_compliance"] >= FORMAT_GOAL, recorded["failures"]
    assert recorded["accuracy"] >= ACCURACY_GOAL, recorded["failures"]


def test_model_card_cites_the_measured_numbers(results):
    card = (TINY_MODEL_DIR / "MODEL_CARD.md").read_text()
    match = CARD_TABLE.search(card)
    assert match and card_table(results) in match[0]


@pytest.mark.slow
@pytest.mark.parametrize("group", sorted(EVAL_GROUPS))
def test_held_out_batch_meets_goals_and_matches_the_card(loaded, results, group):
    model, tokenizer = loaded
    measured = evaluate_group(model, tokenizer, group, 50, results["seed"])
    recorded = results["groups"][group]["first_batch"]
    assert measured["prompts"] == recorded["prompts"] == 50
    assert measured["format_compliance"] >= FORMAT_GOAL, measured["failures"]
    assert abs(measured["format_compliance"] - recorded["format_compliance"]) <= TOLERANCE
    assert abs(measured["accuracy"] - recorded["accuracy"]) <= TOLERANCE


@pytest.mark.slow
def test_batched_generation_equals_one_by_one(loaded):
    model, tokenizer = loaded
    examples = eval_examples("tool_slow", 2, seed=7) + eval_examples("fast", 2, seed=7)
    batched = generate(model, tokenizer, examples)
    single = [generate(model, tokenizer, [example])[0] for example in examples]
    assert [g.text for g in batched] == [g.text for g in single]


@pytest.mark.slow
def test_training_is_deterministic(tmp_path):
    write_configs(tmp_path)
    write_tokenizer(tmp_path)
    cfg = TrainConfig(steps=2, batch_size=4, warmup_steps=1)
    first, _ = train_model(tmp_path, cfg)
    second, _ = train_model(tmp_path, cfg)
    other, _ = train_model(tmp_path, TrainConfig(steps=2, batch_size=4, warmup_steps=1, seed=1))
    a, b, c = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not all(torch.equal(a[name], c[name]) for name in a)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, warmup_steps=10, peak_lr=1.0, min_lr_ratio=0.1)
    rates = [learning_rate(step, cfg) for step in range(cfg.steps)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(x >= y for x, y in zip(rates[10:], rates[11:], strict=False))
    assert rates[-1] == pytest.approx(0.1, abs=1e-3)


def test_eval_on_a_directory_without_weights_is_one_clear_error(run_cli, tmp_path):
    result = run_cli("tiny", "eval", "--model-dir", tmp_path)
    assert result.exit_code == 2
    assert f"{tmp_path}: no model.safetensors" in result.output and "Traceback" not in result.output


def test_training_into_an_impossible_directory_fails_with_one_line(run_cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("tiny", "train", "--model-dir", blocker / "x" / "model", "--steps", "1")
    assert result.exit_code == 2, result.output
    assert "cannot create the output directory" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
