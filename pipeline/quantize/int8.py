"""INT8 weight-only, per output channel: our per-tensor quantizer, the same arithmetic as ModelOpt's export.

ModelOpt (INT8_WEIGHT_ONLY_CFG, export_hf_checkpoint) loads the weight in bf16, takes each row's absolute
maximum, stores `weight_scale = amax / 127` in fp32 and `weight = round(w / scale).clamp(-128, 127)` as int8
(modelopt/torch/export/quant_utils.py: get_scaling_factor, to_quantized_weight). Every scale follows from the
weight alone, so a checkpoint can be quantized one tensor at a time; tests compare the bytes with ModelOpt's.
"""

from __future__ import annotations

import torch

from pipeline.errors import PipelineError

INT8_MAX = 127.0


def quantize_int8_rows(name: str, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 weight [out, in], fp32 scale [out]) of one linear weight."""
    w = weight.to(torch.bfloat16)
    scale = w.abs().amax(dim=1).float() / INT8_MAX
    if not bool((scale > 0).all()):
        row = int((scale <= 0).nonzero()[0, 0])
        raise PipelineError(f"tensor '{name}': row {row} is all zeros; an INT8 per-channel scale needs a non-zero "
                            "row (ModelOpt refuses such a weight too)")
    return (w / scale[:, None]).round().clamp(-128, 127).to(torch.int8), scale
