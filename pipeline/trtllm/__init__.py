"""TensorRT-LLM interface facts the pipeline emits against: the pinned version, the LLM-API argument
schema and the trtllm-serve / trtllm-build flag lists (schema.json), and builders for the YAML and argv.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SCHEMA_PATH = Path(__file__).with_name("schema.json")
FACTS_PATH = Path(__file__).with_name("facts.json")


@cache
def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


@cache
def load_facts() -> dict:
    """facts.json's facts by name (behaviour beyond the argument schema, each with its evidence)."""
    return json.loads(FACTS_PATH.read_text())["facts"]


def trtllm_version() -> str:
    """The TensorRT-LLM release the bundles, images and schema target."""
    return load_schema()["trtllm_version"]


def prometheus_metrics() -> list[str]:
    """The Prometheus series the pinned trtllm-serve exports (full names, with the pinned prefix)."""
    fact = load_facts()["prometheus_metrics"]
    return [fact["prefix"] + name for name in fact["value"]]
