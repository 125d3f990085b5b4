"""Requests whose raw output is plain text, so that every generated token is a visible one.

A Hunyuan answer carries markup (`<think>`, `<answer>`, `<tool_calls>`) that the adapter strips, spacing
that it holds back, and, under `ignore_eos`, tokens after `</answer>` that it drops. A benchmark that wants
the stream a client sees at the requested length, on every path alike, asks the model for text made only of
lowercase letters and digits: `logit_bias` +100 on the single-token ids of those characters leaves every
other token out of reach. No tag can start, no whitespace is held back, so direct and adapter stream the same
tokens, one per chunk. `logit_bias` is OpenAI's field; the CPU stand-in applies it.
"""

from __future__ import annotations

import string
from pathlib import Path

from pipeline.errors import PipelineError

PLAIN_CHARACTERS = string.ascii_lowercase + string.digits
BIAS = 100.0


def plain_text_bias(tokenizer_dir: Path) -> dict[str, float]:
    """logit_bias (token id as a string -> +100) for the one-token encodings of PLAIN_CHARACTERS."""
    from tokenizers import Tokenizer

    path = Path(tokenizer_dir) / "tokenizer.json"
    if not path.is_file():
        raise PipelineError(f"{path}: plain-text requests need the tokenizer.json of the served model")
    tokenizer = Tokenizer.from_file(str(path))
    bias = {}
    for character in PLAIN_CHARACTERS:
        ids = tokenizer.encode(character, add_special_tokens=False).ids
        if len(ids) != 1:
            raise PipelineError(f"{path}: {character!r} encodes to {len(ids)} tokens; plain-text requests need "
                                "one token per letter and digit")
        bias[str(ids[0])] = BIAS
    return bias
