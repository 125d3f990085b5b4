"""The adapter's HTTP surface in front of the replaying trtllm-serve stand-in: thinking controls, request
validation and limits, upstream errors and broken streams, the route table (no open proxy), model cards,
pass-throughs and cancelled work when the client leaves."""

from __future__ import annotations

import json
import socket
import sys
import time

import openai
import pytest
import requests
from adapter_cases import SERVED, tool

from pipeline.drills import hostile
from pipeline.procs import ManagedProcess, free_port

pytestmark = pytest.mark.integration


def chat_body(selector: str, stream: bool = False, **extra) -> dict:
    return {"model": SERVED, "messages": [{"role": "user", "content": selector}], "stream": stream, **extra}


def post(url: str, body, **kwargs) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{url}/v1/chat/completions", data=data, timeout=30,
                         headers={"content-type": "application/json"}, **kwargs)


def sse_lines(response) -> list[str]:
    return [line for line in response.iter_lines(decode_unicode=True) if line]


@pytest.fixture(scope="module")
def client(replay_adapter):
    return openai.OpenAI(base_url=f"{replay_adapter}/v1", api_key="unused", max_retries=0, timeout=30)


def test_thinking_controls_reach_upstream(replay_adapter, replay_upstream):
    def forwarded(**extra):
        assert post(replay_adapter, chat_body("case:plain_text", **extra)).status_code == 200
        return requests.get(f"{replay_upstream}/debug/last_request", timeout=5).json().get("chat_template_kwargs")

    assert forwarded() is None
    assert forwarded(chat_template_kwargs={"enable_thinking": False, "x": 1}) == {"enable_thinking": False, "x": 1}
    assert forwarded(reasoning_effort="none") == {"enable_thinking": False}
    assert forwarded(reasoning_effort="high") == {"enable_thinking": True}
    assert forwarded(thinking=False) == {"enable_thinking": False}
    assert forwarded(thinking={"type": "enabled"}) == {"enable_thinking": True}
    assert forwarded(thinking=False, chat_template_kwargs={"enable_thinking": True}) == {"enable_thinking": True}
    post(replay_adapter, chat_body("/no_think case:plain_text"))
    last = requests.get(f"{replay_upstream}/debug/last_request", timeout=5).json()
    assert last["chat_template_kwargs"] == {"enable_thinking": False}
    assert "thinking" not in last and "reasoning_effort" not in last


def test_tool_choice_reaches_upstream_as_the_policy_says(replay_adapter, replay_upstream):
    def forwarded(**extra):
        assert post(replay_adapter, chat_body("case:plain_text", **extra)).status_code == 200
        last = requests.get(f"{replay_upstream}/debug/last_request", timeout=5).json()
        return [t["function"]["name"] for t in last.get("tools") or []], last.get("tool_choice")

    tools = [tool("get_weather"), tool("get_time")]
    assert forwarded(tools=tools) == (["get_weather", "get_time"], "auto")
    assert forwarded(tools=tools, tool_choice="none") == ([], None)
    assert forwarded(tools=tools, tool_choice="required") == (["get_weather", "get_time"], "auto")
    named = {"type": "function", "function": {"name": "get_time"}}
    assert forwarded(tools=tools, tool_choice=named) == (["get_time"], "auto")
    assert forwarded(tool_choice="auto") == ([], None)


MALFORMED = [  # (body, param): every field the adapter reads, with a wrong type or value
    (chat_body("x", stream="false"), "stream"),
    (chat_body("x", thinking={"type": []}), "thinking"),
    (chat_body("x", thinking="yes"), "thinking"),
    (chat_body("x", reasoning_effort=[]), "reasoning_effort"),
    (chat_body("x", reasoning_effort="max"), "reasoning_effort"),
    ({"model": SERVED, "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "messages"),
    ({"model": SERVED, "messages": []}, "messages"),
    ({"model": SERVED, "messages": "hi"}, "messages"),
    (chat_body("x", chat_template_kwargs=[1]), "chat_template_kwargs"),
    (chat_body("x", n=0), "n"),
    (chat_body("x", n=5), "n"),                   # the fixture's max_n is 4
    (chat_body("x", stop=["a", "b", "c", "d", "e"]), "stop"),
    (chat_body("x", stop=[1]), "stop"),
    (chat_body("x", tools=[{"type": "function", "function": {"name": 3}}]), "tools"),
    (chat_body("x", tools=[{"type": "retrieval"}]), "tools"),
    (chat_body("x", tool_choice="always"), "tool_choice"),
    (chat_body("x", tool_choice="required"), "tool_choice"),   # required with no tools
    (chat_body("x", tools=[tool("a")], tool_choice={"type": "function", "function": {"name": "b"}}), "tool_choice"),
    (chat_body("x", logprobs="yes"), "logprobs"),
    (chat_body("x", top_logprobs=-1), "top_logprobs"),
]


@pytest.mark.parametrize("body,param", MALFORMED, ids=[f"{p}-{i}" for i, (_, p) in enumerate(MALFORMED)])
def test_malformed_requests_are_400_naming_the_field(replay_adapter, body, param):
    response = post(replay_adapter, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"].split(".")[0] == param and error["code"] == 400


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b'{"n": NaN}', b"[" * 100_000 + b"]" * 100_000,
                                 b'{"a":' * 50_000 + b"1" + b"}" * 50_000])
def test_unparseable_bodies_are_400(replay_adapter, raw):
    response = post(replay_adapter, raw)
    assert response.status_code == 400 and response.json()["error"]["param"] == "body"


def test_completions_limits(replay_adapter):
    def completion(**body):
        return requests.post(f"{replay_adapter}/v1/completions", json=body, timeout=30)

    assert completion(prompt=["x"] * 8).status_code == 200
    too_many = completion(prompt=["x"] * 9)
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "prompt"
    assert completion(prompt="x", stream="no").status_code == 400
    assert completion(prompt=[[1, 2], "x"]).status_code == 400


def test_oversized_bodies_get_413_before_they_are_read(replay_adapter, replay_adapter_log):
    big = json.dumps(chat_body("x" * 1_100_000)).encode()  # the fixture's limit is 1,000,000 bytes
    response = post(replay_adapter, big)
    assert response.status_code == 413 and response.json()["error"]["code"] == 413

    def chunked():  # no Content-Length: counted while it arrives
        for _ in range(12):
            yield b" " * 100_000
    response = requests.post(f"{replay_adapter}/v1/completions", data=chunked(), timeout=30)
    assert response.status_code == 413

    # a declared size over the limit is refused at once, before a single body byte is sent
    host, port = replay_adapter.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    assert "Traceback" not in replay_adapter_log.read_text()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [400, 503])
def test_upstream_errors_keep_status_with_openai_body(replay_adapter, status, stream):
    response = post(replay_adapter, chat_body(f"error:{status}", stream))
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] == f"scripted error {status}" and error["code"] == status


def test_unreadable_upstream_replies_become_openai_errors(replay_adapter, client):
    response = post(replay_adapter, chat_body("garbage"))
    assert response.status_code == 502 and "unreadable completion" in response.json()["error"]["message"]
    with post(replay_adapter, chat_body("garbage", True), stream=True) as response:
        lines = sse_lines(response)
    assert json.loads(lines[0][6:])["error"]["type"] == "upstream_error"
    assert json.loads(lines[1][6:])["choices"][0]["delta"]["content"] == "ok" and lines[-1] == "data: [DONE]"
    with pytest.raises(openai.APIError, match="unreadable stream event"):
        list(client.chat.completions.create(**chat_body("garbage", True)))


def test_a_stream_broken_off_upstream_ends_with_an_error_event(replay_adapter, client):
    with post(replay_adapter, chat_body("broken", True), stream=True) as response:
        lines = sse_lines(response)
    assert json.loads(lines[0][6:])["choices"][0]["delta"]["content"] == "partial"
    assert json.loads(lines[-2][6:])["error"]["code"] == 502 and lines[-1] == "data: [DONE]"
    with pytest.raises(openai.APIError, match="broke off"):
        list(client.chat.completions.create(**chat_body("broken", True)))


def test_models_and_model_cards(replay_adapter, client):
    models = requests.get(f"{replay_adapter}/v1/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == [SERVED]
    card = requests.get(f"{replay_adapter}/v1/models/{SERVED}", timeout=5)
    assert card.status_code == 200 and card.json()["id"] == SERVED
    assert client.models.retrieve(SERVED).id == SERVED
    missing = requests.get(f"{replay_adapter}/v1/models/other-model", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("other-model")


def test_passthroughs(replay_adapter, replay_upstream):
    assert requests.get(f"{replay_adapter}/health", timeout=5).status_code == 200
    metrics = requests.get(f"{replay_adapter}/prometheus/metrics", timeout=5)
    assert metrics.status_code == 200 and "num_requests_running" in metrics.text
    plain = requests.post(f"{replay_adapter}/v1/completions", json={"prompt": "x"}, timeout=5).json()
    assert plain == requests.post(f"{replay_upstream}/v1/completions", json={"prompt": "x"}, timeout=5).json()
    with requests.post(f"{replay_adapter}/v1/completions", json={"prompt": "x", "stream": True}, stream=True,
                       timeout=5) as response:
        events = [json.loads(line[6:]) for line in sse_lines(response) if line != "data: [DONE]"]
    assert "".join(e["choices"][0]["text"] for e in events).startswith("<think>")  # raw: not parsed


@pytest.mark.parametrize("method", hostile.PROXY_METHODS)
def test_no_open_proxy(replay_adapter, method):
    result = hostile.judge_open_proxy([hostile.probe_open_proxy(replay_adapter, (method,))])
    assert result.passed, result.details
    assert result.measured.startswith(f"{len(hostile.proxy_targets(0))}/{len(hostile.proxy_targets(0))} ")


@pytest.mark.parametrize("stream", [True, False])
def test_client_disconnect_cancels_upstream(replay_adapter, replay_upstream, stream):
    before = requests.get(f"{replay_upstream}/debug/cancelled", timeout=5).json()["cancelled"]
    host, port = replay_adapter.removeprefix("http://").split(":")
    body = json.dumps(chat_body("hang", stream)).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        if stream:
            assert b"200" in sock.recv(4096)
        else:
            time.sleep(0.3)  # the request is upstream by now; nothing can be read until it ends
    deadline = time.monotonic() + 2
    while requests.get(f"{replay_upstream}/debug/cancelled", timeout=5).json()["cancelled"] == before:
        assert time.monotonic() < deadline, "upstream request still running 2 s after the client went away"
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
        assert post(url, chat_body("x")).status_code == 502


def test_openai_client_sees_upstream_errors(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "error:400"}])
    assert caught.value.status_code == 400 and "scripted error 400" in str(caught.value)
