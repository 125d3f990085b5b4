"""Weight bytes of a quantized checkpoint, scales included, per weight group: for the memory planner.

`layout_bytes` counts what the pinned loader reads for a model in a format (facts: formats.<algo>.tensors,
the shapes of pipeline.quantize.layout), before anything is quantized; `checkpoint_bytes` counts a written
checkpoint's safetensors headers. The groups are the roles' (attention, shared_expert, routed_experts,
embedding, lm_head, norms, router), because the planner divides them differently over TP and EP.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from pipeline.checkpoint.source import SourceCheckpoint
from pipeline.checkpoint.st_format import ITEMSIZE
from pipeline.model import ModelSpec
from pipeline.quantize import facts
from pipeline.quantize.formats import QuantFormat
from pipeline.quantize.layout import SHAPES, high_precision_shapes, linears
from pipeline.quantize.roles import linear_of, role_of

HIGH_PRECISION_DTYPE = {"router": "F32"}  # transformers keeps the router in fp32; everything else is bf16
SCALE_DTYPE = "F32"  # the dtype this stage writes where the facts allow any ("dtype": "any")


def layout_bytes(spec: ModelSpec, fmt: QuantFormat) -> dict[str, int]:
    """group -> bytes of the checkpoint this stage writes for `spec` in `fmt` (scales included)."""
    totals: Counter[str] = Counter()
    for name, shape in high_precision_shapes(spec).items():
        role = role_of(name)
        totals[role.group] += math.prod(shape) * ITEMSIZE[HIGH_PRECISION_DTYPE.get(role.kind, "BF16")]
    for linear in linears(spec):
        out, inp = linear.shape
        for rule in facts.tensor_rules(fmt.quant_algo).values():
            shape = SHAPES[rule["shape"]](out, inp, fmt.group_size)[0]
            dtype = SCALE_DTYPE if rule["dtype"] == "any" else rule["dtype"]
            totals[linear.role.group] += math.prod(shape) * ITEMSIZE[dtype]
    return dict(totals)


def checkpoint_bytes(directory: Path) -> dict[str, int]:
    """group -> bytes of the tensors of a written checkpoint (read from the safetensors headers)."""
    totals: Counter[str] = Counter()
    for name, info in SourceCheckpoint(directory).tensors.items():
        linear = linear_of(name)
        totals[(linear or role_of(name)).group] += info.nbytes
    return dict(totals)
