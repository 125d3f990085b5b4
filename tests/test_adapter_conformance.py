"""The conformance suite through the HTTP adapter (in front of the replaying trtllm-serve stand-in): every case
non-streamed and streamed in several chunkings, with plain HTTP and with the official `openai` client.
The client must get the expected fields, no markup, no undeclared or fabricated calls, and every upstream
logprob entry, in order."""

from __future__ import annotations

import json
import math

import pytest
import requests
from adapter_cases import CASES, IDS, SERVED, expected, leaks, message_fields, raw_text, request_body

pytestmark = pytest.mark.integration
CHUNKED = [case for case in CASES if "chunks" in case]


def sse_chunks(response) -> list:
    chunks = []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data: "):
            chunks.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
    return chunks


def upstream_pieces(case, chunk: str) -> int:
    if chunk == "given":
        return len(case["chunks"])
    return math.ceil(len(raw_text(case)) / int(chunk))


def check_logprobs(case, chunk: str, entries: list) -> None:
    """Every upstream entry arrived once, in order (the replay numbers them -1/1000, -2/1000, ...)."""
    assert len(entries) == upstream_pieces(case, chunk)
    assert "".join(entry["token"] for entry in entries) == raw_text(case)
    assert [entry["logprob"] for entry in entries] == [-(i + 1) / 1000 for i in range(len(entries))]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_http_non_streamed(replay_adapter, case):
    body = request_body(case, stream=False, logprobs=True)
    response = requests.post(f"{replay_adapter}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["model"] == SERVED
    (choice,) = data["choices"]
    message = choice["message"]
    calls = message.get("tool_calls") or []
    assert message_fields(message["reasoning_content"], message["content"], calls, choice["finish_reason"]) \
        == expected(case)
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)
    assert not leaks(message["content"], case) and not leaks(message["reasoning_content"], case)
    check_logprobs(case, "3", choice["logprobs"]["content"])


def stream_over_http(url: str, case, chunk: str) -> tuple[dict, list]:
    body = request_body(case, stream=True, chunk=chunk, logprobs=True, stream_options={"include_usage": True})
    with requests.post(f"{url}/v1/chat/completions", json=body, stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = sse_chunks(response)
    assert chunks[-1] == "[DONE]"
    assert "usage" in chunks[-2] and chunks[-2]["choices"] == []
    text = {"reasoning_content": "", "content": ""}
    calls, finish, entries = {}, None, []
    for data in chunks[:-2]:
        assert data["object"] == "chat.completion.chunk" and data["model"] == SERVED
        (choice,) = data["choices"]
        assert finish is None, "nothing may follow the finish_reason chunk"
        delta = choice["delta"]
        for key in text:
            if key in delta:
                assert delta[key], "no empty text deltas"
                assert not leaks(delta[key], case), f"tag leaked in {delta[key]!r}"
                text[key] += delta[key]
        for call in delta.get("tool_calls", []):
            calls[call["index"]] = call
        entries += (choice.get("logprobs") or {}).get("content") or []
        finish = choice["finish_reason"]
    got = message_fields(text["reasoning_content"], text["content"], [calls[i] for i in sorted(calls)], finish)
    return got, entries


@pytest.mark.parametrize("chunk", ["1", "4"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_http_streamed(replay_adapter, case, chunk):
    got, entries = stream_over_http(replay_adapter, case, chunk)
    assert got == expected(case)
    check_logprobs(case, chunk, entries)


@pytest.mark.parametrize("case", CHUNKED, ids=[case["name"] for case in CHUNKED])
def test_http_streamed_in_the_cases_own_chunks(replay_adapter, case):
    got, entries = stream_over_http(replay_adapter, case, "given")
    assert got == expected(case)
    check_logprobs(case, "given", entries)


@pytest.fixture(scope="module")
def client(replay_adapter):
    import openai

    return openai.OpenAI(base_url=f"{replay_adapter}/v1", api_key="unused", max_retries=0, timeout=30)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_openai_client(client, case):
    body = request_body(case, stream=False, logprobs=True)
    result = client.chat.completions.create(**body)
    message, finish = result.choices[0].message, result.choices[0].finish_reason
    calls = [call.model_dump() for call in message.tool_calls or []]
    assert message_fields(getattr(message, "reasoning_content", None), message.content, calls, finish) \
        == expected(case)
    assert len(result.choices[0].logprobs.content) == upstream_pieces(case, "3")

    stream = client.chat.completions.create(**request_body(case, stream=True, chunk="2", logprobs=True))
    reasoning, content, streamed, finish, entries = "", "", {}, None, 0
    for chunk in stream:
        choice = chunk.choices[0]
        reasoning += getattr(choice.delta, "reasoning_content", None) or ""
        content += choice.delta.content or ""
        for call in choice.delta.tool_calls or []:
            streamed[call.index] = call.model_dump()
        entries += len(choice.logprobs.content or []) if choice.logprobs else 0
        finish = choice.finish_reason or finish
    assert message_fields(reasoning, content, [streamed[i] for i in sorted(streamed)], finish) == expected(case)
    assert entries == upstream_pieces(case, "2")
