"""The conformance cases of tests/data/hunyuan_outputs/conformance.yaml as requests and expected messages."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

DATA = Path(__file__).parent / "data" / "hunyuan_outputs"
SUITE = yaml.safe_load((DATA / "conformance.yaml").read_text())
CASES = SUITE["cases"]
IDS = [case["name"] for case in CASES]
SERVED = "tencent/Hunyuan-A13B-Instruct"
TAGS = ("<think>", "</think>", "<answer>", "</answer>", "<tool_calls>", "</tool_calls>")


def tool(name: str) -> dict:
    return {"type": "function", "function": {"name": name, "description": f"the {name} function",
                                             "parameters": {"type": "object", "properties": {}}}}


def raw_text(case: dict) -> str:
    return case["raw"] if "raw" in case else "".join(case["chunks"])


def request_body(case: dict, stream: bool, chunk: str = "3", **extra) -> dict:
    """The chat request for `case`: every suite tool declared unless the case says otherwise."""
    overrides = case.get("request", {})
    names = overrides.get("tools", SUITE["tools"])
    body = {"model": SERVED, "stream": stream,
            "messages": [{"role": "user", "content": f"case:{case['name']} chunk:{chunk}"}], **extra}
    if names != "none":
        body["tools"] = [tool(name) for name in names]
    choice = overrides.get("tool_choice")
    if isinstance(choice, dict):
        body["tool_choice"] = {"type": "function", "function": {"name": choice["function"]}}
    elif choice is not None:
        body["tool_choice"] = choice
    return body


def expected(case: dict) -> dict:
    """reasoning, content, tool_calls [{name, arguments (parsed)}], finish_reason, with the suite's defaults."""
    expect = case.get("expect") or {}
    return {"reasoning": expect.get("reasoning"), "content": expect.get("content"),
            "tool_calls": expect.get("tool_calls", []),
            "finish_reason": expect.get("finish_reason", case.get("finish", "stop"))}


def message_fields(reasoning, content, calls, finish_reason) -> dict:
    """What a client got, in `expected`'s shape; `calls` are OpenAI tool-call dicts."""
    return {"reasoning": reasoning or None, "content": content or None,
            "tool_calls": [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                           for c in calls],
            "finish_reason": finish_reason}


def leaks(text: str | None, case: dict) -> bool:
    """True when `text` carries a protocol tag that the expected output does not itself contain."""
    allowed = (expected(case)["content"] or "") + (expected(case)["reasoning"] or "")
    return any(tag in (text or "") and tag not in allowed for tag in TAGS)
