"""The pinned TensorRT-LLM loader facts for quantized checkpoints (pipeline/trtllm/quant_loader_facts.json)."""

from __future__ import annotations

import fnmatch
import json
from functools import cache
from pathlib import Path

FACTS_PATH = Path(__file__).resolve().parent.parent / "trtllm" / "quant_loader_facts.json"


@cache
def load_facts() -> dict:
    return json.loads(FACTS_PATH.read_text())


def tensor_rules(quant_algo: str) -> dict[str, dict]:
    """suffix ('weight', 'weight_scale', ...) -> {'dtype', 'shape'} for one quantized linear of this algo."""
    return load_facts()["formats"][quant_algo]["tensors"]


def module_name(kind: str, layer: int | None = None) -> str:
    """The TensorRT-LLM module name of `kind` (a key of exclusion.module_names) in `layer`."""
    return load_facts()["exclusion"]["module_names"][kind].format(layer=layer)


def excluded(name: str, patterns: list[str]) -> bool:
    """Whether the loader keeps module `name` unquantized: fnmatchcase against each exclude pattern."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def known_quant_algo(value: str) -> bool:
    return value in load_facts()["config_detection"]["quant_algo_enum"]["values"]
