"""`tools` and `tool_choice`: which calls a response may carry, and what the backend is asked for.

TensorRT-LLM 1.2.1 has no Hunyuan tool parser, accepts only "none", "auto" or a named function as
`tool_choice`, and derives guided decoding from `response_format` alone, never from `tool_choice` (see
`pipeline/adapter/upstream_facts.json`, which every rewritten request is checked against). So the adapter
enforces the request itself, on the parsed output:

| request                              | sent to the backend               | calls the client can get |
|--------------------------------------|-----------------------------------|--------------------------|
| no `tools`                           | as is (`tool_choice` dropped)     | none                     |
| `tool_choice: "none"`                | without `tools` / `tool_choice`   | none                     |
| `"auto"` (the default with tools)    | `tools`, `tool_choice: "auto"`    | declared functions only  |
| `"required"`                         | `tools`, `tool_choice: "auto"`    | declared functions only  |
| `{"type": "function", ...: {name}}`  | only that tool, `"auto"`          | that function only       |

`"required"` and a named function cannot be guaranteed without guided decoding: when the model answers
in text instead, the client gets that text with `finish_reason: "stop"`, never a fabricated call. A tool
block whose calls are all refused is dropped from the output (no markup reaches `content`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline.adapter.request import ChatBody, NamedToolChoice, RequestError

FACTS = Path(__file__).with_name("upstream_facts.json")


SENT_TOOL_CHOICE = "auto"  # what the backend is sent whenever tools are kept (table above)


@cache
def upstream_chat_facts() -> dict:
    return json.loads(FACTS.read_text())["chat"]


def check_against_upstream() -> None:
    """The tool_choice the adapter sends must be one the pinned trtllm-serve accepts (upstream_facts.json)."""
    accepted = upstream_chat_facts()["tool_choice_values"]
    if SENT_TOOL_CHOICE not in accepted:
        raise RuntimeError(f"{FACTS}: trtllm-serve accepts tool_choice {accepted}; the adapter sends "
                           f"{SENT_TOOL_CHOICE!r}")


check_against_upstream()


@dataclass(frozen=True)
class ToolPolicy:
    allowed: frozenset[str] = frozenset()

    def accept(self, call: dict) -> bool:
        return call["name"] in self.allowed


def apply_tool_choice(payload: dict, body: ChatBody) -> ToolPolicy:
    """Rewrite `payload`'s tools/tool_choice for the backend (table above); the policy for the response."""
    declared = {tool.function.name: raw for tool, raw in zip(body.tools or [], payload.get("tools") or [], strict=True)}
    choice = body.tool_choice
    if isinstance(choice, NamedToolChoice) and choice.function.name not in declared:
        raise RequestError("tool_choice", f"function {choice.function.name!r} is not among the request's tools "
                                          f"({', '.join(declared) or 'none given'})")
    if choice == "required" and not declared:
        raise RequestError("tool_choice", "'required' needs at least one tool in `tools`")
    if not declared or choice == "none":
        payload.pop("tool_choice", None)
        payload.pop("tools", None)
        return ToolPolicy()
    if isinstance(choice, NamedToolChoice):
        declared = {choice.function.name: declared[choice.function.name]}
        payload["tools"] = list(declared.values())
    payload["tool_choice"] = SENT_TOOL_CHOICE
    return ToolPolicy(frozenset(declared))
