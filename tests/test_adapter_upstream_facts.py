"""What the adapter sends and what the CPU stand-in accepts, against trtllm-serve's facts (upstream_facts.json)."""

from __future__ import annotations

import json

import pytest

from pipeline.adapter import tools
from pipeline.cpu_backend.protocol import ChatRequest, RequestError, parse_body

FACTS = json.loads(tools.FACTS.read_text())


def test_the_adapter_sends_a_tool_choice_trtllm_serve_accepts():
    assert tools.SENT_TOOL_CHOICE in FACTS["chat"]["tool_choice_values"]
    assert "required" not in FACTS["chat"]["tool_choice_values"]  # hence the adapter's own enforcement


def test_a_tool_choice_trtllm_serve_refuses_stops_the_adapter(monkeypatch):
    monkeypatch.setattr(tools, "upstream_chat_facts", lambda: {"tool_choice_values": ["none"]})
    with pytest.raises(RuntimeError, match="tool_choice"):
        tools.check_against_upstream()


def _chat(**fields) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}).encode()


@pytest.mark.parametrize("value", FACTS["chat"]["tool_choice_values"])
def test_the_stand_in_accepts_trtllm_serves_tool_choices(value):
    assert parse_body(_chat(tool_choice=value), ChatRequest).tool_choice == value


def test_the_stand_in_refuses_required_as_trtllm_serve_does():
    with pytest.raises(RequestError, match="tool_choice"):
        parse_body(_chat(tool_choice="required"), ChatRequest)


def test_the_stand_in_keeps_trtllm_serves_logprobs_rules():
    assert FACTS["chat"]["top_logprobs_needs_logprobs"]
    with pytest.raises(RequestError, match="logprobs must be true"):
        parse_body(_chat(top_logprobs=2), ChatRequest)
    assert parse_body(_chat(logprobs=True, top_logprobs=2), ChatRequest).logprob_count() == 2
