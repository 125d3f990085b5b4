"""The checkpoint formats the quantize stage writes, one row each.

`quant_algo` is what hf_quant_config.json says and selects the tensor rules in the facts. `methods` lists how
a format can be produced, the first being the default: `modelopt` (NVIDIA ModelOpt calibrates and exports;
needs the model in memory) or `stream` (our per-tensor quantizer, bounded memory, possible only where every
scale follows from the weight itself). The verify thresholds were measured on hunyuan-tiny (docs/quantize.md:
`hunyuan-trt quantize` then `hunyuan-trt verify --quantized`) and leave headroom above the measurement:
`weight_error` bounds the relative RMS error of every dequantized weight against its source, `logit_tolerance`
the max |Δlogit| and `min_top1` the top-1 agreement against transformers' BF16 reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PipelineError, did_you_mean

FP8_MAX = 448.0  # largest float8_e4m3fn


@dataclass(frozen=True)
class QuantFormat:
    name: str
    quant_algo: str
    modelopt_config: str  # attribute of modelopt.torch.quantization
    methods: tuple[str, ...]
    weight_error: float
    logit_tolerance: float
    min_top1: float
    group_size: int | None = None
    about: str = ""
    unavailable: str = ""  # why this stage cannot write the format (it still checks and sizes its layout)


FORMATS = {
    "fp8": QuantFormat("fp8", "FP8", "FP8_DEFAULT_CFG", ("modelopt",), weight_error=0.06, logit_tolerance=4.0,
                       min_top1=0.99, about="FP8 weights and activations, per-tensor static scales (sm89/sm90)"),
    "int8-wo": QuantFormat("int8-wo", "W8A16", "INT8_WEIGHT_ONLY_CFG", ("stream", "modelopt"), weight_error=0.015,
                           logit_tolerance=2.0, min_top1=0.99,
                           about="INT8 weights with per-channel scales, BF16 activations (sm80 and later)"),
    "w4a8-awq": QuantFormat("w4a8-awq", "W4A8_AWQ", "W4A8_AWQ_BETA_CFG", (), weight_error=0.2,
                            logit_tolerance=2.0, min_top1=0.9, group_size=128,
                            about="INT4 AWQ weights (group 128), FP8 activations (sm89/sm90); not written yet",
                            unavailable="ModelOpt 0.47's export fails on transformers-5 fused experts ('Changing "
                                        "shape when setting amax'), and unfusing them makes it fold the shared "
                                        "expert's AWQ scale into post_attention_layernorm, which the router and routed "
                                        "experts also read; no shipped profile needs this format (docs/quantize.md)"),
}
BY_QUANT_ALGO = {fmt.quant_algo: fmt for fmt in FORMATS.values()}


def get_format(name: str) -> QuantFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise PipelineError(f"--format: unknown format '{name}'{did_you_mean(name, FORMATS)}; "
                            f"expected one of {', '.join(FORMATS)}") from None


def format_of_quant_algo(quant_algo: str, where: str) -> QuantFormat:
    try:
        return BY_QUANT_ALGO[quant_algo]
    except KeyError:
        raise PipelineError(f"{where}: quant_algo '{quant_algo}' is not one this pipeline writes or checks; "
                            f"expected one of {', '.join(BY_QUANT_ALGO)}") from None
