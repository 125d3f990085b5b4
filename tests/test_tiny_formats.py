"""The format checker the evaluator relies on: it must accept the exact formats and reject near misses."""

from __future__ import annotations

import random
import re

import pytest

from pipeline.tiny.formats import check, is_correct, parse_tool_calls
from pipeline.tiny.tasks import (
    EVAL_GROUPS,
    TOOLS,
    addition_reasoning,
    eval_examples,
    is_held_out,
    is_held_out_call,
    training_example,
)

CALL = '<tool_calls>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]</tool_calls>'


@pytest.mark.parametrize("text, mode", [
    ("<think>\nones: 2+3=5\n</think>\n<answer>\n5\n</answer>", "slow"),
    ("<answer>\n5\n</answer>", "fast"),
])
def test_exact_formats_pass(text, mode):
    verdict = check(text, mode, finished=True)
    assert verdict.format_ok and verdict.answer == "5"
    assert is_correct(verdict, "5", expect_tool=False)
    assert not is_correct(verdict, "6", expect_tool=False)


@pytest.mark.parametrize("text, mode, finished, reason", [
    ("<think>\n\n</think>\n<answer>\n5\n</answer>", "slow", True, "empty reasoning"),
    ("<think>\n \n</think>\n<answer>\n5\n</answer>", "slow", True, "empty reasoning"),
    ("<answer>\n5\n</answer>", "slow", True, "slow-mode format"),
    ("<think>\nx\n</think>\n<answer>\n5\n</answer>", "fast", True, "fast-mode format"),
    ("<answer>\n5\n</answer> trailing", "fast", True, "fast-mode format"),
    ("<answer>\n5\n", "fast", False, "no <|eos|>"),
    ("<answer>\n5\n</answer><|extra_0|>", "fast", True, "fast-mode format"),
])
def test_near_misses_fail(text, mode, finished, reason):
    verdict = check(text, mode, finished)
    assert not verdict.format_ok and reason in verdict.reason


def test_tool_answers_must_be_a_well_formed_call_list():
    assert check(f"<answer>\n{CALL}\n</answer>", "fast", True, expect_tool=True).format_ok
    for broken in ('<tool_calls>[{"name": "x"}]</tool_calls>', "<tool_calls>[]</tool_calls>",
                   '<tool_calls>[{"name": "x", "arguments": {}</tool_calls>', "sunny"):
        assert not check(f"<answer>\n{broken}\n</answer>", "fast", True, expect_tool=True).format_ok


def test_tool_correctness_ignores_json_spacing_but_not_values():
    verdict = check('<answer>\n<tool_calls>[{"name":"get_weather","arguments":{"city":"Oslo"}}]</tool_calls>\n</answer>',
                    "fast", True, expect_tool=True)
    assert is_correct(verdict, CALL, expect_tool=True)
    assert not is_correct(verdict, CALL.replace("Oslo", "Osla"), expect_tool=True)
    assert parse_tool_calls(CALL) == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]


@pytest.mark.parametrize("a, b", [(7, 5), (48, 56), (99, 99), (0, 0)])
def test_reasoning_ends_with_the_right_sum(a, b):
    assert addition_reasoning(a, b).endswith(f"so {a}+{b}={a + b}")


def test_training_data_matches_its_own_format_and_never_uses_held_out_pairs():
    rng = random.Random(1)
    for _ in range(300):
        example = training_example(rng)
        verdict = check(example.response, example.mode, True, expect_tool=example.kind == "tool")
        assert verdict.format_ok and is_correct(verdict, example.expected, example.kind == "tool")
        operands = re.search(r"(\d+)\D+?(\d+)", example.messages[-1]["content"])
        if example.kind == "add":
            assert not is_held_out(int(operands[1]), int(operands[2]))


def asked_calls(example) -> set[tuple[str, str, str]]:
    """The catalogue (tool, question, argument) triples whose question text appears in the example's prompt."""
    content = example.messages[-1]["content"]
    return {(spec.name, phrase, value) for spec in TOOLS for phrase in spec.phrases for value in spec.values
            if phrase.format(v=value) in content}


def test_tool_questions_held_out_of_training_are_the_ones_evaluated():
    specs = {spec.name: spec for spec in TOOLS}
    rng = random.Random(2)
    training = [e for e in (training_example(rng) for _ in range(600)) if e.kind == "tool"]
    evaluated = eval_examples("tool_fast", 40, seed=0) + eval_examples("tool_slow", 40, seed=0)
    for examples, held_out in ((training, False), (evaluated, True)):
        for example in examples:
            asked = asked_calls(example)
            assert asked, example.messages
            assert any(is_held_out_call(specs[name], phrase, value) == held_out for name, phrase, value in asked)


def test_every_catalogue_argument_is_also_seen_in_training():
    """Held-out prompts test reading the argument from a new question, not guessing a never-seen string."""
    for spec in TOOLS:
        for value in spec.values:
            assert any(not is_held_out_call(spec, phrase, value) for phrase in spec.phrases), (spec.name, value)
    held_out = sum(is_held_out_call(spec, p, v) for spec in TOOLS for p in spec.phrases for v in spec.values)
    total = sum(len(spec.phrases) * len(spec.values) for spec in TOOLS)
    assert 0.05 < held_out / total < 0.2


def test_held_out_prompts_are_deterministic():
    for group in EVAL_GROUPS:
        first, again = eval_examples(group, 5, seed=0), eval_examples(group, 5, seed=0)
        assert [e.messages for e in first] == [e.messages for e in again]
        assert [e.messages for e in first] != [e.messages for e in eval_examples(group, 5, seed=1)]
