"""The config.json of a TensorRT-LLM unified checkpoint for Hunyuan MoE (PretrainedConfig + model extras).

RoPE: the NTK-alpha rule is folded into `rotary_base` (theta * alpha ** (d / (d - 2)), independent of the
sequence length), so `rotary_scaling` stays null; `rope_alpha` and `rope_theta` are kept for provenance.
Routing is softmax → top-k → renormalize (`normalization_mode` 1, RENORMALIZE); the shared expert is added
ungated. `qk_norm_after_rope` records Hunyuan's order (RoPE, then the per-head RMSNorm).

Two facts of pipeline/trtllm/facts.json decide what may be written: the engine's MoE reads the fused
[E, 2I, H] `fc` as gated only for a gated `hidden_act` (`engine_moe_hidden_act`: Hunyuan's SiLU-gated experts
are `swiglu`), and the format has one `top_k` and one expert width per model (`engine_moe_config_per_model`),
so a model whose layers differ is refused rather than written with layer 0's values.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pipeline.checkpoint.layout import Layout
from pipeline.errors import PipelineError
from pipeline.model import ModelSpec

RENORMALIZE = 1  # tensorrt_llm.layers.moe.MoeConfig.ExpertScaleNormalizationMode.RENORMALIZE
KV_CACHE_QUANT = {"fp8": "FP8", "bf16": None}  # profile kv dtype -> quantization.kv_cache_quant_algo
# TensorRT-LLM's own defaults for two fields Hunyuan never uses, written so that the blocks are complete:
# MoeConfig.sparse_mixer_epsilon (read only by SPARSE_MIXER routing), tensorrt_llm/layers/moe.py@c388fec:118;
SPARSE_MIXER_EPSILON = 0.01
# QuantConfig.smoothquant_val (read only by SmoothQuant quantization), the QuantConfig dataclass default.
SMOOTHQUANT_VAL = 0.5
HIDDEN_ACT = "swiglu"  # SiLU(gate) * up, the gated form of Hunyuan's `hidden_act: silu` experts
FACTS_PATH = Path(__file__).resolve().parent.parent / "trtllm" / "facts.json"


@cache
def _fact(name: str):
    return json.loads(FACTS_PATH.read_text())["facts"][name]["value"]


def gated_hidden_act() -> str:
    """HIDDEN_ACT, checked against the pinned fact of which activations the engine's MoE treats as gated."""
    if HIDDEN_ACT not in _fact("engine_moe_hidden_act")["gated"]:
        raise PipelineError(f"{FACTS_PATH}: engine_moe_hidden_act: '{HIDDEN_ACT}' is not a gated activation there")
    return HIDDEN_ACT


def uniform(values: tuple[int, ...], key: str) -> int:
    """The one value of a per-layer list; refused when layers differ (the format holds one per model)."""
    if len(set(values)) != 1:
        raise PipelineError(f"config.json: {key} differs between layers ({list(values)}); a TensorRT-LLM checkpoint "
                            f"holds one value per model (facts.json engine_moe_config_per_model), so layer 0's "
                            "would be used for every layer: not converted")
    return values[0]


def moe_block(spec: ModelSpec) -> dict:
    return {
        "num_experts": spec.num_experts, "shared_expert_intermediate_size": spec.shared_intermediate,
        "top_k": uniform(spec.top_k, "moe_topk"), "normalization_mode": RENORMALIZE, "sparse_mixer_epsilon": SPARSE_MIXER_EPSILON, "tp_mode": 0,
        "device_limited_n_group": 0, "device_limited_topk_group": 0, "device_limited_routed_scaling_factor": 1.0,
    }


def quantization_block(kv_dtype: str) -> dict:
    return {
        "quant_algo": None, "kv_cache_quant_algo": KV_CACHE_QUANT.get(kv_dtype), "group_size": 128,
        "smoothquant_val": SMOOTHQUANT_VAL, "clamp_val": None, "use_meta_recipe": False, "has_zero_point": False,
        "pre_quant_scale": False, "exclude_modules": None,
    }


def checkpoint_config(spec: ModelSpec, layout: Layout, kv_dtype: str = "bf16") -> dict:
    return {
        "architecture": spec.architecture,
        "dtype": spec.torch_dtype,
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.num_kv_heads,
        "head_size": spec.head_dim,
        "hidden_act": gated_hidden_act(),
        "intermediate_size": uniform(spec.expert_intermediate, "moe_intermediate_size"),
        "moe_intermediate_size": uniform(spec.expert_intermediate, "moe_intermediate_size"),
        "moe_shared_expert_intermediate_size": spec.shared_intermediate,
        "moe_topk": list(spec.top_k),  # uniform (checked in moe_block); read by pipeline/reference
        "norm_epsilon": spec.rms_norm_eps,
        "position_embedding_type": "rope_gpt_neox",
        "max_position_embeddings": spec.max_position_embeddings,
        "rotary_embedding_dim": spec.head_dim,
        "rotary_base": spec.rotary_base,
        "rotary_scaling": None,
        "rope_theta": spec.rope_theta,
        "rope_alpha": spec.rope_alpha,
        "qk_layernorm": spec.use_qk_norm,
        "qk_norm_after_rope": True,
        "logits_dtype": "float32",
        "use_parallel_embedding": False,
        "embedding_sharding_dim": 0,
        "tie_word_embeddings": spec.tie_word_embeddings,
        "mapping": layout.to_mapping(),
        "quantization": quantization_block(kv_dtype),
        "moe": moe_block(spec),
    }
