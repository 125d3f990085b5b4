"""Smoke checks for an OpenAI-compatible Hunyuan endpoint (the adapter, the gateway, or anything alike).

Checks, in order (each PASS/FAIL with its time; the exit code of `hunyuan-trt smoke` is the FAIL count):
  health, models                      GET /health (retried only while the server is starting), /v1/models
  slow, fast_kwargs, fast_no_think    chat: default slow thinking; enable_thinking=false; "/no_think" prefix
  *_stream                            the same three streamed, with time to first token
  tool_call                           one request with a tool that must come back as well-formed tool_calls
Request bodies are the ones the official `openai` client sends (extension fields at the top level, as
its `extra_body` puts them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import requests

from pipeline.procs import wait_until

TAGS = ("<think>", "</think>", "<answer>", "</answer>", "<tool_calls>", "</tool_calls>")
QUESTION = "What is the capital of France? Answer in one sentence."
TOOL_QUESTION = "What is the weather in Paris right now? Use the get_weather tool."
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                   "required": ["city"]}}}]
STARTING_STATUSES = {502, 503, 504}  # what a starting server (or a gateway in front of one) answers
# name -> (request extras, user prefix, thinking expected, streamed)
CHAT_CHECKS = {
    "slow": ({}, "", True, False),
    "fast_kwargs": ({"chat_template_kwargs": {"enable_thinking": False}}, "", False, False),
    "fast_no_think": ({}, "/no_think ", False, False),
    "slow_stream": ({}, "", True, True),
    "fast_kwargs_stream": ({"chat_template_kwargs": {"enable_thinking": False}}, "", False, True),
    "fast_no_think_stream": ({}, "/no_think ", False, True),
}
CHECK_NAMES = ["health", "models", *CHAT_CHECKS, "tool_call"]


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str
    ttft_s: float | None = None


class SmokeFailure(Exception):
    """A broken rule; the message is the check's FAIL detail."""


@dataclass
class Reply:
    reasoning: str
    content: str
    tool_calls: list
    finish_reason: str | None
    ttft_s: float | None = None


class Endpoint:
    def __init__(self, url: str, api_key: str | None, timeout: float, max_tokens: int):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.model: str | None = None

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.url + path, timeout=self.timeout)

    def chat(self, messages: list, stream: bool, **extra) -> Reply:
        body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens, **extra}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        start = time.monotonic()
        response = self.session.post(self.url + "/v1/chat/completions", json=body, timeout=self.timeout, stream=stream)
        if response.status_code != 200:
            raise SmokeFailure(f"HTTP {response.status_code}: {response.text[:200]}")
        return read_stream(response, start) if stream else read_message(response.json())


def read_message(data: dict) -> Reply:
    choice = data["choices"][0]
    message = choice["message"]
    return Reply(message.get("reasoning_content") or "", message.get("content") or "",
                 message.get("tool_calls") or [], choice.get("finish_reason"))


def read_stream(response: requests.Response, start: float) -> Reply:
    """One Reply from an SSE chat stream; ttft_s is the time to the first delta that carries text or a call."""
    reply, calls = Reply("", "", [], None), {}
    for data in sse_data(response):
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            if reply.ttft_s is None and any(delta.get(key) for key in ("reasoning_content", "content", "tool_calls")):
                reply.ttft_s = time.monotonic() - start
            reply.reasoning += delta.get("reasoning_content") or ""
            reply.content += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                add_call_delta(calls.setdefault(call.get("index", 0), new_call()), call)
            reply.finish_reason = choice.get("finish_reason") or reply.finish_reason
    reply.tool_calls = [calls[i] for i in sorted(calls)]
    return reply


def sse_data(response: requests.Response) -> Iterator[dict]:
    """The JSON payload of each `data:` line, up to `data: [DONE]`."""
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            yield json.loads(line[5:])


def new_call() -> dict:
    return {"id": "", "type": "", "function": {"name": "", "arguments": ""}}


def add_call_delta(entry: dict, call: dict) -> None:
    """Streamed tool calls arrive in pieces: id and type once, name and arguments as fragments."""
    function = call.get("function") or {}
    entry["id"] = call.get("id") or entry["id"]
    entry["type"] = call.get("type") or entry["type"]
    entry["function"]["name"] += function.get("name") or ""
    entry["function"]["arguments"] += function.get("arguments") or ""


def _no_tags(reply: Reply) -> None:
    for field in ("reasoning", "content"):
        leaked = [tag for tag in TAGS if tag in getattr(reply, field)]
        if leaked:
            raise SmokeFailure(f"{field} contains {', '.join(leaked)}")


def check_health(endpoint: Endpoint, wait_s: float) -> str:
    """Retried while the server is starting (connection refused, 502/503/504), until wait_s."""
    tries, reason = 0, ""

    def healthy() -> bool:
        nonlocal tries, reason
        tries += 1
        try:
            status = endpoint.get("/health").status_code
        except requests.ConnectionError as error:
            reason = f"connection failed ({type(error).__name__})"
            return False
        reason = f"HTTP {status}"
        if status != 200 and status not in STARTING_STATUSES:
            raise SmokeFailure(f"/health: {reason}")
        return status == 200

    if wait_until(healthy, wait_s, interval=1.0):
        return f"200 after {tries} tries"
    raise SmokeFailure(f"/health: {reason}")


def check_models(endpoint: Endpoint, wanted: str | None) -> str:
    response = endpoint.get("/v1/models")
    if response.status_code != 200:
        raise SmokeFailure(f"HTTP {response.status_code}")
    ids = [entry.get("id") for entry in response.json().get("data") or []]
    if not ids:
        raise SmokeFailure("no models listed")
    if wanted and wanted not in ids:
        raise SmokeFailure(f"model {wanted!r} not listed (have {', '.join(map(str, ids))})")
    endpoint.model = wanted or ids[0]
    return f"serving {endpoint.model}"


def check_chat(endpoint: Endpoint, name: str) -> tuple[str, float | None]:
    extra, prefix, thinking, stream = CHAT_CHECKS[name]
    reply = endpoint.chat([{"role": "user", "content": prefix + QUESTION}], stream, **extra)
    _no_tags(reply)
    if not reply.content.strip():
        raise SmokeFailure(f"empty content (finish_reason {reply.finish_reason})")
    if thinking and not reply.reasoning.strip():
        raise SmokeFailure("slow thinking returned no reasoning_content")
    if not thinking and reply.reasoning.strip():
        raise SmokeFailure(f"fast thinking returned reasoning_content ({len(reply.reasoning)} chars)")
    ttft = f", first token {reply.ttft_s:.2f} s" if reply.ttft_s is not None else ""
    return f"reasoning {len(reply.reasoning)} chars, content {len(reply.content)} chars{ttft}", reply.ttft_s


def check_tool_call(endpoint: Endpoint) -> str:
    reply = endpoint.chat([{"role": "user", "content": TOOL_QUESTION}], False, tools=TOOLS, tool_choice="auto")
    _no_tags(reply)
    if not reply.tool_calls:
        raise SmokeFailure(f"no tool_calls (finish_reason {reply.finish_reason}, content {reply.content[:80]!r})")
    names = {tool["function"]["name"] for tool in TOOLS}
    for call in reply.tool_calls:
        function = call.get("function") or {}
        if not call.get("id") or call.get("type") != "function" or function.get("name") not in names:
            raise SmokeFailure(f"malformed tool call {json.dumps(call)[:160]}")
        try:
            arguments = json.loads(function.get("arguments"))
        except (TypeError, ValueError):
            raise SmokeFailure(f"arguments are not a JSON string: {function.get('arguments')!r}") from None
        if not isinstance(arguments, dict):
            raise SmokeFailure(f"arguments are not a JSON object: {arguments!r}")
    if reply.finish_reason != "tool_calls":
        raise SmokeFailure(f"finish_reason {reply.finish_reason!r}, expected 'tool_calls'")
    return f"{len(reply.tool_calls)} call(s): {reply.tool_calls[0]['function']['name']}"


def _timed(name: str, action) -> Check:
    start = time.monotonic()
    try:
        result = action()
        detail, ttft = result if isinstance(result, tuple) else (result, None)
        return Check(name, True, time.monotonic() - start, detail, ttft)
    except SmokeFailure as failure:
        return Check(name, False, time.monotonic() - start, str(failure))
    except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as error:
        return Check(name, False, time.monotonic() - start, f"{type(error).__name__}: {error}")


def run_smoke(url: str, api_key: str | None = None, model: str | None = None, wait_s: float = 60.0,
              timeout: float = 300.0, max_tokens: int = 2048, report=None) -> list[Check]:
    """Run every check in order; `report(check)` is called as each one finishes."""
    endpoint = Endpoint(url, api_key, timeout, max_tokens)
    actions = {"health": lambda: check_health(endpoint, wait_s), "models": lambda: check_models(endpoint, model),
               "tool_call": lambda: check_tool_call(endpoint)}
    actions |= {name: (lambda name=name: check_chat(endpoint, name)) for name in CHAT_CHECKS}
    checks = []
    for name in CHECK_NAMES:
        checks.append(_timed(name, actions[name]))
        if report:
            report(checks[-1])
    return checks


def format_check(check: Check) -> str:
    return f"{'PASS' if check.ok else 'FAIL'}  {check.name:<22} {check.seconds:7.2f} s  {check.detail}"


def summary(url: str, checks: list[Check]) -> dict:
    return {"url": url, "passed": sum(c.ok for c in checks), "failed": sum(not c.ok for c in checks),
            "checks": [asdict(c) for c in checks]}
