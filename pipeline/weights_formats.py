"""The checkpoint weights formats a profile can name, one row each: which support-matrix row it is, how a model
directory says it is that format, and how many bytes its quantized linears take.

| name          | support-matrix row       | the directory says                        | made by                                   |
|---------------|--------------------------|-------------------------------------------|-------------------------------------------|
| bf16          | bf16                     | no quantization                           | download (tencent/Hunyuan-A13B-Instruct)  |
| fp8           | fp8-per-tensor-modelopt  | hf_quant_config.json quant_algo FP8       | quantize --format fp8 / --from-published  |
| int8-wo       | int8-weight-only         | hf_quant_config.json quant_algo W8A16     | quantize --format int8-wo                 |
| w4a8-awq      | w4a8-awq                 | hf_quant_config.json quant_algo W4A8_AWQ  | quantize --format w4a8-awq                |
| fp8-angelslim | fp8-per-tensor-angelslim | config.json quantization_config fp8       | Tencent's published FP8, as downloaded    |
| int4-gptq     | gptq                     | config.json quantization_config gptq      | Tencent's published GPTQ-Int4             |

Storage (bytes of one quantized linear of `rows` x `cols` = out x in features): `param` bytes per weight, plus
`per_row` bytes per output channel (per-channel scales), `per_tensor` bytes per linear (scalar scales) and
`per_group` bytes per `group` weights (group scales and zeros). The scale layouts follow the ModelOpt export
the quantize stage writes (FP8: fp32 `weight_scale` and `input_scale` scalars; W8A16: a bf16 `weight_scale`
per output channel; W4A8 AWQ: a bf16 scale per 128 weights plus fp32 scalars) and GPTQ's fp16 scale + 4-bit zero
per group of 128. Embeddings, norms and the router stay in the checkpoint's dtype (bf16) in every format
(`pipeline/memory_plan.py`). When `pipeline/quantize` can answer "bytes of this linear in this format" from its
own layout rules, `Storage.bytes` is the one function to replace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError

HF_QUANT_CONFIG = "hf_quant_config.json"


@dataclass(frozen=True)
class Storage:
    param: float
    per_row: float = 0.0
    per_tensor: float = 0.0
    group: int = 0
    per_group: float = 0.0

    def bytes(self, rows: int, cols: int) -> float:
        params = rows * cols
        return (params * self.param + rows * self.per_row + self.per_tensor
                + (params / self.group * self.per_group if self.group else 0.0))


@dataclass(frozen=True)
class Producer:
    """One way `hunyuan-trt quantize` makes a format: from a checkpoint in format `source`, with `args`."""

    source: str  # name of the input checkpoint's format
    args: tuple[str, ...]  # hunyuan-trt quantize flags (besides --model-dir/--out)
    needs_gpu: bool = False  # calibrates with ModelOpt: 80B parameters in GPU memory, no CPU or prep-Job work


@dataclass(frozen=True)
class WeightsFormat:
    name: str
    matrix_row: str  # row of pipeline/trtllm/support_matrix.json
    storage: Storage
    quant_algo: str | None = None  # hf_quant_config.json quantization.quant_algo (ModelOpt layout)
    quant_method: str | None = None  # config.json quantization_config.quant_method (published layouts)
    made_by: str = ""
    published_repo: str | None = None  # the Hugging Face repo Tencent publishes in this format
    produced_from: tuple[Producer, ...] = ()  # the quantize step from each source format it can be made from


FORMATS = {fmt.name: fmt for fmt in (
    WeightsFormat("bf16", "bf16", Storage(2.0), made_by="the BF16 checkpoint as downloaded",
                  published_repo="tencent/Hunyuan-A13B-Instruct"),
    WeightsFormat("fp8", "fp8-per-tensor-modelopt", Storage(1.0, per_tensor=8), quant_algo="FP8",
                  made_by="hunyuan-trt quantize --format fp8 (or --from-published)",
                  produced_from=(Producer("fp8-angelslim", ("--from-published",)),
                                 Producer("bf16", ("--format", "fp8", "--method", "modelopt"), needs_gpu=True))),
    WeightsFormat("int8-wo", "int8-weight-only", Storage(1.0, per_row=2), quant_algo="W8A16",
                  made_by="hunyuan-trt quantize --format int8-wo",
                  produced_from=(Producer("bf16", ("--format", "int8-wo", "--method", "stream")),)),
    WeightsFormat("w4a8-awq", "w4a8-awq", Storage(0.5, per_tensor=8, group=128, per_group=2), quant_algo="W4A8_AWQ",
                  made_by="hunyuan-trt quantize --format w4a8-awq"),
    WeightsFormat("fp8-angelslim", "fp8-per-tensor-angelslim", Storage(1.0, per_tensor=8), quant_method="fp8",
                  made_by="Tencent's published FP8 checkpoint (convert it with hunyuan-trt quantize --from-published)",
                  published_repo="tencent/Hunyuan-A13B-Instruct-FP8"),
    WeightsFormat("int4-gptq", "gptq", Storage(0.5, group=128, per_group=2.5), quant_method="gptq",
                  made_by="Tencent's published GPTQ-Int4 checkpoint",
                  published_repo="tencent/Hunyuan-A13B-Instruct-GPTQ-Int4"),
)}
BY_QUANT_ALGO = {fmt.quant_algo: fmt for fmt in FORMATS.values() if fmt.quant_algo}
BY_QUANT_METHOD = {fmt.quant_method: fmt for fmt in FORMATS.values() if fmt.quant_method}
BY_PUBLISHED_REPO = {fmt.published_repo: fmt for fmt in FORMATS.values() if fmt.published_repo}


def published_format(repo: str) -> WeightsFormat:
    """The format a repo is downloaded in: Tencent's published ones by name, any other repo taken as BF16."""
    return BY_PUBLISHED_REPO.get(repo, FORMATS["bf16"])


def producer(source: str, target: str) -> Producer | None:
    """The quantize step that turns a `source`-format checkpoint into `target` (None: served as downloaded)."""
    if source == target:
        return None
    made = {p.source: p for p in FORMATS[target].produced_from}
    if source not in made:
        inputs = [FORMATS[name].published_repo or f"a {name} checkpoint" for name in made]
        raise PipelineError(f"model_repo: {target} weights cannot be made from a {source} checkpoint; expected "
                            f"{' or '.join(inputs) or f'a {target} checkpoint'} ({FORMATS[target].made_by})")
    return made[source]


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: cannot read it ({error}); expected a JSON file") from None
    except ValueError as error:
        raise PipelineError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def detect_format(model_dir: Path) -> tuple[WeightsFormat, str]:
    """(format, the file and key that say so) of an HF model directory: ModelOpt's hf_quant_config.json wins, as
    in TensorRT-LLM's loader; then config.json quantization_config.quant_method; else bf16."""
    quant_file = Path(model_dir) / HF_QUANT_CONFIG
    if quant_file.is_file():
        quantization = _json(quant_file).get("quantization")
        algo = quantization.get("quant_algo") if isinstance(quantization, dict) else None
        if algo not in BY_QUANT_ALGO:
            raise PipelineError(f"{quant_file}: quantization.quant_algo is {algo!r}; expected one of "
                                f"{', '.join(BY_QUANT_ALGO)} (what hunyuan-trt quantize writes)")
        return BY_QUANT_ALGO[algo], f"{quant_file} quantization.quant_algo {algo}"
    config_file = Path(model_dir) / "config.json"
    quantization = _json(config_file).get("quantization_config") or {}
    method = quantization.get("quant_method") if isinstance(quantization, dict) else None
    if method is None:
        return FORMATS["bf16"], f"{config_file} (no quantization_config, no {HF_QUANT_CONFIG})"
    if method not in BY_QUANT_METHOD or (method == "fp8" and quantization.get("weight_block_size")):
        raise PipelineError(f"{config_file}: quantization_config.quant_method {method!r} is not a format any "
                            f"profile serves; expected bf16 weights, {', '.join(BY_QUANT_METHOD)}, or a "
                            f"{HF_QUANT_CONFIG} written by hunyuan-trt quantize")
    return BY_QUANT_METHOD[method], f"{config_file} quantization_config.quant_method {method}"
