"""The Hunyuan output parser against the corpus: whole texts and every split into pieces."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pipeline.adapter.parser import HunyuanParser, Parsed, collect, held_suffix, parse_text

CORPUS = json.loads((Path(__file__).parent / "data" / "hunyuan_outputs" / "corpus.json").read_text())["cases"]
IDS = [case["name"] for case in CORPUS]


def as_comparable(parsed: Parsed) -> dict:
    return {"reasoning": parsed.reasoning or None, "content": parsed.content or None,
            "tool_calls": [{"name": c["name"], "arguments": json.loads(c["arguments"])} for c in parsed.tool_calls]}


def expected_of(case) -> dict:
    return {key: case["expected"][key] for key in ("reasoning", "content", "tool_calls")}


def parse_in_pieces(text: str, sizes) -> tuple[Parsed, list]:
    parser, events, start, index = HunyuanParser(), [], 0, 0
    while start < len(text):
        size = sizes[index % len(sizes)]
        events += parser.feed(text[start:start + size])
        start, index = start + size, index + 1
    events += parser.finish()
    return collect(events), events


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 20
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_whole_text(case):
    assert as_comparable(parse_text(case["raw"])) == expected_of(case)


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_every_two_piece_split(case):
    raw = case["raw"]
    for cut in range(1, len(raw)):
        parsed, _ = parse_in_pieces(raw, [cut, len(raw)])
        assert as_comparable(parsed) == expected_of(case), f"split at {cut}: {raw[:cut]!r} | {raw[cut:]!r}"


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_small_and_random_pieces(case):
    rng = random.Random(case["name"])
    patterns = [[1], [2], [3], [5, 1], [7, 2, 11]] + [[rng.randint(1, 9) for _ in range(6)] for _ in range(5)]
    for sizes in patterns:
        parsed, events = parse_in_pieces(case["raw"], sizes)
        assert as_comparable(parsed) == expected_of(case), f"pieces {sizes}"
        for kind, value in events:
            if kind != "tool_call":
                assert value, "empty events are never emitted"


def test_tags_never_leak_piecewise_for_clean_cases():
    tags = ("<think>", "</think>", "<answer>", "</answer>", "<tool_calls>", "</tool_calls>")
    for case in CORPUS:
        if any(tag in (case["expected"]["content"] or "") for tag in tags) or "mentioned" in case["name"]:
            continue
        _, events = parse_in_pieces(case["raw"], [1])
        text = "".join(value for kind, value in events if kind != "tool_call")
        assert not any(tag in text for tag in tags), case["name"]


def test_held_suffix():
    assert held_suffix("abc\n</th", ("\n</think>",)) == 5
    assert held_suffix("abc", ("\n</think>",)) == 0
    assert held_suffix("<", ("<tool_calls>",)) == 1
    assert held_suffix("<tool_calls>", ("<tool_calls>",)) == 0  # a whole marker is not held, it is found


def test_tool_call_ids_and_argument_strings():
    parser = HunyuanParser()
    events = parser.feed('<tool_calls>[{"name": "f", "arguments": {"x": [1, 2]}}]</tool_calls>') + parser.finish()
    assert parser.tool_calls == 1
    (kind, call), = events
    assert kind == "tool_call" and call["name"] == "f"
    assert isinstance(call["arguments"], str) and json.loads(call["arguments"]) == {"x": [1, 2]}

