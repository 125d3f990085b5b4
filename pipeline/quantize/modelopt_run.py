"""Calibrate and export with NVIDIA ModelOpt (`nvidia-modelopt`, the `[quantize]` extra), lazily imported.

The model is transformers' own HunYuanMoEV1ForCausalLM loaded in bf16 with `experts_implementation="eager"`
(ModelOpt then quantizes the fused 3-D experts; other implementations bypass its hooks, and a default-dtype
load leaves unquantized tensors in fp32), on the GPUs when there are any (device_map auto), else on CPU.
`mtq.quantize` runs the calibration prompts through it; `export_hf_checkpoint` writes per-expert
`experts.E.{gate,up,down}_proj.{weight,weight_scale,input_scale}` into a scratch directory, from which the
stage streams the final checkpoint (its config.json, rewritten in transformers-5 style, is not used).
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import torch

from pipeline.errors import PipelineError
from pipeline.quantize.formats import QuantFormat


def _modelopt():
    try:
        import modelopt.torch.quantization as mtq
        from modelopt.torch.export import export_hf_checkpoint
    except ImportError as error:
        raise PipelineError(f"nvidia-modelopt is not importable ({error}); install the quantize extra: "
                            "pip install -c constraints.txt -e '.[quantize]' (make setup does)") from None
    return mtq, export_hf_checkpoint


def modelopt_version() -> str:
    from importlib.metadata import version

    return f"nvidia-modelopt {version('nvidia-modelopt')}"


def _progress(done: int, total: int, tokens: int, start: float) -> None:
    rate = tokens / max(time.monotonic() - start, 1e-9)
    print(f"calibrate: {done}/{total} samples, {tokens} tokens, {rate:.0f} tokens/s", file=sys.stderr, flush=True)


def calibrate_and_export(model_dir: Path, fmt: QuantFormat, samples: list[list[int]], export_dir: Path) -> None:
    mtq, export_hf_checkpoint = _modelopt()
    from pipeline.reference.hf import load_reference

    device_map = "auto" if torch.cuda.is_available() else None
    model = load_reference(model_dir, torch.bfloat16, experts_implementation="eager", device_map=device_map)
    device = next(model.parameters()).device

    def forward_loop(module):
        start, tokens = time.monotonic(), 0
        with torch.no_grad():
            for done, ids in enumerate(samples, 1):
                module(input_ids=torch.tensor([ids], device=device))
                tokens += len(ids)
                _progress(done, len(samples), tokens, start)

    mtq.quantize(model, copy.deepcopy(getattr(mtq, fmt.modelopt_config)), forward_loop)
    export_hf_checkpoint(model, export_dir=export_dir)
