"""The adapter against a scripted trtllm-serve replaying the corpus: chunk by chunk, both modes, errors,
pass-throughs, disconnects, and the official `openai` client (streaming and not, with tools)."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest
import requests

from pipeline.model import SERVED_MODEL_NAME
from pipeline.procs import ManagedProcess, free_port, wait_http

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data" / "hunyuan_outputs"
CORPUS = json.loads((DATA / "corpus.json").read_text())["cases"]
IDS = [case["name"] for case in CORPUS]
SERVED = SERVED_MODEL_NAME
TAGS = ("<think>", "</think>", "<answer>", "</answer>", "<tool_calls>", "</tool_calls>")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("upstream") / "upstream.log"
    with ManagedProcess([sys.executable, DATA / "replay_upstream.py", "--port", port], log_path=log) as proc:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=30, process=proc.process)
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def adapter(upstream, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("adapter") / "adapter.log"
    argv = [sys.executable, "-m", "pipeline", "adapter", "--upstream", upstream, "--port", port,
            "--served-model-name", SERVED]
    with ManagedProcess(argv, log_path=log) as proc:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=30, process=proc.process)
        yield f"http://127.0.0.1:{port}"


def chat_body(selector: str, stream: bool, **extra) -> dict:
    return {"model": SERVED, "messages": [{"role": "user", "content": selector}], "stream": stream, **extra}


def sse_chunks(response) -> list:
    chunks = []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data: "):
            chunks.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
    return chunks


def expected_calls(case):
    return case["expected"]["tool_calls"]


def check_message(case, message, finish_reason):
    expected = case["expected"]
    assert message.get("reasoning_content") == expected["reasoning"]
    assert message.get("content") == expected["content"]
    calls = message.get("tool_calls") or []
    assert [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])} for c in calls] \
        == expected_calls(case)
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)
    assert finish_reason == expected["finish_reason"]


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_non_streaming_corpus(adapter, case):
    response = requests.post(f"{adapter}/v1/chat/completions", json=chat_body(f"case:{case['name']}", False),
                             timeout=30)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["model"] == SERVED
    choice = data["choices"][0]
    check_message(case, choice["message"], choice["finish_reason"])


@pytest.mark.parametrize("chunk", [1, 4])
@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_streaming_corpus_chunk_by_chunk(adapter, case, chunk):
    body = chat_body(f"case:{case['name']} chunk:{chunk}", True, stream_options={"include_usage": True})
    with requests.post(f"{adapter}/v1/chat/completions", json=body, stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = sse_chunks(response)
    assert chunks[-1] == "[DONE]"
    assert "usage" in chunks[-2] and chunks[-2]["choices"] == []
    message, finish, calls = {"reasoning_content": None, "content": None}, None, {}
    clean = not any(tag in (case["expected"]["content"] or "") for tag in TAGS) and "mentioned" not in case["name"]
    for data in chunks[:-2]:
        assert data["object"] == "chat.completion.chunk" and data["model"] == SERVED
        (choice,) = data["choices"]
        delta = choice["delta"]
        assert finish is None, "nothing may follow the finish_reason chunk"
        for key in ("reasoning_content", "content"):
            if key in delta:
                assert delta[key], "no empty text deltas"
                assert not (clean and any(tag in delta[key] for tag in TAGS)), f"tag leaked in {delta[key]!r}"
                message[key] = (message[key] or "") + delta[key]
        for call in delta.get("tool_calls", []):
            calls[call["index"]] = call
        finish = choice["finish_reason"]
    message["tool_calls"] = [calls[i] for i in sorted(calls)]
    check_message(case, message, finish)


def test_thinking_controls_reach_upstream(adapter, upstream):
    def forwarded(**extra):
        body = chat_body("case:plain_text", False, **extra)
        assert requests.post(f"{adapter}/v1/chat/completions", json=body, timeout=30).status_code == 200
        return requests.get(f"{upstream}/debug/last_request", timeout=5).json().get("chat_template_kwargs")

    assert forwarded() is None
    assert forwarded(chat_template_kwargs={"enable_thinking": False, "x": 1}) == {"enable_thinking": False, "x": 1}
    assert forwarded(reasoning_effort="none") == {"enable_thinking": False}
    assert forwarded(reasoning_effort="high") == {"enable_thinking": True}
    assert forwarded(thinking=False) == {"enable_thinking": False}
    assert forwarded(thinking={"type": "enabled"}) == {"enable_thinking": True}
    assert forwarded(thinking=False, chat_template_kwargs={"enable_thinking": True}) == {"enable_thinking": True}
    body = chat_body("/no_think case:plain_text", False)
    requests.post(f"{adapter}/v1/chat/completions", json=body, timeout=30)
    last = requests.get(f"{upstream}/debug/last_request", timeout=5).json()
    assert last["chat_template_kwargs"] == {"enable_thinking": False}
    assert "thinking" not in last and "reasoning_effort" not in last


@pytest.mark.parametrize("body,param", [({"thinking": "yes"}, "thinking"), ({"reasoning_effort": "max"},
                                                                                  "reasoning_effort")])
def test_bad_thinking_fields_are_400(adapter, body, param):
    response = requests.post(f"{adapter}/v1/chat/completions", json=chat_body("case:plain_text", False, **body),
                             timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_invalid_json_is_400(adapter):
    response = requests.post(f"{adapter}/v1/chat/completions", data=b"{not json", timeout=30)
    assert response.status_code == 400 and "invalid JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [400, 503])
def test_upstream_errors_keep_status_with_openai_body(adapter, status, stream):
    response = requests.post(f"{adapter}/v1/chat/completions", json=chat_body(f"error:{status}", stream), timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] == f"scripted error {status}" and error["code"] == status


def test_unreadable_upstream_replies(adapter):
    response = requests.post(f"{adapter}/v1/chat/completions", json=chat_body("garbage", False), timeout=30)
    assert response.status_code == 502 and "unreadable completion" in response.json()["error"]["message"]
    with requests.post(f"{adapter}/v1/chat/completions", json=chat_body("garbage", True), stream=True,
                       timeout=30) as response:
        lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert lines[0] == "data: not-json"  # relayed untouched
    assert json.loads(lines[1][6:])["choices"][0]["delta"]["content"] == "ok" and lines[-1] == "data: [DONE]"


def test_passthroughs(adapter, upstream):
    assert requests.get(f"{adapter}/health", timeout=5).status_code == 200
    models = requests.get(f"{adapter}/v1/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == [SERVED]
    metrics = requests.get(f"{adapter}/prometheus/metrics", timeout=5)
    assert metrics.status_code == 200 and "trtllm_num_requests_running" in metrics.text
    plain = requests.post(f"{adapter}/v1/completions", json={"prompt": "x"}, timeout=5).json()
    assert plain == requests.post(f"{upstream}/v1/completions", json={"prompt": "x"}, timeout=5).json()
    with requests.post(f"{adapter}/v1/completions", json={"prompt": "x", "stream": True}, stream=True,
                       timeout=5) as response:
        text = "".join(c["choices"][0]["text"] for c in sse_chunks(response) if c != "[DONE]")
    assert text == CORPUS[0]["raw"]  # raw on purpose: /v1/completions is passed through untouched
    assert requests.get(f"{adapter}/no/such/path", timeout=5).status_code == 404


def test_client_disconnect_cancels_upstream(adapter, upstream):
    before = requests.get(f"{upstream}/debug/cancelled", timeout=5).json()["cancelled"]
    host, port = adapter.removeprefix("http://").split(":")
    body = json.dumps(chat_body("hang", True)).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert b"200" in sock.recv(4096)
    deadline = time.monotonic() + 10
    while requests.get(f"{upstream}/debug/cancelled", timeout=5).json()["cancelled"] == before:
        assert time.monotonic() < deadline, "upstream request still running after the client went away"
        time.sleep(0.05)


def test_unreachable_upstream_is_502(tmp_path):
    port, dead = free_port(), free_port()
    argv = [sys.executable, "-m", "pipeline", "adapter", "--upstream", f"http://127.0.0.1:{dead}", "--port", port]
    with ManagedProcess(argv, log_path=tmp_path / "adapter.log") as proc:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"{url}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 502
        assert requests.post(f"{url}/v1/chat/completions", json=chat_body("x", False), timeout=5).status_code == 502


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["city"]}}}]


@pytest.fixture(scope="module")
def client(adapter):
    import openai

    return openai.OpenAI(base_url=f"{adapter}/v1", api_key="unused", max_retries=0, timeout=30)


def test_openai_client_non_streaming(client):
    slow = client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "case:slow_basic"}])
    assert slow.choices[0].message.content == "2 + 3 = 5."
    assert slow.choices[0].message.reasoning_content == "The user asks for 2 + 3. That is 5."
    fast = client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "case:fast_answer_only"}],
                                          extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert fast.choices[0].message.content == "Paris is the capital of France."
    assert fast.choices[0].message.reasoning_content is None


def test_openai_client_tools_non_streaming(client):
    result = client.chat.completions.create(model=SERVED, tools=TOOLS, tool_choice="auto",
                                            messages=[{"role": "user", "content": "case:tool_call_slow"}])
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Beijing", "unit": "celsius"}


def test_openai_client_tools_streaming(client):
    stream = client.chat.completions.create(model=SERVED, tools=TOOLS, stream=True,
                                            messages=[{"role": "user", "content": "case:tool_calls_two chunk:2"}])
    reasoning, content, calls, finish = "", "", {}, None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        reasoning += getattr(delta, "reasoning_content", None) or ""
        content += delta.content or ""
        for call in delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"id": call.id, "name": "", "arguments": ""})
            entry["name"] += call.function.name or ""
            entry["arguments"] += call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert reasoning == "Need weather and time." and content == "" and finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"timezone": "Europe/Paris"})]
    assert len({c["id"] for c in calls.values()}) == 2


def test_openai_client_streaming_text(client):
    stream = client.chat.completions.create(model=SERVED, stream=True,
                                            messages=[{"role": "user", "content": "case:slow_chinese chunk:1"}])
    parts = [(getattr(c.choices[0].delta, "reasoning_content", None), c.choices[0].delta.content)
             for c in stream if c.choices]
    assert "".join(r or "" for r, _ in parts) == "用户问北京的天气，我应该简短回答。"
    assert "".join(t or "" for _, t in parts) == "北京今天晴，气温二十五度。"


def test_openai_client_sees_upstream_errors(client):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "error:400"}])
    assert caught.value.status_code == 400 and "scripted error 400" in str(caught.value)
