"""OpenAI request and response shapes around the Hunyuan parser.

Requests: `chat_template_kwargs` is forwarded as given; `thinking` (true/false or {"type": "enabled" |
"disabled"}), `reasoning_effort` ("none"/"minimal" = off, "low"/"medium"/"high" = on) and a leading
"/no_think" or "/think" in the last user message set `chat_template_kwargs.enable_thinking` unless the
caller set it explicitly. Responses: raw text in `content` becomes `reasoning_content`, clean `content`
and `tool_calls`; `finish_reason` "stop" becomes "tool_calls" when calls were produced.
"""

from __future__ import annotations

import json

from pipeline.adapter.parser import HunyuanParser, new_call_id, parse_text

EFFORT_THINKS = {"none": False, "minimal": False, "low": True, "medium": True, "high": True}
THINKING_TYPES = {"enabled": True, "disabled": False}
PROMPT_SWITCHES = (("/no_think", False), ("/think", True))
EMPTY_DROPPED = {"content", "reasoning_content", "tool_calls"}  # null/empty upstream delta fields carry nothing


class RequestError(ValueError):
    """A request field the adapter itself must reject (400, OpenAI error body)."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param


def _last_user_text(messages) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return content if isinstance(content, str) else ""
    return ""


def _thinking_choice(payload: dict) -> bool | None:
    thinking = payload.pop("thinking", None)
    effort = payload.pop("reasoning_effort", None)
    if isinstance(thinking, bool):
        return thinking
    if isinstance(thinking, dict) and thinking.get("type") in THINKING_TYPES:
        return THINKING_TYPES[thinking["type"]]
    if thinking is not None:
        raise RequestError("thinking", 'expected true, false or {"type": "enabled" | "disabled"}')
    if effort is not None:
        if effort not in EFFORT_THINKS:
            raise RequestError("reasoning_effort", f"expected one of {', '.join(EFFORT_THINKS)}; got {effort!r}")
        return EFFORT_THINKS[effort]
    text = _last_user_text(payload.get("messages")).lstrip()
    return next((on for prefix, on in PROMPT_SWITCHES if text.startswith(prefix)), None)


def apply_thinking_controls(payload: dict) -> dict:
    """Map the thinking conveniences onto chat_template_kwargs.enable_thinking (explicit kwargs win)."""
    kwargs = payload.get("chat_template_kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise RequestError("chat_template_kwargs", f"expected an object; got {type(kwargs).__name__}")
    choice = _thinking_choice(payload)
    kwargs = dict(kwargs or {})
    if choice is not None:
        kwargs.setdefault("enable_thinking", choice)
    if kwargs:
        payload["chat_template_kwargs"] = kwargs
    return payload


def openai_tool_call(call: dict, index: int | None = None) -> dict:
    entry = {"id": new_call_id(), "type": "function",
             "function": {"name": call["name"], "arguments": call["arguments"]}}
    return entry if index is None else {"index": index, **entry}


def transform_completion(data: dict, model_name: str | None = None) -> dict:
    """A non-streamed chat.completion with raw Hunyuan text -> parsed message fields."""
    if model_name:
        data["model"] = model_name
    for choice in data.get("choices") or []:
        message = choice.get("message") or {}
        raw = message.get("content")
        if not isinstance(raw, str):
            continue
        parsed = parse_text(raw)
        message["reasoning_content"] = parsed.reasoning
        message["content"] = parsed.content
        if parsed.tool_calls:
            message["tool_calls"] = [openai_tool_call(call) for call in parsed.tool_calls]
            if choice.get("finish_reason") == "stop":
                choice["finish_reason"] = "tool_calls"
    return data


class StreamTransformer:
    """chat.completion.chunk dicts with raw deltas -> chunks with parsed deltas, one parser per choice."""

    def __init__(self, model_name: str | None = None):
        self.model_name = model_name
        self.parsers: dict[int, HunyuanParser] = {}
        self.template: dict | None = None  # last chunk, to shape a final flush chunk

    def chunk(self, data: dict) -> dict | None:
        """Transform one chunk; None when nothing is left to send."""
        if self.model_name:
            data["model"] = self.model_name
        choices = data.get("choices")
        if not choices:
            return data  # usage-only chunk
        self.template = data
        kept = [choice for choice in choices if self._choice(choice)]
        if not kept:
            return None
        data["choices"] = kept
        return data

    def flush(self) -> dict | None:
        """Events still held by parsers whose stream ended without a finish_reason (a cut stream)."""
        if self.template is None:
            return None
        choices = []
        for index, parser in self.parsers.items():
            delta = self._delta({}, parser.finish(), parser, index)
            if delta:
                choices.append({"index": index, "delta": delta, "finish_reason": None})
        self.parsers.clear()
        return {**self.template, "choices": choices} if choices else None

    def _choice(self, choice: dict) -> bool:
        index = choice.get("index", 0)
        parser = self.parsers.get(index)
        if parser is None:
            parser = self.parsers[index] = HunyuanParser()
        delta = {k: v for k, v in (choice.get("delta") or {}).items() if v or k not in EMPTY_DROPPED}
        text = delta.pop("content", None)
        events = parser.feed(text) if text else []
        finished = choice.get("finish_reason") is not None
        if finished:
            events += parser.finish()
            self.parsers.pop(index)
        choice["delta"] = self._delta(delta, events, parser, index)
        if finished and parser.tool_calls and choice["finish_reason"] == "stop":
            choice["finish_reason"] = "tool_calls"
        return bool(choice["delta"]) or finished

    @staticmethod
    def _delta(delta: dict, events, parser: HunyuanParser, index: int) -> dict:
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


def openai_error(status: int, body: bytes) -> dict:
    """An upstream error body in OpenAI's {"error": {...}} shape (kept as is when it already is)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = body.decode("utf-8", "replace")
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return data
    if isinstance(data, dict):
        message = data.get("message") or data.get("detail") or json.dumps(data)
        return {"error": {"message": message if isinstance(message, str) else json.dumps(message),
                          "type": data.get("type", "upstream_error"), "param": data.get("param"),
                          "code": data.get("code", status)}}
    return {"error": {"message": str(data) or f"upstream status {status}", "type": "upstream_error",
                      "param": None, "code": status}}
