"""Tencent's published FP8 checkpoint (tencent/Hunyuan-A13B-Instruct-FP8, made with AngelSlim): the
`--from-published` relabelling into the layout the pinned loader reads, and a synthetic writer of that
published layout for tests and benchmarks (`make-tiny --published-fp8`).

What the relabelling assumes about the real file (docs/quantize.md says what could and could not be seen):
config.json carries `quantization_config: {quant_method: fp8, activation_scheme: static, ignored_layers}`
without `weight_block_size` (the pin's loader would then build the model unquantized, facts:
config_detection.quant_method_values.fp8); every linear has `weight` (F8_E4M3), `weight_scale` and
`input_scale` (per tensor, shape [1] as AngelSlim's QDQModule stores them) under its HF name, experts
per expert; router, embeddings and norms are high precision. Names already match what the loader reads, so no
weight bytes change: tensors are copied, scales widened to fp32 where they are not, and hf_quant_config.json
plus a ModelOpt-style quantization_config are written. Anything else in the file is refused by name.
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from pipeline.checkpoint.source import SourceCheckpoint
from pipeline.errors import PipelineError
from pipeline.model import ModelSpec, spec_from_config
from pipeline.quantize.emit import OutTensor, computed, copied, write_tensors
from pipeline.quantize.formats import FORMATS, FP8_MAX
from pipeline.quantize.layout import expected_names, high_precision_names, linears
from pipeline.quantize.roles import linear_of

QUANTIZER = "Tencent AngelSlim FP8 (published scales, relabelled without recalibration)"
CALIBRATION_PROMPTS = (8, 32)  # random sequences x tokens for the synthetic checkpoint's input scales
CALIBRATE_UP_TO = 256 * 2**20  # source bytes up to which the synthetic input scales are calibrated on CPU
FIXED_INPUT_AMAX = 16.0  # input range of every linear of a larger synthetic checkpoint


def published_block(config: dict, where: str) -> dict:
    block = config.get("quantization_config")
    if not isinstance(block, dict) or block.get("quant_method") != "fp8":
        raise PipelineError(f"{where}: expected Tencent's FP8 quantization_config with quant_method 'fp8', got "
                            f"{block!r}; --from-published takes tencent/Hunyuan-A13B-Instruct-FP8")
    if block.get("weight_block_size"):
        raise PipelineError(f"{where}: weight_block_size {block['weight_block_size']} is block-scaled FP8, which "
                            "the pin loads directly as FP8_BLOCK_SCALES; --from-published converts per-tensor FP8")
    if block.get("activation_scheme", "static") != "static":
        raise PipelineError(f"{where}: activation_scheme '{block['activation_scheme']}': the MoE loader needs "
                            "static input_scale tensors; expected 'static'")
    return block


def relabelled(source: SourceCheckpoint, spec: ModelSpec) -> list[OutTensor]:
    names = expected_names(spec, FORMATS["fp8"])
    missing = [name for name in names if name not in source.tensors]
    extra = sorted(set(source.tensors) - set(names))
    if missing:
        raise PipelineError(f"{source.model_dir}: '{missing[0]}' missing ({len(missing)} tensor(s)); expected every "
                            "linear with weight, weight_scale and input_scale")
    if extra:
        raise PipelineError(f"{source.where(extra[0])}: tensor '{extra[0]}' is not read by the pinned loader "
                            f"({len(extra)} such tensor(s)); this relabelling does not know what it means")
    tensors = []
    for name in names:
        info, linear = source.tensors[name], linear_of(name)
        if linear is not None and name.endswith(".weight") and info.dtype != "F8_E4M3":
            raise PipelineError(f"{source.where(name)}: '{name}' is {info.dtype}; expected F8_E4M3")
        scale = linear is not None and not name.endswith(".weight")
        tensors.append(copied(source, name, "F32" if scale else None))
    return tensors


def _fp8_weight(weight):
    """AngelSlim's per-tensor static FP8 of one weight: scale = amax / 448 (shape [1]), weight / scale in e4m3."""
    import torch

    w = weight.to(torch.bfloat16)
    scale = (w.abs().amax().float() / FP8_MAX).reshape(1)
    return (w / scale).to(torch.float8_e4m3fn), scale


def input_amax(config: dict, directory: Path, seed: int) -> dict[str, float]:
    """Each linear's largest input magnitude over random token sequences, from the emulated BF16 model;
    experts no token reached take their layer's largest."""
    import torch

    from pipeline.quantize.emulate import Emulator
    from pipeline.quantize.raw import load_tensors

    observer: dict[str, float] = {}
    emulator = Emulator(config, load_tensors(directory), None, observer)
    generator = torch.Generator().manual_seed(seed)
    count, length = CALIBRATION_PROMPTS
    with torch.no_grad():
        for _ in range(count):
            emulator.logits(torch.randint(0, emulator.spec.vocab_size, (length,), generator=generator))
    for linear in linears(emulator.spec):
        if linear.role.prefix not in observer:
            layer = f"model.layers.{linear.role.layer}.mlp.experts."
            observer[linear.role.prefix] = max(v for k, v in observer.items() if k.startswith(layer))
    return observer


def synthetic_input_amax(config: dict, source: SourceCheckpoint, seed: int) -> dict[str, float]:
    """Calibrated input ranges for a checkpoint small enough to run on CPU; a fixed range for larger ones
    (benchmarks at real widths need the layout and the bytes, not meaningful activation scales)."""
    if sum(info.nbytes for info in source.tensors.values()) > CALIBRATE_UP_TO:
        return defaultdict(lambda: FIXED_INPUT_AMAX)
    return input_amax(config, source.model_dir, seed)


def write_synthetic(config: dict, bf16_dir: Path, out: Path, seed: int) -> int:
    """Quantize the BF16 checkpoint in `bf16_dir` (written by make-tiny from `config`) into the published
    layout in `out` (an existing empty directory), one linear at a time; returns the number of tensors."""
    import torch

    from pipeline.quantize.raw import read_whole

    spec = spec_from_config(config)
    source = SourceCheckpoint(bf16_dir)
    amax = synthetic_input_amax(config, source, seed)

    @lru_cache(maxsize=1)  # a linear's weight and weight_scale are written one after the other
    def quantized(prefix: str):
        return _fp8_weight(read_whole(source.tensors[f"{prefix}.weight"]))

    result = [copied(source, name, "F32" if name.endswith("mlp.gate.wg.weight") else "BF16")
              for name in high_precision_names(spec)]
    for linear in linears(spec):
        prefix = linear.role.prefix
        result += [computed(f"{prefix}.weight", "F8_E4M3", linear.shape, lambda p=prefix: quantized(p)[0]),
                   computed(f"{prefix}.weight_scale", "F32", (1,), lambda p=prefix: quantized(p)[1]),
                   computed(f"{prefix}.input_scale", "F32", (1,),
                            lambda a=amax[prefix]: torch.tensor([a / FP8_MAX], dtype=torch.float32))]
    write_tensors(result, out, "published fp8")
    ignored = ["lm_head", *(f"model.layers.{layer}.mlp.gate.wg" for layer in range(spec.num_layers))]
    published = dict(config, torch_dtype="bfloat16", quantization_config={
        "quant_method": "fp8", "activation_scheme": "static", "ignored_layers": ignored})
    (out / "config.json").write_text(json.dumps(published, indent=2) + "\n")
    return len(result)
