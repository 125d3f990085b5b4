"""The smoke client against a fake endpoint that passes, and one variant per broken rule.

The fake is selected by path prefix: http://host:port/<mode>/v1/... so one server covers every variant."""

from __future__ import annotations

import json
import threading
import time

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pipeline.model import SERVED_MODEL_NAME
from pipeline.procs import free_port
from pipeline.smoke import CHECK_NAMES, run_smoke

pytestmark = pytest.mark.integration

MODEL = SERVED_MODEL_NAME
STREAMED = ["slow_stream", "fast_kwargs_stream", "fast_no_think_stream"]
HEALTH_CALLS: dict[str, int] = {}


def thinking_wanted(mode: str, body: dict) -> bool:
    if mode == "fast_reasoning":
        return True
    kwargs = body.get("chat_template_kwargs") or {}
    text = body["messages"][-1]["content"]
    if text.startswith("/no_think") and mode != "no_think_ignored":
        return False
    return kwargs.get("enable_thinking", True)


def reply(mode: str, body: dict) -> dict:
    """The message the fake 'model' produces, broken according to mode."""
    think = thinking_wanted(mode, body)
    message = {"role": "assistant", "reasoning_content": "The user asks for a capital." if think else None,
               "content": "Paris is the capital of France.", "tool_calls": []}
    finish = "stop"
    if mode == "slow_no_reasoning":
        message["reasoning_content"] = None
    if mode == "tag_leak":
        message["content"] += "\n</answer>"
    if mode == "empty_content":
        message["content"] = ""
    if body.get("tools"):
        arguments = "{'city': Paris}" if mode == "tool_malformed" else json.dumps({"city": "Paris"})
        if mode != "tool_none":
            message["content"] = None
            message["tool_calls"] = [{"id": "call_1", "type": "function",
                                      "function": {"name": "get_weather", "arguments": arguments}}]
            finish = "tool_calls"
    return {"message": message, "finish_reason": finish}


def sse(mode: str, answer: dict):
    message = answer["message"]
    base = {"id": "x", "object": "chat.completion.chunk", "model": MODEL}
    deltas = [{"role": "assistant"}]
    if message["reasoning_content"]:
        deltas.append({"reasoning_content": message["reasoning_content"]})
    if message["content"] and mode != "stream_broken":
        deltas += [{"content": message["content"][:5]}, {"content": message["content"][5:]}]
    for delta in deltas:
        yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': delta, 'finish_reason': None}]})}\n\n"
    end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": answer["finish_reason"]}]}
    yield f"data: {json.dumps(end)}\n\n"
    yield "data: [DONE]\n\n"


def authorized(mode: str, request: Request) -> bool:
    return mode != "auth" or request.headers.get("authorization") == "Bearer s3cret"


async def health(request):
    mode = request.path_params["mode"]
    HEALTH_CALLS[mode] = HEALTH_CALLS.get(mode, 0) + 1
    if mode == "health_down":
        return Response(status_code=500)
    if mode == "starting" and HEALTH_CALLS[mode] < 3:
        return Response(status_code=503)
    return Response(status_code=200)


async def models(request):
    mode = request.path_params["mode"]
    if not authorized(mode, request):
        return JSONResponse({"error": {"message": "bad key"}}, 401)
    return JSONResponse({"object": "list", "data": [] if mode == "models_empty" else [{"id": MODEL, "object": "model"}]})


async def chat(request):
    mode = request.path_params["mode"]
    if not authorized(mode, request):
        return JSONResponse({"error": {"message": "bad key"}}, 401)
    body = await request.json()
    answer = reply(mode, body)
    if body.get("stream"):
        return StreamingResponse(sse(mode, answer), media_type="text/event-stream")
    return JSONResponse({"id": "x", "object": "chat.completion", "model": MODEL,
                         "choices": [{"index": 0, **answer}]})


APP = Starlette(routes=[Route("/{mode}/health", health), Route("/{mode}/v1/models", models),
                        Route("/{mode}/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture(scope="module")
def fake():
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(APP, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def failures(url: str, **kwargs) -> set[str]:
    checks = run_smoke(url, wait_s=5, timeout=10, **kwargs)
    assert [c.name for c in checks] == CHECK_NAMES
    return {c.name for c in checks if not c.ok}


def test_good_endpoint_passes_everything(fake):
    checks = run_smoke(f"{fake}/good", wait_s=5, timeout=10)
    assert all(c.ok for c in checks), [(c.name, c.detail) for c in checks if not c.ok]
    streamed = [c for c in checks if c.name in STREAMED]
    assert all(c.ttft_s is not None and 0 <= c.ttft_s <= c.seconds for c in streamed)


@pytest.mark.parametrize("mode,broken", [
    ("health_down", {"health"}),
    ("models_empty", {"models"}),
    ("slow_no_reasoning", {"slow", "slow_stream"}),
    ("tag_leak", {"slow", "fast_kwargs", "fast_no_think", "slow_stream", "fast_kwargs_stream",
                  "fast_no_think_stream"}),
    ("empty_content", {"slow", "fast_kwargs", "fast_no_think", "slow_stream", "fast_kwargs_stream",
                       "fast_no_think_stream"}),
    ("fast_reasoning", {"fast_kwargs", "fast_no_think", "fast_kwargs_stream", "fast_no_think_stream"}),
    ("no_think_ignored", {"fast_no_think", "fast_no_think_stream"}),
    ("stream_broken", set(STREAMED)),
    ("tool_malformed", {"tool_call"}),
    ("tool_none", {"tool_call"}),
])
def test_each_broken_rule_fails_its_checks(fake, mode, broken):
    assert failures(f"{fake}/{mode}") == broken


def test_unknown_model_fails_models(fake):
    assert "models" in failures(f"{fake}/good", model="someone/else")


def test_retries_only_while_starting(fake):
    assert failures(f"{fake}/starting") == set()
    assert HEALTH_CALLS["starting"] == 3
    before = HEALTH_CALLS.get("health_down", 0)
    failures(f"{fake}/health_down")
    assert HEALTH_CALLS["health_down"] == before + 1  # a 500 is not "starting": no retry


def test_api_key(fake):
    assert failures(f"{fake}/auth") == set(CHECK_NAMES) - {"health"}
    assert failures(f"{fake}/auth", api_key="s3cret") == set()


def test_nothing_listening_fails_everything_quickly():
    started = time.monotonic()
    checks = run_smoke(f"http://127.0.0.1:{free_port()}", wait_s=1.5, timeout=2)
    assert not any(c.ok for c in checks) and time.monotonic() - started < 30


def test_cli_exit_code_and_json(run_cli, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("HUNYUAN_TRT_API_KEY", "unused")
    out = tmp_path / "smoke.json"
    result = run_cli("smoke", "--url", f"{fake}/tool_none", "--json", out, "--wait", "5", "--timeout", "10")
    assert result.exit_code == 1, result.output
    assert "FAIL  tool_call" in result.output and "PASS  slow_stream" in result.output
    data = json.loads(out.read_text())
    assert data["failed"] == 1 and data["passed"] == len(CHECK_NAMES) - 1
    result = run_cli("smoke", "--url", f"{fake}/stream_broken", "--wait", "5", "--timeout", "10")
    assert result.exit_code == 3
