"""Hunyuan MoE model knowledge in one place: config.json → typed ModelSpec, parameter accounting.

Reads the original A13B key style (`attention_head_dim`, per-layer lists, `rope_theta` + `rope_scaling`
with the NTK `alpha`, `torch_dtype`). Every assumption the rest of the pipeline relies on is a named check
in `_ASSUMPTIONS`; when one fails the message says what changed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import PipelineError

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


def _per_layer(config: dict, key: str, num_layers: int) -> tuple[int, ...]:
    value = config[key]
    values = tuple(value) if isinstance(value, list) else (value,) * num_layers
    if len(values) != num_layers:
        raise PipelineError(f"config.json: '{key}' has {len(values)} entries, expected num_hidden_layers={num_layers}")
    return tuple(int(v) for v in values)


def _rope_alpha(config: dict) -> float | None:
    scaling = config.get("rope_scaling") or {}
    return float(scaling["alpha"]) if "alpha" in scaling else None


# Named assumptions: (reason, predicate over the raw config). Each failure names what changed.
_ASSUMPTIONS = (
    ("cross-layer attention (use_cla) is not supported by TensorRT-LLM's Hunyuan model",
     lambda c: not c.get("use_cla", False)),
    ("multi-head latent attention (use_mla) is not part of Hunyuan-A13B",
     lambda c: not c.get("use_mla", False)),
    ("every layer must be MoE (moe_layer_num_skipped = 0); TensorRT-LLM's loader assumes it",
     lambda c: int(c.get("moe_layer_num_skipped", 0)) == 0),
    ("rope_scaling must be absent or the NTK-alpha form {type: dynamic, alpha, ...}; transformers 5's"
     " rope_parameters key is silently ignored by transformers 4.57.3 (TensorRT-LLM 1.2's pin)",
     lambda c: "rope_parameters" not in c and (not c.get("rope_scaling") or "alpha" in c["rope_scaling"])),
    ("num_experts must be one integer (a per-layer list is rejected by transformers)",
     lambda c: isinstance(c.get("num_experts"), int)),
)


def spec_from_config(config: dict, source: str = "config.json") -> ModelSpec:
    """Validate a raw Hunyuan config dict and return its ModelSpec."""
    architectures = config.get("architectures") or []
    if ARCHITECTURE not in architectures:
        raise PipelineError(f"{source}: architectures={architectures!r} is not supported; expected ['{ARCHITECTURE}']")
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise PipelineError(f"{source}: missing key(s) {', '.join(missing)}")
    for reason, holds in _ASSUMPTIONS:
        if not holds(config):
            raise PipelineError(f"{source}: model assumption changed: {reason}")
    layers = int(config["num_hidden_layers"])
    heads, kv_heads = int(config["num_attention_heads"]), int(config["num_key_value_heads"])
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("attention_head_dim") or config.get("head_dim") or hidden // heads)
    if heads % kv_heads:
        raise PipelineError(f"{source}: num_attention_heads={heads} is not a multiple of num_key_value_heads={kv_heads}")
    shared = _per_layer(config, "num_shared_expert", layers) if "num_shared_expert" in config else (1,) * layers
    if len(set(shared)) != 1:
        raise PipelineError(f"{source}: num_shared_expert must be the same in every layer, got {sorted(set(shared))}")
    top_k = _per_layer(config, "moe_topk", layers)
    if max(top_k) > int(config["num_experts"]):
        raise PipelineError(f"{source}: moe_topk {max(top_k)} exceeds num_experts={config['num_experts']}")
    return ModelSpec(
        architecture=ARCHITECTURE,
        vocab_size=int(config["vocab_size"]),
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        shared_intermediate=int(config["intermediate_size"]) * shared[0],
        expert_intermediate=_per_layer(config, "moe_intermediate_size", layers),
        num_experts=int(config["num_experts"]),
        top_k=top_k,
        num_shared_experts=shared[0],
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        rope_theta=float(config["rope_theta"]),
        rope_alpha=_rope_alpha(config),
        max_position_embeddings=int(config.get("max_position_embeddings", 32768)),
        rms_norm_eps=float(config["rms_norm_eps"]),
        torch_dtype=str(config.get("torch_dtype", "bfloat16")),
        use_qk_norm=bool(config.get("use_qk_norm", True)),
    )


def read_config(path: Path) -> dict:
    """Load a config.json (or the config.json inside a model directory) with clear errors."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
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
