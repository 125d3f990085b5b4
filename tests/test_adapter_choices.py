"""n > 1 through the adapter's response transforms: each choice parsed on its own, ids and usage untouched."""

from __future__ import annotations

from pipeline.adapter.tools import ToolPolicy
from pipeline.adapter.transform import StreamTransformer, transform_completion

RAW = {0: "<think>\nR0\n</think>\n<answer>\nA0\n</answer>",
       1: '<answer>\n<tool_calls>[{"name": "f", "arguments": {"x": 1}}]</tool_calls>\n</answer>'}
USAGE = {"prompt_tokens": 5, "completion_tokens": 22, "total_tokens": 27}
POLICY = ToolPolicy(frozenset({"f"}))


def chunk(choices: list, usage: dict | None = None) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": choices, **({"usage": usage} if usage else {})}


def test_two_streamed_choices_interleaved_keep_their_own_parse_and_the_id():
    transformer = StreamTransformer(POLICY)
    pieces = {index: [raw[i:i + 4] for i in range(0, len(raw), 4)] for index, raw in RAW.items()}
    out = []
    for step in range(max(map(len, pieces.values()))):
        for index, parts in pieces.items():
            if step < len(parts):
                out.append(transformer.chunk(chunk([{"index": index, "delta": {"content": parts[step]},
                                                     "finish_reason": None}])))
    out += [transformer.chunk(chunk([{"index": i, "delta": {}, "finish_reason": "stop"} for i in RAW]))]
    out.append(transformer.chunk(chunk([], USAGE)))
    out = [c for c in out if c is not None]
    assert {c["id"] for c in out} == {"chatcmpl-1"}
    assert out[-1] == chunk([], USAGE)
    fields = {i: {"reasoning_content": "", "content": "", "tool_calls": [], "finish": None} for i in RAW}
    for c in out:
        for choice in c["choices"]:
            got = fields[choice["index"]]
            for key in ("reasoning_content", "content"):
                got[key] += choice["delta"].get(key) or ""
            got["tool_calls"] += choice["delta"].get("tool_calls") or []
            got["finish"] = choice["finish_reason"] or got["finish"]
    assert fields[0] == {"reasoning_content": "R0", "content": "A0", "tool_calls": [], "finish": "stop"}
    assert [c["function"] for c in fields[1]["tool_calls"]] == [{"name": "f", "arguments": '{"x": 1}'}]
    assert fields[1]["content"] == "" and fields[1]["finish"] == "tool_calls"
    assert [c["index"] for c in fields[1]["tool_calls"]] == [0]  # tool-call indices count per choice


def test_two_choices_non_streamed_keep_their_own_parse_id_and_usage():
    data = {"id": "chatcmpl-1", "object": "chat.completion", "model": "m", "usage": dict(USAGE),
            "choices": [{"index": i, "message": {"role": "assistant", "content": raw}, "finish_reason": "stop"}
                        for i, raw in RAW.items()]}
    out = transform_completion(data, POLICY, "served")
    assert out["id"] == "chatcmpl-1" and out["usage"] == USAGE and out["model"] == "served"
    first, second = (c["message"] for c in out["choices"])
    assert (first["reasoning_content"], first["content"], first["tool_calls"]) == ("R0", "A0", [])
    assert second["content"] is None or second["content"] == ""
    assert [c["function"]["name"] for c in second["tool_calls"]] == ["f"]
    assert [c["finish_reason"] for c in out["choices"]] == ["stop", "tool_calls"]
