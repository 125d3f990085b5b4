"""CPU backend building blocks without a server: request parsing, token choice, stop strings."""

from __future__ import annotations

import pytest
import torch

from pipeline.cpu_backend.protocol import ChatRequest, CompletionRequest, RequestError, parse_body
from pipeline.cpu_backend.sampling import Sampling, StopScan, apply_penalties, choose_token


def test_greedy_picks_the_argmax():
    logits = torch.tensor([0.1, 3.0, -1.0, 2.9])
    assert choose_token(logits, Sampling(), torch.Generator()) == 1


@pytest.mark.parametrize("temperature", [1e-40, 1e-30, 1e-6])
def test_a_tiny_temperature_is_greedy_not_nan(temperature):
    logits = torch.tensor([1.0, 3.0, 2.0, -50.0])
    assert choose_token(logits.clone(), Sampling(temperature=temperature, seed=1), Sampling(seed=1).generator()) == 1


def test_top_k_one_is_greedy_even_when_sampling():
    logits = torch.tensor([0.0, 1.0, 5.0, 0.5])
    picks = {choose_token(logits.clone(), Sampling(temperature=1.5, top_k=1), Sampling(seed=s).generator())
             for s in range(20)}
    assert picks == {2}


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([0.6, 0.3, 0.05, 0.05]))
    picks = {choose_token(logits.clone(), Sampling(temperature=1.0, top_p=0.7), Sampling(seed=s).generator())
             for s in range(200)}
    assert picks == {0, 1}


def test_same_seed_same_tokens_different_seed_differs():
    logits = torch.zeros(50)
    def draw(seed):
        gen = Sampling(seed=seed).generator()
        return [choose_token(logits.clone(), Sampling(temperature=1.0), gen) for _ in range(10)]
    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_logit_bias_can_force_a_token():
    logits = torch.tensor([5.0, 0.0, 0.0])
    assert choose_token(logits, Sampling(logit_bias={2: 100.0}), torch.Generator()) == 2


def test_penalties_lower_repeated_tokens():
    logits = torch.tensor([2.0, 2.0, 1.0])
    out = apply_penalties(logits, Sampling(presence_penalty=0.5, frequency_penalty=0.25), [0, 0, 1])
    assert out.tolist() == pytest.approx([2.0 - 0.5 - 0.5, 2.0 - 0.5 - 0.25, 1.0])


def test_stop_string_is_held_back_then_cut():
    scan = StopScan(["</answer>"])
    pieces = [scan.scan(text) for text in ("<answer>4", "<answer>4</", "<answer>4</ans", "<answer>4</answer>x")]
    assert "".join(p for p, _ in pieces) == "<answer>4"
    assert pieces[-1][1] == "</answer>"
    assert all(stop is None for _, stop in pieces[:-1])


def test_stop_string_kept_when_asked():
    scan = StopScan(["END"], keep=True)
    assert scan.scan("abcEND tail") == ("abcEND", "END")


def test_no_stops_emits_everything_but_a_partial_character():
    scan = StopScan([])
    assert scan.scan("ab\ufffd") == ("ab", None)
    assert scan.flush("abc") == "c"


@pytest.mark.parametrize("body, field", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"messages": []}', "messages"),
    (b'{"messages": [{"content": "x"}]}', "messages.0.role"),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', "max_tokens"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": -1}', "temperature"),
    (b'{"messages": [{"role": "user", "content": "x"}], "n": 0}', "n"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"messages": [{"role": "user", "content": "x"}], "top_logprobs": 21, "logprobs": true}', "top_logprobs"),
    (b'{"messages": [{"role": "user", "content": "x"}], "chat_template_kwargs": "x"}', "chat_template_kwargs"),
    (b'{"messages": [{"role": "user", "content": "x"}], "surprise": 1}', "surprise"),
    (b'{"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}', "logprobs must be true"),
])
def test_bad_chat_bodies_name_the_field(body, field):
    with pytest.raises(RequestError) as info:
        parse_body(body, ChatRequest)
    assert info.value.status == 400
    assert field in info.value.message
    assert info.value.body()["error"]["code"] == 400


def test_completion_prompt_forms():
    assert parse_body(b'{"prompt": "hi"}', CompletionRequest).prompts() == ["hi"]
    assert parse_body(b'{"prompt": [1, 2]}', CompletionRequest).prompts() == [[1, 2]]
    assert parse_body(b'{"prompt": ["a", "b"]}', CompletionRequest).prompts() == ["a", "b"]
    with pytest.raises(RequestError):
        parse_body(b'{"prompt": []}', CompletionRequest)


def test_a_stream_that_fails_ends_with_an_error_event_not_a_cut():
    import asyncio
    import json

    from pipeline.cpu_backend.server import Reply, stream_events

    async def failing():
        raise RuntimeError("generation blew up")
        yield  # an async generator

    async def frames():
        return [frame async for frame in stream_events(Reply("chat", "m", 3), failing(), include_usage=True)]

    *events, done = asyncio.run(frames())
    assert done == "data: [DONE]\n\n"
    error = json.loads(events[-1].removeprefix("data: "))["error"]
    assert error["code"] == 500 and "generation blew up" in error["message"]
