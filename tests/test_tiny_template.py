"""hunyuan-tiny chat template: Hunyuan's turn markers, both thinking modes, tools in the prompt."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from pipeline.model import TINY_MODEL_DIR
from pipeline.tiny.tasks import TOOLS, tool_schema
from pipeline.tiny.tokenizer import TEMPLATE_FILE

FAST_PREFILL = "<think>\n\n</think>\n"
USER = [{"role": "user", "content": "What is 2+3?"}]


@pytest.fixture(scope="module")
def render():
    tokenizer = AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))

    def apply(messages, **kwargs):
        return tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)

    return apply


def test_shipped_template_is_the_source():
    assert (TINY_MODEL_DIR / "chat_template.jinja").read_text() == TEMPLATE_FILE.read_text()


def test_slow_mode_is_the_default(render):
    assert render(USER) == "<|startoftext|>What is 2+3?<|extra_0|>"
    assert render(USER, enable_thinking=True) == render(USER)


def test_fast_mode_prefills_the_empty_think_block(render):
    assert render(USER, enable_thinking=False) == "<|startoftext|>What is 2+3?<|extra_0|>" + FAST_PREFILL


def test_no_think_prefix_selects_fast_mode(render):
    prompt = render([{"role": "user", "content": "/no_think What is 2+3?"}])
    assert prompt == "<|startoftext|>/no_think What is 2+3?<|extra_0|>" + FAST_PREFILL


def test_think_prefix_overrides_the_kwarg(render):
    prompt = render([{"role": "user", "content": "/think What is 2+3?"}], enable_thinking=False)
    assert not prompt.endswith(FAST_PREFILL)


def test_system_turn_then_user_without_a_second_bos(render):
    messages = [{"role": "system", "content": "Be terse."}] + USER
    assert render(messages) == "<|startoftext|>Be terse.<|extra_4|>What is 2+3?<|extra_0|>"


def test_tools_are_listed_in_the_system_block(render):
    tools = [tool_schema(TOOLS[0]), tool_schema(TOOLS[2])]
    prompt = render([{"role": "system", "content": "Be terse."}] + USER, tools=tools)
    assert prompt.startswith("<|startoftext|>Be terse.\n\nTools:\n- get_weather(city)\n- search_web(query)<|extra_4|>")


def test_history_with_tool_call_and_response(render):
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    messages = [{"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "content": "sunny"},
                {"role": "assistant", "content": "<answer>\nsunny\n</answer>"},
                {"role": "user", "content": [{"type": "text", "text": "Thanks"}]}]
    assert render(messages, enable_thinking=False) == (
        '<|startoftext|>Weather in Oslo?<|extra_0|><tool_calls>[{"name": "get_weather", "arguments": '
        '{"city": "Oslo"}}]</tool_calls><|eos|><tool_response>sunny</tool_response><|extra_0|>'
        "<answer>\nsunny\n</answer><|eos|><|startoftext|>Thanks<|extra_0|>" + FAST_PREFILL)
