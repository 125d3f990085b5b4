"""Every tensor name of an HF Hunyuan checkpoint → its role, as one table of anchored patterns.

A quantizable linear carries its HF module prefix (where its weight and scales live), the TensorRT-LLM module
that loads it (fused q/k/v and gate/up modules included, since exclusion is decided on those names) and the
weight group the planner divides differently (attention and shared expert over TP, routed experts over
TP×EP). Everything else stays high precision: embedding, norms, router, lm_head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.errors import PipelineError


@dataclass(frozen=True)
class Role:
    kind: str  # "linear", "router", "embedding", "lm_head", "norm"
    layer: int | None = None
    prefix: str = ""  # HF module prefix of a linear: "<prefix>.weight", "<prefix>.weight_scale", ...
    module: str = ""  # key of the facts' exclusion.module_names: the TensorRT-LLM module loading it
    group: str = ""  # "attention", "shared_expert", "routed_experts", or the high-precision kind
    expert: int | None = None
    projection: str = ""  # q/k/v/o, gate/up/down

    @property
    def quantized(self) -> bool:
        return self.kind == "linear"


_L = r"model\.layers\.(?P<layer>\d+)\."
# (pattern of the full tensor name, kind, TensorRT-LLM module key, weight group)
TABLE = (
    (r"model\.embed_tokens\.weight", "embedding", "", "embedding"),
    (r"lm_head\.weight", "lm_head", "lm_head", "lm_head"),
    (r"model\.norm\.weight", "norm", "", "norms"),
    (_L + r"(input_layernorm|post_attention_layernorm)\.weight", "norm", "", "norms"),
    (_L + r"self_attn\.(query|key)_layernorm\.weight", "norm", "", "norms"),
    (_L + r"mlp\.gate\.wg\.weight", "router", "router", "router"),
    (_L + r"(?P<prefix>self_attn\.(?P<projection>[qkv])_proj)\.weight", "linear", "attention_qkv", "attention"),
    (_L + r"(?P<prefix>self_attn\.(?P<projection>o)_proj)\.weight", "linear", "attention_out", "attention"),
    (_L + r"(?P<prefix>mlp\.shared_mlp\.(?P<projection>gate|up)_proj)\.weight", "linear", "shared_gate_up",
     "shared_expert"),
    (_L + r"(?P<prefix>mlp\.shared_mlp\.(?P<projection>down)_proj)\.weight", "linear", "shared_down", "shared_expert"),
    (_L + r"(?P<prefix>mlp\.experts\.(?P<expert>\d+)\.(?P<projection>gate|up|down)_proj)\.weight", "linear",
     "experts", "routed_experts"),
)
COMPILED = tuple((re.compile(pattern), kind, module, group) for pattern, kind, module, group in TABLE)


def role_of(name: str) -> Role:
    """The role of HF tensor `name`; unknown names are bad input."""
    for pattern, kind, module, group in COMPILED:
        match = pattern.fullmatch(name)
        if match:
            fields = match.groupdict()
            layer = int(fields["layer"]) if fields.get("layer") else None
            prefix = f"model.layers.{layer}.{fields['prefix']}" if fields.get("prefix") else ""
            expert = int(fields["expert"]) if fields.get("expert") else None
            return Role(kind, layer, prefix, module, group, expert, fields.get("projection") or "")
    raise PipelineError(f"tensor '{name}': not a Hunyuan-A13B tensor name (expected embeddings, norms, "
                        "attention q/k/v/o_proj, mlp.gate.wg, shared_mlp or experts.E gate/up/down_proj)")


def linear_of(name: str) -> Role | None:
    """The linear whose tensor `name` is (its weight or one of its scales), or None."""
    prefix = name.rpartition(".")[0]
    if not prefix:
        return None
    candidate = f"{prefix}.weight"
    try:
        role = role_of(candidate)
    except PipelineError:
        return None
    return role if role.quantized else None
