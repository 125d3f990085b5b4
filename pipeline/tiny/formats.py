"""Checks of raw Hunyuan output text: does it follow the mode's format, and what did it answer?

slow: `<think>\\n{non-empty reasoning}\\n</think>\\n<answer>\\n{answer}\\n</answer>`
fast: `<answer>\\n{answer}\\n</answer>` (the empty think block is in the prompt, not the output)
tool: the answer is `<tool_calls>[{"name": str, "arguments": {...}}, ...]</tool_calls>`
The text must have ended with <|eos|>; the caller passes `finished` accordingly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PATTERNS = {
    "slow": re.compile(r"<think>\n(?P<reasoning>.*?)\n</think>\n<answer>\n(?P<answer>.*?)\n</answer>", re.S),
    "fast": re.compile(r"<answer>\n(?P<answer>.*?)\n</answer>", re.S),
}
TOOL_CALLS = re.compile(r"<tool_calls>(?P<calls>.*)</tool_calls>", re.S)


@dataclass(frozen=True)
class Verdict:
    format_ok: bool
    answer: str | None  # the text inside <answer>, when the format held
    reason: str  # "" when the format held


def parse_tool_calls(answer: str) -> list[dict] | None:
    """The call list inside `<tool_calls>…</tool_calls>`, or None when it is not well formed."""
    match = TOOL_CALLS.fullmatch(answer)
    if not match:
        return None
    try:
        calls = json.loads(match["calls"])
    except json.JSONDecodeError:
        return None
    well_formed = isinstance(calls, list) and calls and all(
        isinstance(c, dict) and set(c) == {"name", "arguments"} and isinstance(c["name"], str)
        and isinstance(c["arguments"], dict) for c in calls)
    return calls if well_formed else None


def check(text: str, mode: str, finished: bool, expect_tool: bool = False) -> Verdict:
    """Judge one generated text (special tokens already removed) against the format of `mode`."""
    if not finished:
        return Verdict(False, None, "no <|eos|> before the token limit")
    match = PATTERNS[mode].fullmatch(text)
    if not match:
        return Verdict(False, None, f"does not match the {mode}-mode format")
    if mode == "slow" and not match["reasoning"].strip():
        return Verdict(False, None, "empty reasoning in slow mode")
    if expect_tool and parse_tool_calls(match["answer"]) is None:
        return Verdict(False, None, "answer is not a well-formed <tool_calls> list")
    return Verdict(True, match["answer"], "")


def is_correct(verdict: Verdict, expected: str, expect_tool: bool) -> bool:
    """Exact answer, or for tool calls the same names and arguments (JSON spacing may differ)."""
    if not verdict.format_ok:
        return False
    if expect_tool:
        return parse_tool_calls(verdict.answer) == parse_tool_calls(expected)
    return verdict.answer.strip() == expected
