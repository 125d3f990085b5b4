"""OpenAI response shapes around the Hunyuan parser.

Raw text in `content` becomes `reasoning_content`, clean `content` and `tool_calls` (only the calls the
request's `ToolPolicy` accepts); `finish_reason` "stop" becomes "tool_calls" when calls were returned,
and "length" stays "length" (a cut output keeps its calls only if their JSON was complete).

Logprobs: every upstream logprob entry reaches the client, in order, including those of tokens that were
markup (tags, the format's newlines): they are part of what the model generated, and dropping some would
make the client's count differ from upstream's. A streamed entry travels on the first chunk the adapter
emits for its choice at or after the chunk that carried it, so entries of held-back text move to the chunk
that releases it; non-streamed logprobs are passed on as they came.
"""

from __future__ import annotations

import json

from pipeline.adapter.parser import HunyuanParser, new_call_id, parse_text
from pipeline.adapter.tools import ToolPolicy

EMPTY_DROPPED = {"content", "reasoning_content", "tool_calls"}  # null/empty upstream delta fields carry nothing


def openai_tool_call(call: dict, index: int | None = None) -> dict:
    entry = {"id": new_call_id(), "type": "function",
             "function": {"name": call["name"], "arguments": call["arguments"]}}
    return entry if index is None else {"index": index, **entry}


def _finish_reason(reason, calls: int):
    return "tool_calls" if calls and reason == "stop" else reason


def transform_completion(data: dict, policy: ToolPolicy, model_name: str | None = None) -> dict:
    """A non-streamed chat.completion with raw Hunyuan text -> parsed message fields."""
    if model_name:
        data["model"] = model_name
    for choice in data.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        raw = message.get("content") if isinstance(message, dict) else None
        if not isinstance(raw, str):
            continue
        parsed = parse_text(raw, policy.accept)
        message["reasoning_content"] = parsed.reasoning
        message["content"] = parsed.content
        message["tool_calls"] = [openai_tool_call(call) for call in parsed.tool_calls]
        choice["finish_reason"] = _finish_reason(choice.get("finish_reason"), len(parsed.tool_calls))
    return data


class _Choice:
    """One choice of a stream: its parser and the logprob entries not yet sent."""

    def __init__(self, policy: ToolPolicy):
        self.parser = HunyuanParser(policy.accept)
        self.logprobs: list = []

    def take_logprobs(self, choice: dict) -> None:
        """Attach the pending entries to the outgoing `choice` (left as upstream sent it when none)."""
        if self.logprobs:
            choice["logprobs"] = {"content": self.logprobs}
            self.logprobs = []


class StreamTransformer:
    """chat.completion.chunk dicts with raw deltas -> chunks with parsed deltas, one parser per choice."""

    def __init__(self, policy: ToolPolicy, model_name: str | None = None):
        self.policy = policy
        self.model_name = model_name
        self.choices: dict[int, _Choice] = {}
        self.template: dict | None = None  # last chunk, to shape a final flush chunk

    def chunk(self, data: dict) -> dict | None:
        """Transform one chunk; None when nothing is left to send."""
        if self.model_name:
            data["model"] = self.model_name
        choices = data.get("choices")
        if not choices:
            return data  # usage-only chunk
        self.template = data
        kept = [choice for choice in choices if isinstance(choice, dict) and self._choice(choice)]
        if not kept:
            return None
        data["choices"] = kept
        return data

    def flush(self) -> dict | None:
        """Events and logprobs still held for choices whose stream ended without a finish_reason (cut)."""
        if self.template is None:
            return None
        choices = []
        for index, state in self.choices.items():
            choice = {"index": index, "delta": self._delta({}, state.parser.finish(), state.parser),
                      "logprobs": None, "finish_reason": None}
            state.take_logprobs(choice)
            if choice["delta"] or choice["logprobs"]:
                choices.append(choice)
        self.choices.clear()
        return {**self.template, "choices": choices} if choices else None

    def _choice(self, choice: dict) -> bool:
        index = choice.get("index", 0)
        state = self.choices.setdefault(index, _Choice(self.policy))
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        delta = {k: v for k, v in delta.items() if v or k not in EMPTY_DROPPED}
        state.logprobs += _entries(choice.get("logprobs"))
        text = delta.pop("content", None)
        events = state.parser.feed(text) if isinstance(text, str) and text else []
        finished = choice.get("finish_reason") is not None
        if finished:
            events += state.parser.finish()
            self.choices.pop(index)
        choice["delta"] = self._delta(delta, events, state.parser)
        if finished:
            choice["finish_reason"] = _finish_reason(choice["finish_reason"], state.parser.tool_calls)
        if not (choice["delta"] or finished):
            return False
        state.take_logprobs(choice)
        return True

    @staticmethod
    def _delta(delta: dict, events, parser: HunyuanParser) -> dict:
        calls = []
        for kind, value in events:
            if kind == "tool_call":
                calls.append(value)
            else:
                key = "reasoning_content" if kind == "reasoning" else "content"
                delta[key] = (delta.get(key) or "") + value  # upstream may send explicit nulls
        if calls:
            first = parser.tool_calls - len(calls)
            delta["tool_calls"] = [openai_tool_call(call, first + n) for n, call in enumerate(calls)]
        return delta


def _entries(logprobs) -> list:
    """The per-token entries of an upstream chunk's `logprobs` ({"content": [...]}), [] when none."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return content if isinstance(content, list) else []


def openai_error(status: int, body: bytes) -> dict:
    """An upstream error body in OpenAI's {"error": {...}} shape (kept as is when it already is)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = body.decode("utf-8", "replace")
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return data
    if isinstance(data, dict):
        message = data.get("message") or data.get("detail") or json.dumps(data)
        return {"error": {"message": message if isinstance(message, str) else json.dumps(message),
                          "type": data.get("type", "upstream_error"), "param": data.get("param"),
                          "code": data.get("code", status)}}
    return error_body(str(data) or f"upstream status {status}", "upstream_error", status)


def error_body(message: str, kind: str, code: int, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
