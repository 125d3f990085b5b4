"""Which weights formats load for Hunyuan on the pinned TensorRT-LLM, per GPU architecture (support_matrix.json).

`lookup("fp8-per-tensor-modelopt", "sm90")` -> Cell(verdict="yes", ...). Each cell's evidence names the upstream
file and commit it rests on; `evidence_text` expands the short names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline.errors import PipelineError, did_you_mean

MATRIX_PATH = Path(__file__).with_name("support_matrix.json")
VERDICTS = ("yes", "no", "unknown")
BASES = ("documented", "code", "secondary", "none")


@dataclass(frozen=True)
class Cell:
    weights: str
    sm: str
    verdict: str
    basis: str
    moe_backends: tuple[str, ...]
    evidence: tuple[str, ...]
    note: str = ""

    @property
    def loads(self) -> bool:
        return self.verdict == "yes"


@cache
def load_matrix() -> dict:
    return json.loads(MATRIX_PATH.read_text())


def weights_formats() -> list[str]:
    return list(load_matrix()["formats"])


def architectures() -> list[str]:
    return list(load_matrix()["architectures"])


def lookup(weights: str, sm: str) -> Cell:
    """The matrix cell for a weights format on an architecture; PipelineError for names the matrix lacks."""
    formats = load_matrix()["formats"]
    if weights not in formats:
        raise PipelineError(f"weights: no support-matrix row '{weights}'{did_you_mean(weights, formats)}; "
                            f"expected one of {', '.join(formats)}")
    if sm not in architectures():
        raise PipelineError(f"sm: no support-matrix column '{sm}'; expected one of {', '.join(architectures())}")
    raw = formats[weights]["cells"][sm]
    return Cell(weights, sm, raw["verdict"], raw["basis"], tuple(raw["moe_backends"]), tuple(raw["evidence"]),
                raw.get("note", ""))


def evidence_text(name: str) -> str:
    return load_matrix()["evidence"][name]
