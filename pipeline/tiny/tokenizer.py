"""Byte-level tokenizer for hunyuan-tiny: Hunyuan's special tokens first, then one id per byte.

No merges, so any text (any language, any byte) encodes, and every character the model copies (digits,
tool arguments) is its own token. `<think>`, `<answer>`, `<tool_calls>` stay ordinary text, as in the real
Hunyuan tokenizer. tokenizer_config.json is written by hand so transformers 4.57.3 (TensorRT-LLM 1.2's pin)
and 5.x both load it: `PreTrainedTokenizerFast` + `additional_special_tokens`, no `extra_special_tokens`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

BOS, SEP, SYSTEM_END, EOS, PAD = "<|startoftext|>", "<|extra_0|>", "<|extra_4|>", "<|eos|>", "<|pad|>"
# Order sets the ids: bos 0, sep (end of user turn) 1, end of system turn 2, eos 3, pad 4.
SPECIAL_TOKENS = (BOS, SEP, SYSTEM_END, EOS, PAD)
TEMPLATE_FILE = Path(__file__).with_name("chat_template.jinja")
MAX_LENGTH = 1024


def special_ids() -> dict[str, int]:
    return {token: index for index, token in enumerate(SPECIAL_TOKENS)}


def byte_symbols() -> list[str]:
    """The ByteLevel pre-tokenizer's symbol for each byte 0..255, in byte order (GPT-2's printable mapping).

    `ByteLevel.alphabet()` returns the same symbols as an unordered set, whose order changes between runs.
    """
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), 256))
    symbols, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def build_tokenizer() -> Tokenizer:
    """The raw `tokenizers` object: 5 special tokens, then byte b as id 5 + b (261 ids)."""
    vocab = special_ids()
    for symbol in byte_symbols():
        vocab[symbol] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    return tokenizer


def tokenizer_config() -> dict:
    """tokenizer_config.json in the form both transformers 4.57 and 5.x accept."""
    added = {
        str(index): {"content": token, "lstrip": False, "normalized": False, "rstrip": False,
                     "single_word": False, "special": True}
        for index, token in enumerate(SPECIAL_TOKENS)
    }
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "additional_special_tokens": [BOS, SEP, SYSTEM_END, EOS],
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MAX_LENGTH,
        "model_input_names": ["input_ids", "attention_mask"],  # no token_type_ids: generate() in 4.57 rejects them
        "padding_side": "left",
    }


def write_tokenizer(out_dir: Path) -> None:
    """tokenizer.json, tokenizer_config.json, special_tokens_map.json and chat_template.jinja into out_dir."""
    out_dir = Path(out_dir)
    build_tokenizer().save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), indent=2) + "\n")
    special_map = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD,
                   "additional_special_tokens": [BOS, SEP, SYSTEM_END, EOS]}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    (out_dir / "chat_template.jinja").write_text(TEMPLATE_FILE.read_text())
