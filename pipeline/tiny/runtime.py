"""Shared helpers for training and evaluating hunyuan-tiny on CPU: loading, prompt rendering, encoding."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from pipeline.tiny.tasks import Example
from pipeline.tiny.tokenizer import EOS

# transformers' default fused-experts kernels are 10-100x slower on CPU than the plain per-expert loop.
EXPERTS_IMPLEMENTATION = "eager"
# One intra-op thread: on the shared 2-core machines two threads spin-wait for each other and ran 2-4x slower
# than one; a fixed count also keeps training bit-for-bit reproducible (reduction order depends on it).
CPU_THREADS = 1


def use_cpu_threads() -> None:
    torch.set_num_threads(CPU_THREADS)


def load_tokenizer(model_dir: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(str(model_dir))


def new_model(model_dir: Path, seed: int) -> torch.nn.Module:
    """A freshly initialised model from the config.json in model_dir (A13B key style)."""
    config = AutoConfig.from_pretrained(str(model_dir))
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, experts_implementation=EXPERTS_IMPLEMENTATION)


def load_model(model_dir: Path) -> torch.nn.Module:
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), experts_implementation=EXPERTS_IMPLEMENTATION)
    return model.eval()


def render_prompt(tokenizer: PreTrainedTokenizerBase, example: Example) -> str:
    """The prompt text exactly as a server would render it from the request."""
    return tokenizer.apply_chat_template(example.messages, tools=example.tools, tokenize=False,
                                         **example.template_kwargs)


def encode_for_training(tokenizer: PreTrainedTokenizerBase, example: Example) -> tuple[list[int], list[int]]:
    """(input ids, labels): the loss covers the response and its closing <|eos|>, not the prompt."""
    prompt = tokenizer.encode(render_prompt(tokenizer, example), add_special_tokens=False)
    response = tokenizer.encode(example.response + EOS, add_special_tokens=False)
    return prompt + response, [-100] * len(prompt) + response
