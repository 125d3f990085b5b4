"""The check of a quantized checkpoint's layout against the pinned loader facts.

Tensors: every quantizable linear the config implies has each tensor its format's loader reads (facts:
formats.<quant_algo>.tensors) with that dtype and shape; embeddings, norms, router and an untied lm_head are
present in high precision with no scales; nothing else is there. Exclusions: the router and lm_head modules
match an `exclude_modules` pattern the way the loader matches (fnmatchcase on TensorRT-LLM module names), and
no quantized module does. Config: A13B key style and the same quant_algo as hf_quant_config.json. With the
BF16 source, every source tensor is accounted for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.checkpoint.source import SourceCheckpoint
from pipeline.checkpoint.st_format import TensorInfo
from pipeline.errors import PipelineError
from pipeline.input_limits import read_json
from pipeline.model import CONFIG_MAX_BYTES, ModelSpec, read_config, spec_from_config
from pipeline.quantize import facts
from pipeline.quantize.formats import QuantFormat, format_of_quant_algo
from pipeline.quantize.metadata import HF_QUANT_CONFIG
from pipeline.quantize.roles import Role, role_of

HIGH_PRECISION = ("BF16", "F16", "F32")
FLOATS = ("BF16", "F16", "F32", "F8_E4M3")
SHAPES = {  # facts' shape rule -> allowed shapes for a linear of [out, in]
    "source": lambda out, inp, group: [(out, inp)],
    "scalar": lambda out, inp, group: [(), (1,)],
    "out": lambda out, inp, group: [(out,)],
    "in": lambda out, inp, group: [(inp,)],
    "out,in/2": lambda out, inp, group: [(out, inp // 2)],
    "out,in/group": lambda out, inp, group: [(out, inp // (group or 1))],
}


@dataclass(frozen=True)
class Linear:
    role: Role
    shape: tuple[int, int]  # [out, in] of the unquantized weight


def linears(spec: ModelSpec) -> Iterator[Linear]:
    """Every quantizable linear of the model, with its unquantized shape."""
    h, d, s = spec.hidden_size, spec.head_dim, spec.shared_intermediate
    q, kv = spec.num_heads * d, spec.num_kv_heads * d
    for layer in range(spec.num_layers):
        p, inter = f"model.layers.{layer}", spec.expert_intermediate[layer]
        shapes = {"self_attn.q_proj": (q, h), "self_attn.k_proj": (kv, h), "self_attn.v_proj": (kv, h),
                  "self_attn.o_proj": (h, q), "mlp.shared_mlp.gate_proj": (s, h), "mlp.shared_mlp.up_proj": (s, h),
                  "mlp.shared_mlp.down_proj": (h, s)}
        shapes.update({f"mlp.experts.{e}.{name}": shape for e in range(spec.num_experts)
                       for name, shape in (("gate_proj", (inter, h)), ("up_proj", (inter, h)), ("down_proj", (h, inter)))})
        for name, shape in shapes.items():
            yield Linear(role_of(f"{p}.{name}.weight"), shape)


def high_precision_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """name -> shape of every tensor kept in high precision: embeddings, norms, router, an untied lm_head."""
    h, d = spec.hidden_size, spec.head_dim
    shapes = {"model.embed_tokens.weight": (spec.vocab_size, h), "model.norm.weight": (h,)}
    for layer in range(spec.num_layers):
        p = f"model.layers.{layer}"
        shapes.update({f"{p}.input_layernorm.weight": (h,), f"{p}.post_attention_layernorm.weight": (h,),
                       f"{p}.self_attn.query_layernorm.weight": (d,), f"{p}.self_attn.key_layernorm.weight": (d,),
                       f"{p}.mlp.gate.wg.weight": (spec.num_experts, h)})
    if not spec.tie_word_embeddings:
        shapes["lm_head.weight"] = (spec.vocab_size, h)
    return shapes


def high_precision_names(spec: ModelSpec) -> list[str]:
    return list(high_precision_shapes(spec))


def expected_names(spec: ModelSpec, fmt: QuantFormat) -> list[str]:
    """Every tensor name the loader reads for this model in this format."""
    suffixes = facts.tensor_rules(fmt.quant_algo)
    return high_precision_names(spec) + [f"{linear.role.prefix}.{suffix}" for linear in linears(spec)
                                         for suffix in suffixes]


def check_tensors(tensors: dict[str, TensorInfo], spec: ModelSpec, fmt: QuantFormat) -> list[str]:
    rules = facts.tensor_rules(fmt.quant_algo)
    problems = []
    for linear in linears(spec):
        out, inp = linear.shape
        for suffix, rule in rules.items():
            name = f"{linear.role.prefix}.{suffix}"
            info = tensors.get(name)
            if info is None:
                problems.append(f"{name}: missing ({fmt.quant_algo} linears need {', '.join(rules)})")
                continue
            dtypes = FLOATS if rule["dtype"] == "any" else (rule["dtype"],)
            shapes = SHAPES[rule["shape"]](out, inp, fmt.group_size)
            if info.dtype not in dtypes or info.shape not in shapes:
                problems.append(f"{name}: {info.dtype} {list(info.shape)}, expected {'/'.join(dtypes)} "
                                f"{' or '.join(str(list(s)) for s in shapes)}")
    for name, shape in high_precision_shapes(spec).items():
        info = tensors.get(name)
        if info is None:
            problems.append(f"{name}: missing")
        elif info.dtype not in HIGH_PRECISION or info.shape != shape:
            problems.append(f"{name}: {info.dtype} {list(info.shape)}, expected high precision "
                            f"({'/'.join(HIGH_PRECISION)}) {list(shape)}")
    problems += [f"{name}: unexpected tensor (not read by the loader for {fmt.quant_algo})"
                 for name in sorted(set(tensors) - set(expected_names(spec, fmt)))]
    return problems


def quantized_modules(spec: ModelSpec) -> set[str]:
    """TensorRT-LLM module names (fused modules with their source names) that hold quantized weights."""
    names = set()
    for linear in linears(spec):
        layer, role = linear.role.layer, linear.role
        names.add(facts.module_name(role.module, layer))
        if role.module != "experts":
            names.add(role.prefix)  # q_proj, gate_proj, ...: the loader also tests the fused module's sources
    return names


def check_exclusions(exclude, spec: ModelSpec) -> list[str]:
    if not isinstance(exclude, list) or not all(isinstance(p, str) for p in exclude):
        return [f"{HF_QUANT_CONFIG}: quantization.exclude_modules must be a list of patterns, got {exclude!r}"]
    must = [facts.module_name("lm_head")] + [facts.module_name("router", layer) for layer in range(spec.num_layers)]
    problems = [f"{HF_QUANT_CONFIG}: module '{name}' is not excluded, so the loader would build it quantized "
                "although its weight is high precision" for name in must if not facts.excluded(name, exclude)]
    problems += [f"{HF_QUANT_CONFIG}: quantized module '{name}' matches exclude_modules, so the loader would build "
                 "it unquantized" for name in sorted(quantized_modules(spec)) if facts.excluded(name, exclude)]
    return problems


def quant_format(directory: Path) -> tuple[QuantFormat, dict]:
    """The format hf_quant_config.json declares, and its `quantization` block."""
    path = Path(directory) / HF_QUANT_CONFIG
    document = read_json(path, CONFIG_MAX_BYTES, "ModelOpt quantization file (hf_quant_config.json)")
    block = document.get("quantization") if isinstance(document, dict) else None
    if not isinstance(block, dict) or not isinstance(block.get("quant_algo"), str):
        raise PipelineError(f"{path}: expected {{'quantization': {{'quant_algo': ..., 'exclude_modules': [...]}}}}")
    if not facts.known_quant_algo(block["quant_algo"]):
        raise PipelineError(f"{path}: quant_algo '{block['quant_algo']}' is not a QuantAlgo of TensorRT-LLM "
                            f"{facts.load_facts()['trtllm_version']}")
    return format_of_quant_algo(block["quant_algo"], str(path)), block


def check_config(config: dict, fmt: QuantFormat) -> list[str]:
    problems = [f"config.json: missing '{key}' (A13B key style)" for key in ("rope_theta", "torch_dtype")
                if key not in config]
    if "rope_parameters" in config:
        problems.append("config.json: has transformers-5 'rope_parameters'; transformers 4.57.3 ignores it")
    declared = (config.get("quantization_config") or {}).get("quant_algo")
    if declared != fmt.quant_algo:
        problems.append(f"config.json: quantization_config.quant_algo is {declared!r}, hf_quant_config.json says "
                        f"'{fmt.quant_algo}'")
    return problems


@dataclass
class LayoutReport:
    format: QuantFormat
    tensors: int
    problems: list[str]


def check_directory(directory: Path, hf_dir: Path | None = None) -> LayoutReport:
    """Everything above for one quantized checkpoint directory (and its BF16 source, when given)."""
    directory = Path(directory)
    fmt, block = quant_format(directory)
    config = read_config(directory / "config.json")
    spec = spec_from_config(config, source=str(directory / "config.json"))
    tensors = SourceCheckpoint(directory).tensors
    problems = check_config(config, fmt) + check_exclusions(block.get("exclude_modules"), spec)
    problems += check_tensors(tensors, spec, fmt)
    if hf_dir is not None:
        problems += source_accounting(SourceCheckpoint(hf_dir), spec)
    return LayoutReport(fmt, len(tensors), problems)


def source_accounting(source: SourceCheckpoint, spec: ModelSpec) -> list[str]:
    """Every source tensor has its counterpart (itself, or a linear's quantized weight), and vice versa."""
    covered = set(high_precision_names(spec)) | {f"{linear.role.prefix}.weight" for linear in linears(spec)}
    problems = [f"{source.where(name)}: source tensor '{name}' has no counterpart in the quantized checkpoint"
                for name in sorted(set(source.tensors) - covered)]
    return problems + [f"'{name}': in the quantized checkpoint but not in the source"
                       for name in sorted(covered - set(source.tensors))]
