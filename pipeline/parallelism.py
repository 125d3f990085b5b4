"""The parallel layouts a model admits: the one rule set behind the profile checks (`pipeline.profiles`), the
converter's layout (`pipeline.checkpoint.layout`) and its tensor plan (`pipeline.checkpoint.tensor_plan`).

Each function returns the broken rules as messages (empty when the layout is fine); callers say whose layout it is.
"""

from __future__ import annotations

from pipeline.model import ModelSpec


def layout_problems(tp: int, moe_tp: int, moe_ep: int) -> list[str]:
    """Rules of the layout alone (TensorRT-LLM's Mapping)."""
    if moe_tp * moe_ep == tp:
        return []
    return [f"moe_tp_size * moe_ep_size must equal tp_size (MoE is split over the attention ranks); got "
            f"moe_tp_size={moe_tp}, moe_ep_size={moe_ep}, tp_size={tp}"]


def model_problems(spec: ModelSpec, tp: int, moe_tp: int, moe_ep: int, pp: int = 1) -> list[str]:
    """Divisibility rules that the shard rules rely on:

    - num_attention_heads divisible by tp (each rank holds whole query heads);
    - num_key_value_heads divisible by tp, or tp a multiple of it (kv heads are then duplicated);
    - num_experts divisible by moe_ep (each EP rank owns a contiguous block of experts);
    - expert width divisible by moe_tp, shared-expert width by tp;
    - num_hidden_layers divisible by pp.
    """
    rules = [
        (spec.num_heads % tp == 0, f"num_attention_heads={spec.num_heads} is not divisible by tp_size={tp}"),
        (spec.num_kv_heads % tp == 0 or tp % spec.num_kv_heads == 0,
         f"num_key_value_heads={spec.num_kv_heads} and tp_size={tp}: one must divide the other "
         "(kv heads are split, or duplicated when tp exceeds them)"),
        (spec.num_experts % moe_ep == 0,
         f"num_experts={spec.num_experts} is not divisible by moe_ep_size={moe_ep} "
         "(each EP rank owns a contiguous block of experts)"),
        (all(width % moe_tp == 0 for width in spec.expert_intermediate),
         f"expert width {spec.expert_intermediate[0]} is not divisible by moe_tp_size={moe_tp}"),
        (spec.shared_intermediate % tp == 0,
         f"shared-expert width {spec.shared_intermediate} is not divisible by tp_size={tp}"),
        (spec.num_layers % pp == 0, f"num_hidden_layers={spec.num_layers} is not divisible by pp_size={pp}"),
    ]
    return [message for holds, message in rules if not holds]
