"""The Hunyuan output parser on every conformance case: whole texts, every split into two pieces, small and
random pieces, the upstream's own chunks; never a tag in the output; the request's tool policy applied."""

from __future__ import annotations

import json
import random

import pytest
from adapter_cases import CASES, IDS, SUITE, expected, leaks, request_body

from pipeline.adapter.parser import HunyuanParser, collect, held_suffix, parse_text, tool_calls_from_json
from pipeline.adapter.request import ChatBody, parse
from pipeline.adapter.tools import apply_tool_choice
from pipeline.request_limits import DEFAULT_LIMITS


def policy_of(case):
    payload = request_body(case, stream=False)
    return apply_tool_choice(payload, parse(ChatBody, payload, DEFAULT_LIMITS))


def outcome(case, parsed) -> dict:
    calls = len(parsed.tool_calls)
    upstream = case.get("finish", "stop")
    return {"reasoning": parsed.reasoning or None, "content": parsed.content or None,
            "tool_calls": [{"name": c["name"], "arguments": json.loads(c["arguments"])} for c in parsed.tool_calls],
            "finish_reason": "tool_calls" if calls and upstream == "stop" else upstream}


def parse_pieces(case, pieces) -> tuple:
    parser, events = HunyuanParser(policy_of(case).accept), []
    for piece in pieces:
        events += parser.feed(piece)
    events += parser.finish()
    return collect(events), events


def split(text: str, sizes) -> list[str]:
    pieces, start, index = [], 0, 0
    while start < len(text):
        size = sizes[index % len(sizes)]
        pieces.append(text[start:start + size])
        start, index = start + size, index + 1
    return pieces


def raw_of(case) -> str:
    return case["raw"] if "raw" in case else "".join(case["chunks"])


def test_suite_covers_every_origin():
    assert len(CASES) >= 70 and len(set(IDS)) == len(IDS)
    assert sum(name.startswith("vllm_") for name in IDS) >= 15
    assert sum(name.startswith("sglang_") for name in IDS) >= 5
    assert all(isinstance(case["differs"], str) for case in CASES if "differs" in case)
    assert {"get_weather", "get_time"} <= set(SUITE["tools"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_whole_text(case):
    assert outcome(case, parse_text(raw_of(case), policy_of(case).accept)) == expected(case)


@pytest.mark.parametrize("case", [c for c in CASES if "chunks" in c], ids=[c["name"] for c in CASES if "chunks" in c])
def test_the_upstreams_own_chunks(case):
    parsed, _ = parse_pieces(case, case["chunks"])
    assert outcome(case, parsed) == expected(case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_two_piece_split(case):
    raw = raw_of(case)
    for cut in range(1, len(raw)):
        parsed, _ = parse_pieces(case, [raw[:cut], raw[cut:]])
        assert outcome(case, parsed) == expected(case), f"split at {cut}: {raw[:cut]!r} | {raw[cut:]!r}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_small_and_random_pieces_never_leak_a_tag(case):
    rng = random.Random(case["name"])
    patterns = [[1], [2], [3], [5, 1], [7, 2, 11]] + [[rng.randint(1, 9) for _ in range(6)] for _ in range(5)]
    for sizes in patterns:
        parsed, events = parse_pieces(case, split(raw_of(case), sizes))
        assert outcome(case, parsed) == expected(case), f"pieces {sizes}"
        for kind, value in events:
            if kind != "tool_call":
                assert value, "empty events are never emitted"
                assert not leaks(value, case), f"tag in {value!r}"


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
    assert call["arguments"] == '{"x": [1, 2]}'  # json.dumps, as vLLM's hunyuan_a13b parser serialises


@pytest.mark.parametrize("payload,names", [
    ('[{"name": "f", "arguments": "{\\"a\\": 1}"}]', ["f"]),   # a string holding an object: kept
    ('[{"name": "f", "arguments": "not json"}]', []),          # invalid JSON string: not a call
    ('[{"name": "f", "arguments": 3}]', []),                   # not an object
    ('[{"arguments": {}}]', []),                               # no name
    ('[{"name": 5, "arguments": {}}]', []),
    ('"just a string"', []),
    ("[" * 5000 + "]" * 5000, []),                              # deeper than json can nest: not a crash
])
def test_argument_policy(payload, names):
    assert [call["name"] for call in tool_calls_from_json(payload)] == names
