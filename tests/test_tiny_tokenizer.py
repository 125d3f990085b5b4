"""hunyuan-tiny tokenizer: Hunyuan's special tokens as single ids, ordinary tags, loadable by 4.57 and 5.x."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from pipeline.model import TINY_MODEL_DIR
from pipeline.tiny.tokenizer import SPECIAL_TOKENS, build_tokenizer, tokenizer_config


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))


@pytest.mark.parametrize("token", SPECIAL_TOKENS)
def test_special_tokens_are_single_ids(tokenizer, token):
    ids = tokenizer.encode(token, add_special_tokens=False)
    assert ids == [SPECIAL_TOKENS.index(token)]
    assert tokenizer.decode(ids, skip_special_tokens=True) == ""


def test_special_ids_match_config():
    config = json.loads((TINY_MODEL_DIR / "config.json").read_text())
    assert (config["bos_token_id"], config["sep_token_id"], config["eos_token_id"], config["pad_token_id"]) == (
        SPECIAL_TOKENS.index("<|startoftext|>"), SPECIAL_TOKENS.index("<|extra_0|>"),
        SPECIAL_TOKENS.index("<|eos|>"), SPECIAL_TOKENS.index("<|pad|>"))


@pytest.mark.parametrize("tag", ["<think>", "</think>", "<answer>", "</answer>", "<tool_calls>"])
def test_reasoning_tags_are_ordinary_text(tokenizer, tag):
    ids = tokenizer.encode(tag, add_special_tokens=False)
    assert len(ids) == len(tag.encode())
    assert tokenizer.decode(ids, skip_special_tokens=True) == tag


@pytest.mark.parametrize("text", ["héllo wörld 你好 🙂", "What is 37+58?\n", "  two  spaces\tand tab"])
def test_any_text_round_trips(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_vocabulary_fits_the_embedding(tokenizer):
    config = json.loads((TINY_MODEL_DIR / "config.json").read_text())
    assert len(tokenizer) <= config["vocab_size"]


def test_tokenizer_config_is_the_portable_form():
    shipped = json.loads((TINY_MODEL_DIR / "tokenizer_config.json").read_text())
    assert shipped == tokenizer_config()
    assert shipped["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "extra_special_tokens" not in shipped and "backend" not in shipped


def test_byte_ids_follow_byte_values(tokenizer):
    assert tokenizer.encode("A 1\n", add_special_tokens=False) == [5 + byte for byte in b"A 1\n"]
    assert tokenizer.encode("é", add_special_tokens=False) == [5 + byte for byte in "é".encode()]


def test_shipped_tokenizer_is_what_the_builder_writes():
    shipped = json.loads((TINY_MODEL_DIR / "tokenizer.json").read_text())
    assert shipped == json.loads(build_tokenizer().to_str())
