"""The CPU backend as a real server, checked against trtllm-serve's request/response shapes.

One server (max_batch_size 1, max_queue 1, so the queue limit is reachable) serves the embedded tiny model
for the whole module; a second one is started to test SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import requests

from pipeline.cpu_backend.runner import ServeOptions, backend_argv
from pipeline.model import SERVED_MODEL_NAME, TINY_MODEL_DIR
from pipeline.procs import ManagedProcess, free_port, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL_DIR = Path(os.environ.get("HUNYUAN_TINY_DIR", TINY_MODEL_DIR))
NAME = SERVED_MODEL_NAME
MAX_SEQ_LEN = 1024
HELLO = [{"role": "user", "content": "What is 12+30?"}]

# Keys trtllm-serve's pydantic models (tensorrt_llm/serve/openai_protocol.py) put on the wire.
CHAT_KEYS = {"id", "object", "created", "model", "choices", "usage"}
CHAT_CHOICE_KEYS = {"index", "message", "logprobs", "finish_reason", "stop_reason"}
CHUNK_CHOICE_KEYS = {"index", "delta", "logprobs", "finish_reason", "stop_reason"}
TEXT_CHOICE_KEYS = {"index", "text", "logprobs", "finish_reason", "stop_reason"}
USAGE_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens"}


def start_backend(tmp_path: Path, **limits) -> tuple[ManagedProcess, str]:
    port = free_port()
    opts = ServeOptions(MODEL_DIR, "127.0.0.1", port, NAME, limits.get("max_batch_size", 1), MAX_SEQ_LEN,
                        limits.get("max_queue", 1))
    proc = ManagedProcess(backend_argv(**asdict(opts)), log_path=tmp_path / f"backend-{port}.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", timeout=180, process=proc.process)
    except Exception:
        proc.stop()
        raise
    return proc, url


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, url = start_backend(tmp_path_factory.mktemp("cpu-backend"))
    yield url
    proc.stop()


def chat(url, timeout=120, **body):
    return requests.post(f"{url}/v1/chat/completions", json={"messages": HELLO, **body}, timeout=timeout)


def sse_events(response) -> list:
    """Parsed `data:` payloads of an SSE response; the literal [DONE] stays a string."""
    events = []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data: "):
            payload = line[len("data: "):]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
        else:
            assert line == "", f"unexpected SSE line {line!r}"
    return events


def metric(url: str, name: str) -> float:
    for line in requests.get(f"{url}/prometheus/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} not exposed")


def test_health_models_and_health_generate(server):
    health = requests.get(f"{server}/health", timeout=10)
    assert health.status_code == 200
    models = requests.get(f"{server}/v1/models", timeout=10).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [NAME]
    assert set(models["data"][0]) == {"id", "object", "created", "owned_by"}
    deep = requests.get(f"{server}/health_generate", timeout=60)
    assert deep.status_code == 200, deep.text


def test_chat_response_shape_and_usage(server):
    body = chat(server, max_tokens=40, temperature=0).json()
    assert set(body) == CHAT_KEYS
    assert body["object"] == "chat.completion" and body["model"] == NAME
    assert body["id"].startswith("chatcmpl-")
    (choice,) = body["choices"]
    assert set(choice) == CHAT_CHOICE_KEYS
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] in {"stop", "length"}
    usage = body["usage"]
    assert USAGE_KEYS <= set(usage)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 < usage["completion_tokens"] <= 40


def test_streamed_chat_matches_the_non_streamed_text(server):
    whole = chat(server, max_tokens=40, temperature=0).json()["choices"][0]["message"]["content"]
    with requests.post(f"{server}/v1/chat/completions", stream=True, timeout=120, json={
            "messages": HELLO, "max_tokens": 40, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [c["choices"][0] for c in chunks if c["choices"]]
    assert all(set(d) == CHUNK_CHOICE_KEYS for d in deltas)
    assert "".join(d["delta"].get("content", "") for d in deltas) == whole
    assert deltas[-1]["finish_reason"] in {"stop", "length"}
    assert chunks[-1]["choices"] == [] and USAGE_KEYS <= set(chunks[-1]["usage"])


def test_chat_template_kwargs_reach_the_template(server):
    slow = chat(server, max_tokens=1).json()["usage"]["prompt_tokens"]
    fast = chat(server, max_tokens=1, chat_template_kwargs={"enable_thinking": False}).json()
    assert fast["usage"]["prompt_tokens"] > slow  # the pre-filled empty think block


def test_max_tokens_is_capped_by_the_context(server):
    long_text = "1+1 " * 100
    body = chat(server, messages=[{"role": "user", "content": long_text}], max_tokens=100000,
                ignore_eos=True, temperature=0).json()
    usage = body["usage"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] == MAX_SEQ_LEN
    assert body["choices"][0]["finish_reason"] == "length"
    too_long = chat(server, messages=[{"role": "user", "content": "x" * (MAX_SEQ_LEN + 10)}])
    assert too_long.status_code == 400
    assert "max_seq_len" in too_long.json()["error"]["message"]


def test_stop_string_is_removed_and_reported(server):
    text = chat(server, max_tokens=40, temperature=0).json()["choices"][0]["message"]["content"]
    stop = text[len(text) // 2:len(text) // 2 + 3]
    choice = chat(server, max_tokens=40, temperature=0, stop=[stop]).json()["choices"][0]
    assert choice["message"]["content"] == text[:text.index(stop)]
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == stop


def test_seeded_sampling_is_reproducible_and_n_gives_n_choices(server):
    first = chat(server, max_tokens=30, temperature=1.0, top_p=0.9, top_k=50, seed=11, n=2).json()
    again = chat(server, max_tokens=30, temperature=1.0, top_p=0.9, top_k=50, seed=11, n=2).json()
    assert [c["index"] for c in first["choices"]] == [0, 1]
    assert [c["message"]["content"] for c in first["choices"]] == [c["message"]["content"] for c in again["choices"]]


@pytest.mark.parametrize("body", [
    {"messages": "hi"},
    {"messages": [{"role": "wizard", "content": "x"}]},
    {"messages": HELLO, "max_tokens": "abc"},
    {"messages": HELLO, "top_p": 0},
    {"messages": HELLO, "n": 0},
    {"messages": HELLO, "stream_options": {"include_usage": True}},
    {"messages": HELLO, "response_format": {"type": "json_object"}},
    {"messages": HELLO, "logit_bias": {"abc": 1}},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
])
def test_bad_chat_requests_get_openai_style_400(server, body):
    response = requests.post(f"{server}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == 400


def test_completions_shapes_streamed_and_not(server):
    body = requests.post(f"{server}/v1/completions", timeout=60,
                         json={"prompt": ["What is", "Hi"], "max_tokens": 8, "temperature": 0}).json()
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert all(set(c) == TEXT_CHOICE_KEYS for c in body["choices"])
    with requests.post(f"{server}/v1/completions", stream=True, timeout=60,
                       json={"prompt": "What is", "max_tokens": 8, "temperature": 0, "stream": True}) as response:
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == body["choices"][0]["text"]
    bad = requests.post(f"{server}/v1/completions", json={"prompt": [10 ** 6]}, timeout=30)
    assert bad.status_code == 400 and "vocabulary" in bad.json()["error"]["message"]


def test_metrics_use_trtllm_names_and_count_requests(server):
    text = requests.get(f"{server}/prometheus/metrics", timeout=10).text
    types = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE"))
    for gauge in ("num_requests_waiting", "num_requests_running", "kv_cache_utilization",
                  "kv_cache_tokens_per_block", "kv_cache_max_blocks", "kv_cache_hit_rate"):
        assert types.get(gauge) == "gauge", gauge
    for histogram in ("time_to_first_token_seconds", "time_per_output_token_seconds",
                      "e2e_request_latency_seconds", "request_queue_time_seconds"):
        assert types.get(histogram) == "histogram", histogram
    before = metric(server, "e2e_request_latency_seconds_count")
    tokens = metric(server, "generation_tokens_total")
    usage = chat(server, max_tokens=5, temperature=0).json()["usage"]
    assert metric(server, "e2e_request_latency_seconds_count") == before + 1
    assert metric(server, "generation_tokens_total") == tokens + usage["completion_tokens"]


def _open_stream(url: str, hold: list):
    """Start a long streamed request and keep it open (it occupies the slot or the queue)."""
    response = requests.post(f"{url}/v1/chat/completions", stream=True, timeout=120, json={
        "messages": HELLO, "max_tokens": 100000, "ignore_eos": True, "stream": True})
    hold.append(response)


def test_queue_full_gives_429_and_a_gone_client_frees_its_slot(server):
    tokens_before = metric(server, "generation_tokens_total")
    held: list = []
    threads = [threading.Thread(target=_open_stream, args=(server, held)) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while not (metric(server, "num_requests_running") == 1
                   and metric(server, "num_requests_waiting") == 1):
            assert time.monotonic() < deadline, "slot and queue never filled"
            time.sleep(0.05)
        refused = chat(server, max_tokens=1)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == 429
    finally:
        for t in threads:
            t.join()
        for response in held:
            response.close()
    deadline = time.monotonic() + 10
    while metric(server, "num_requests_running") or metric(server, "num_requests_waiting"):
        assert time.monotonic() < deadline, "closed streams kept generating"
        time.sleep(0.05)
    generated = metric(server, "generation_tokens_total") - tokens_before
    assert generated < 2 * (MAX_SEQ_LEN - 10), "cancelled requests ran to their full budget"
    assert chat(server, max_tokens=2).status_code == 200


def test_non_streamed_request_is_cancelled_when_the_client_gives_up(server):
    tokens_before = metric(server, "generation_tokens_total")
    with pytest.raises(requests.Timeout):
        chat(server, max_tokens=100000, ignore_eos=True, timeout=0.3)
    deadline = time.monotonic() + 10
    while metric(server, "num_requests_running"):
        assert time.monotonic() < deadline, "the abandoned request kept generating"
        time.sleep(0.05)
    assert metric(server, "generation_tokens_total") - tokens_before < MAX_SEQ_LEN - 20


def test_sigterm_stops_the_server_promptly_even_mid_generation(tmp_path):
    proc, url = start_backend(tmp_path, max_batch_size=1, max_queue=1)
    held: list = []
    try:
        _open_stream(url, held)
        next(held[0].iter_lines())  # generation has started
        start = time.monotonic()
        proc.kill(signal.SIGTERM)
        proc.process.wait(15)
        assert time.monotonic() - start < 8
    finally:
        for response in held:
            response.close()
        proc.stop()


def test_official_openai_client_streaming_and_not(server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key="unused")
    whole = client.chat.completions.create(model=NAME, messages=HELLO, max_tokens=20, temperature=0,
                                           extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert whole.choices[0].message.role == "assistant"
    stream = client.chat.completions.create(model=NAME, messages=HELLO, max_tokens=20, temperature=0, stream=True,
                                            extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert streamed == whole.choices[0].message.content
    text = client.completions.create(model=NAME, prompt="What is", max_tokens=5, temperature=0)
    assert text.choices[0].finish_reason in {"stop", "length"}


@pytest.mark.parametrize("weights", [None, b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage"])
def test_unloadable_checkpoint_is_one_clear_line(tmp_path, weights):
    """No weights, or a header that does not read: refused before torch is imported."""
    shutil.copytree(MODEL_DIR, tmp_path / "m", ignore=shutil.ignore_patterns("*.safetensors"))
    if weights is not None:
        (tmp_path / "m" / "model.safetensors").write_bytes(weights)
    done = subprocess.run([sys.executable, "-m", "pipeline.cpu_backend", str(tmp_path / "m"), "--port",
                           str(free_port())], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{tmp_path / 'm'}: cannot load the checkpoint" in done.stderr.splitlines()[-1]
    assert "torch" not in done.stderr  # nothing heavy ran


@pytest.mark.parametrize("rows, problem", [(None, "no weights for"), (3, "mismatched")])
def test_weights_that_do_not_fit_the_model_are_refused(tmp_path, rows, problem):
    """A readable safetensors file whose tensors are missing (transformers would initialize them at random and
    serve garbage) or have the wrong shape."""
    import numpy as np
    from safetensors.numpy import save_file

    from pipeline.cpu_backend.engine import Engine
    from pipeline.errors import PipelineError

    shutil.copytree(MODEL_DIR, tmp_path / "m", ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((MODEL_DIR / "config.json").read_text())
    shape = (rows or config["vocab_size"], config["hidden_size"])
    save_file({"model.embed_tokens.weight": np.zeros(shape, np.float32)}, tmp_path / "m" / "model.safetensors")
    with pytest.raises(PipelineError, match=rf"{tmp_path / 'm'}: cannot load the checkpoint: .*{problem}"):
        Engine(tmp_path / "m", 64)


def labelled_metric(url: str, name: str, label: str) -> float:
    for line in requests.get(f"{url}/prometheus/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_chat_logprobs_streamed_and_not(server):
    body = chat(server, max_tokens=12, temperature=0, logprobs=True, top_logprobs=3).json()
    choice = body["choices"][0]
    entries = choice["logprobs"]["content"]
    assert len(entries) == body["usage"]["completion_tokens"] - (choice["finish_reason"] == "stop")
    assert "".join(e["token"] for e in entries) == choice["message"]["content"]
    for entry in entries:
        assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"} and entry["logprob"] <= 0
        tops = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True)
        assert entry["logprob"] == tops[0]  # greedy: the chosen token is the most likely one
    with requests.post(f"{server}/v1/chat/completions", stream=True, timeout=120, json={
            "messages": HELLO, "max_tokens": 12, "temperature": 0, "stream": True, "logprobs": True,
            "top_logprobs": 3}) as response:
        streamed = [e for event in sse_events(response)[:-1] for c in event["choices"]
                    for e in (c["logprobs"] or {}).get("content", [])]
    assert streamed == entries
    plain = chat(server, max_tokens=3).json()["choices"][0]
    assert plain["logprobs"] is None


def test_completion_logprobs(server):
    body = requests.post(f"{server}/v1/completions", timeout=60, json={
        "prompt": "What is", "max_tokens": 6, "temperature": 0, "logprobs": 2, "ignore_eos": True}).json()
    logprobs = body["choices"][0]["logprobs"]
    assert len(logprobs["tokens"]) == len(logprobs["token_logprobs"]) == len(logprobs["top_logprobs"]) == 6
    assert "".join(logprobs["tokens"]) == body["choices"][0]["text"]
    assert logprobs["text_offset"] == [sum(len(t) for t in logprobs["tokens"][:i]) for i in range(6)]
    assert all(len(top) <= 2 for top in logprobs["top_logprobs"])


def test_request_limits(server):
    assert chat(server, max_tokens=1, n=17).json()["error"]["param"] == "n"
    assert chat(server, max_tokens=1, stop=[str(i) for i in range(17)]).json()["error"]["param"] == "stop"
    many = requests.post(f"{server}/v1/completions", json={"prompt": ["x"] * 3000, "max_tokens": 1}, timeout=30)
    assert many.status_code == 400 and many.json()["error"]["param"] == "prompt"


def test_a_huge_prompt_is_refused_before_it_is_tokenized(server):
    start = time.monotonic()
    huge = chat(server, messages=[{"role": "user", "content": "x" * 10_000_000}])
    assert huge.status_code == 400 and "characters" in huge.json()["error"]["message"]
    assert time.monotonic() - start < 5
    text = requests.post(f"{server}/v1/completions", json={"prompt": ["y" * 5_000_000]}, timeout=30)
    assert text.status_code == 400 and text.json()["error"]["param"] == "prompt"
    tool = {"type": "function", "function": {"name": "f", "description": "z" * 5_000_000, "parameters": {}}}
    schema = chat(server, messages=HELLO, tools=[tool])
    assert schema.status_code == 400 and "characters" in schema.json()["error"]["message"]
    history = [{"role": "assistant", "content": "", "reasoning_content": "r" * 5_000_000}, *HELLO]
    assert chat(server, messages=history).status_code == 400
    assert time.monotonic() - start < 10


def test_identical_prompts_are_each_counted(server):
    one = requests.post(f"{server}/v1/completions", timeout=60,
                        json={"prompt": "What is", "max_tokens": 1}).json()["usage"]["prompt_tokens"]
    before = metric(server, "prompt_tokens_total")
    two = requests.post(f"{server}/v1/completions", timeout=60,
                        json={"prompt": ["What is", "What is"], "max_tokens": 1}).json()["usage"]["prompt_tokens"]
    assert two == 2 * one
    assert metric(server, "prompt_tokens_total") - before == 2 * one


def test_a_tiny_temperature_is_served(server):
    response = chat(server, max_tokens=4, temperature=1e-40)
    assert response.status_code == 200, response.text


def test_a_burst_never_admits_more_than_the_queue_holds(server):
    """max_batch_size 1 + max_queue 1: of 24 streams sent at once, exactly 2 are admitted, the rest get 429
    (admission used to be counted only once generation started, and a burst got all 24 in)."""
    import aiohttp

    async def burst() -> list[int]:
        body = {"messages": HELLO, "max_tokens": 100000, "ignore_eos": True, "stream": True}
        async with aiohttp.ClientSession() as session:
            responses = await asyncio.gather(*[session.post(f"{server}/v1/chat/completions", json=body)
                                               for _ in range(24)])
            for response in responses:
                response.close()
            return sorted(response.status for response in responses)

    assert asyncio.run(burst()) == [200, 200] + [429] * 22
    deadline = time.monotonic() + 10
    while metric(server, "num_requests_running") or metric(server, "num_requests_waiting"):
        assert time.monotonic() < deadline, "closed streams kept their seats"
        time.sleep(0.05)


def test_aborted_requests_are_counted(server):
    before = labelled_metric(server, "request_success_total", 'finished_reason="abort"')
    with pytest.raises(requests.Timeout):
        chat(server, max_tokens=100000, ignore_eos=True, timeout=0.3)
    deadline = time.monotonic() + 10
    while labelled_metric(server, "request_success_total", 'finished_reason="abort"') == before:
        assert time.monotonic() < deadline, "the abandoned request never showed up in the metrics"
        time.sleep(0.05)
