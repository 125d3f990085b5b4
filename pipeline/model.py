"""Hunyuan MoE model knowledge in one place: config.json → typed ModelSpec, parameter accounting.

Reads the original A13B key style (`attention_head_dim`, per-layer lists, `rope_theta` + `rope_scaling`
with the NTK `alpha`, `torch_dtype`). Every assumption the rest of the pipeline relies on is a named check
in `_ASSUMPTIONS`; when one fails the message says what changed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.input_limits import brief, read_json

ARCHITECTURE = "HunYuanMoEV1ForCausalLM"
DATA_DIR = Path(__file__).parent / "data"
A13B_CONFIG = DATA_DIR / "hunyuan_a13b_config.json"
TINY_MODEL_DIR = DATA_DIR / "hunyuan-tiny"
# The model id clients send and servers report: the Hugging Face repo of the weights, whatever the checkpoint
# flavour (the profiles' served_model_name default, the CPU stand-in, the drills and the demo).
SERVED_MODEL_NAME = "tencent/Hunyuan-A13B-Instruct"

# Keys a Hunyuan MoE config.json must carry (the TRT-LLM PyTorch model reads several of them directly).
REQUIRED_KEYS = (
    "architectures", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "intermediate_size", "moe_intermediate_size", "num_experts", "moe_topk", "vocab_size",
    "rope_theta", "rms_norm_eps",
)
CONFIG_MAX_BYTES = 1024 * 1024  # A13B's config.json is 2 KiB

# Every number the pipeline reads from config.json, with the range it must lie in before anything is sized
# from it. The upper bounds are far above any Hunyuan model (A13B: hidden 4096, 32 layers, 64 experts,
# vocab 128167) and low enough that per-layer loops and parameter counts stay instant.
INT_RANGES = {
    "hidden_size": (1, 65536), "num_hidden_layers": (1, 512), "num_attention_heads": (1, 1024),
    "num_key_value_heads": (1, 1024), "attention_head_dim": (2, 1024), "head_dim": (2, 1024),
    "intermediate_size": (1, 1 << 20), "num_experts": (1, 1024), "vocab_size": (1, 1 << 22),
    "max_position_embeddings": (1, 1 << 24),
}
PER_LAYER_RANGES = {"moe_intermediate_size": (1, 1 << 20), "moe_topk": (1, 1024), "num_shared_expert": (1, 64)}
FLOAT_RANGES = {"rope_theta": (1.0, 1e12), "rms_norm_eps": (1e-12, 0.1)}
ROPE_ALPHA_RANGE = (1e-3, 1e9)
BOOL_KEYS = ("tie_word_embeddings", "use_qk_norm", "use_cla", "use_mla")
TORCH_DTYPES = ("bfloat16", "float16", "float32")


@dataclass(frozen=True)
class ModelSpec:
    """The numbers of a Hunyuan MoE model that every stage needs."""

    architecture: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    shared_intermediate: int  # width of the ungated shared MLP (intermediate_size * num_shared_expert)
    expert_intermediate: tuple[int, ...]  # per layer
    num_experts: int
    top_k: tuple[int, ...]  # per layer
    num_shared_experts: int
    tie_word_embeddings: bool
    rope_theta: float
    rope_alpha: float | None
    max_position_embeddings: int
    rms_norm_eps: float
    torch_dtype: str
    use_qk_norm: bool

    @property
    def rotary_base(self) -> float:
        """NTK-alpha rule: base = theta * alpha ** (d / (d - 2)); independent of sequence length."""
        if not self.rope_alpha:
            return self.rope_theta
        return self.rope_theta * self.rope_alpha ** (self.head_dim / (self.head_dim - 2))

    def to_dict(self) -> dict:
        return asdict(self) | {"rotary_base": self.rotary_base}


@dataclass(frozen=True)
class ParamCount:
    embedding: int  # counted once when tied
    lm_head: int  # 0 when tied
    attention: int  # q, k, v, o projections
    qk_norms: int  # per-head query/key RMSNorm weights
    router: int
    shared_expert: int
    routed_experts: int
    norms: int  # layer norms and the final norm

    @property
    def total(self) -> int:
        return (self.embedding + self.lm_head + self.attention + self.qk_norms + self.router
                + self.shared_expert + self.routed_experts + self.norms)


def _in_range(value, key: str, bounds: tuple, integer: bool, source: str):
    """`value` if it is an integer (or a finite number) within `bounds`, else one line naming the key."""
    low, high = bounds
    kind = "an integer" if integer else "a number"
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or (integer and not isinstance(value, int)) or not math.isfinite(value):
        raise PipelineError(f"{source}: {key}={brief(value)}: expected {kind} in [{low}, {high}]")
    if not low <= value <= high:
        raise PipelineError(f"{source}: {key}={brief(value)} is out of range: expected {kind} in [{low}, {high}]")
    return value


def _int(config: dict, key: str, source: str, default: int | None = None) -> int:
    return _in_range(config.get(key, default), key, INT_RANGES[key], True, source)


def _float(config: dict, key: str, source: str) -> float:
    return float(_in_range(config[key], key, FLOAT_RANGES[key], False, source))


def _per_layer(config: dict, key: str, num_layers: int, source: str = "config.json") -> tuple[int, ...]:
    value = config[key]
    values = tuple(value) if isinstance(value, list) else (value,) * num_layers
    if len(values) != num_layers:
        raise PipelineError(f"{source}: '{key}' has {len(values)} entries, expected num_hidden_layers={num_layers}")
    return tuple(_in_range(v, f"{key}[{i}]", PER_LAYER_RANGES[key], True, source) for i, v in enumerate(values))


def _rope_alpha(config: dict, source: str) -> float | None:
    scaling = config.get("rope_scaling") or {}
    return float(_in_range(scaling["alpha"], "rope_scaling.alpha", ROPE_ALPHA_RANGE, False, source)) \
        if "alpha" in scaling else None


def _check_kinds(config: dict, source: str) -> None:
    """The non-numeric keys: booleans, the dtype name, rope_scaling's shape."""
    for key in BOOL_KEYS:
        if key in config and not isinstance(config[key], bool):
            raise PipelineError(f"{source}: {key}={brief(config[key])}: expected true or false")
    dtype = config.get("torch_dtype", "bfloat16")
    if dtype not in TORCH_DTYPES:
        raise PipelineError(f"{source}: torch_dtype={brief(dtype)}: expected one of {', '.join(TORCH_DTYPES)}")
    if not isinstance(config.get("rope_scaling") or {}, dict):
        raise PipelineError(f"{source}: rope_scaling={brief(config['rope_scaling'])}: expected an object or null")


# Named assumptions: (reason, predicate over the raw config). Each failure names what changed.
_ASSUMPTIONS = (
    ("cross-layer attention (use_cla) is not supported by TensorRT-LLM's Hunyuan model",
     lambda c: not c.get("use_cla", False)),
    ("multi-head latent attention (use_mla) is not part of Hunyuan-A13B",
     lambda c: not c.get("use_mla", False)),
    ("every layer must be MoE (moe_layer_num_skipped = 0); TensorRT-LLM's loader assumes it",
     lambda c: c.get("moe_layer_num_skipped", 0) == 0),
    ("rope_scaling must be absent or the NTK-alpha form {type: dynamic, alpha, ...}; transformers 5's"
     " rope_parameters key is silently ignored by transformers 4.57.3 (TensorRT-LLM 1.2's pin)",
     lambda c: "rope_parameters" not in c and (not c.get("rope_scaling") or "alpha" in c["rope_scaling"])),
    ("num_experts must be one integer (a per-layer list is rejected by transformers)",
     lambda c: isinstance(c.get("num_experts"), int)),
)


def spec_from_config(config: dict, source: str = "config.json") -> ModelSpec:
    """Validate a raw Hunyuan config dict and return its ModelSpec."""
    architectures = config.get("architectures") or []
    if not isinstance(architectures, list) or ARCHITECTURE not in architectures:
        raise PipelineError(f"{source}: architectures={brief(architectures)} is not supported; "
                            f"expected ['{ARCHITECTURE}']")
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise PipelineError(f"{source}: missing key(s) {', '.join(missing)}")
    _check_kinds(config, source)
    for reason, holds in _ASSUMPTIONS:
        if not holds(config):
            raise PipelineError(f"{source}: model assumption changed: {reason}")
    layers = _int(config, "num_hidden_layers", source)
    heads, kv_heads = _int(config, "num_attention_heads", source), _int(config, "num_key_value_heads", source)
    hidden = _int(config, "hidden_size", source)
    head_dim_key = next((key for key in ("attention_head_dim", "head_dim") if config.get(key)), None)
    if head_dim_key is None and hidden % heads:
        raise PipelineError(f"{source}: hidden_size={hidden} is not a multiple of num_attention_heads={heads} "
                            "and no attention_head_dim is given")
    head_dim = _int(config, head_dim_key, source) if head_dim_key else hidden // heads
    if heads % kv_heads:
        raise PipelineError(f"{source}: num_attention_heads={heads} is not a multiple of num_key_value_heads={kv_heads}")
    experts = _int(config, "num_experts", source)
    shared = _per_layer(config, "num_shared_expert", layers, source) if "num_shared_expert" in config else (1,) * layers
    if len(set(shared)) != 1:
        raise PipelineError(f"{source}: num_shared_expert must be the same in every layer, got {sorted(set(shared))}")
    top_k = _per_layer(config, "moe_topk", layers, source)
    if max(top_k) > experts:
        raise PipelineError(f"{source}: moe_topk {max(top_k)} exceeds num_experts={experts}")
    return ModelSpec(
        architecture=ARCHITECTURE,
        vocab_size=_int(config, "vocab_size", source),
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        shared_intermediate=_int(config, "intermediate_size", source) * shared[0],
        expert_intermediate=_per_layer(config, "moe_intermediate_size", layers, source),
        num_experts=experts,
        top_k=top_k,
        num_shared_experts=shared[0],
        tie_word_embeddings=config.get("tie_word_embeddings", False),
        rope_theta=_float(config, "rope_theta", source),
        rope_alpha=_rope_alpha(config, source),
        max_position_embeddings=_int(config, "max_position_embeddings", source, 32768),
        rms_norm_eps=_float(config, "rms_norm_eps", source),
        torch_dtype=config.get("torch_dtype", "bfloat16"),
        use_qk_norm=config.get("use_qk_norm", True),
    )


def read_config(path: Path) -> dict:
    """Load a config.json (or the config.json inside a model directory) with clear errors."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    config = read_json(path, CONFIG_MAX_BYTES, "model config.json")
    if not isinstance(config, dict):
        raise PipelineError(f"{path}: expected a JSON object")
    return config


def load_spec(path: Path = A13B_CONFIG) -> ModelSpec:
    """ModelSpec of a config.json file or model directory (default: the shipped A13B config)."""
    return spec_from_config(read_config(path), source=str(path))


def count_params(spec: ModelSpec) -> ParamCount:
    """Exact parameter count, layer by layer (per-layer expert widths honoured)."""
    h, d = spec.hidden_size, spec.head_dim
    q_out, kv_out = spec.num_heads * d, spec.num_kv_heads * d
    attention_per_layer = h * q_out + 2 * h * kv_out + q_out * h  # q, k, v, o
    return ParamCount(
        embedding=spec.vocab_size * h,
        lm_head=0 if spec.tie_word_embeddings else spec.vocab_size * h,
        attention=attention_per_layer * spec.num_layers,
        qk_norms=2 * d * spec.num_layers,
        router=spec.num_experts * h * spec.num_layers,
        shared_expert=3 * h * spec.shared_intermediate * spec.num_layers,
        routed_experts=sum(3 * h * width * spec.num_experts for width in spec.expert_intermediate),
        norms=2 * h * spec.num_layers + h,
    )


def active_params(spec: ModelSpec) -> int:
    """Parameters touched per token: everything except the routed experts that were not chosen."""
    counts = count_params(spec)
    chosen = sum(3 * spec.hidden_size * width * k for width, k in zip(spec.expert_intermediate, spec.top_k, strict=True))
    return counts.total - counts.routed_experts + chosen
