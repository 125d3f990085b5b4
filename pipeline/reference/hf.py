"""Reference logits from transformers' own HunYuanMoEV1ForCausalLM on the HF checkpoint (fp32, CPU)."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.errors import PipelineError


def load_reference(hf_dir: Path, dtype: torch.dtype = torch.float32, **load_kwargs):
    """The transformers model (fp32 unless `dtype`; `load_kwargs` go to from_pretrained). Its experts are sized
    from intermediate_size, so the two must agree."""
    from transformers import HunYuanMoEV1Config, HunYuanMoEV1ForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    config = HunYuanMoEV1Config.from_pretrained(hf_dir)
    raw_width = getattr(config, "moe_intermediate_size", None)
    widths = set(raw_width if isinstance(raw_width, list) else [raw_width or config.intermediate_size])
    if widths != {config.intermediate_size}:
        raise PipelineError(f"{hf_dir}/config.json: moe_intermediate_size {sorted(widths)} differs from "
                            f"intermediate_size {config.intermediate_size}; transformers' reference model cannot "
                            "represent that checkpoint")
    if not getattr(config, "head_dim", None):
        config.head_dim = getattr(config, "attention_head_dim", None) or config.hidden_size // config.num_attention_heads
    model, info = HunYuanMoEV1ForCausalLM.from_pretrained(hf_dir, config=config, dtype=dtype,
                                                          output_loading_info=True, **load_kwargs)
    if info["missing_keys"]:
        raise PipelineError(f"{hf_dir}: transformers found no weights for {sorted(info['missing_keys'])[:3]}")
    return model.eval()


def reference_logits(hf_dir: Path, input_ids: torch.Tensor, position_start: int = 0) -> torch.Tensor:
    model = load_reference(hf_dir)
    positions = torch.arange(position_start, position_start + input_ids.shape[-1]).expand_as(input_ids)
    with torch.no_grad():
        return model(input_ids=input_ids, position_ids=positions).logits.float()
