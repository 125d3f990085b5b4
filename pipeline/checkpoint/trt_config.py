"""The config.json of a TensorRT-LLM unified checkpoint for Hunyuan MoE (PretrainedConfig + model extras).

RoPE: the NTK-alpha rule is folded into `rotary_base` (theta * alpha ** (d / (d - 2)), independent of the
sequence length), so `rotary_scaling` stays null; `rope_alpha` and `rope_theta` are kept for provenance.
Routing is softmax → top-k → renormalize (`normalization_mode` 1, RENORMALIZE); the shared expert is added
ungated. `qk_norm_after_rope` records Hunyuan's order (RoPE, then the per-head RMSNorm).
"""

from __future__ import annotations

from pipeline.checkpoint.layout import Layout
from pipeline.model import ModelSpec

RENORMALIZE = 1  # tensorrt_llm.layers.moe.MoeConfig.ExpertScaleNormalizationMode.RENORMALIZE
KV_CACHE_QUANT = {"fp8": "FP8", "bf16": None}  # profile kv dtype -> quantization.kv_cache_quant_algo
# TensorRT-LLM's own defaults for two fields Hunyuan never uses, written so that the blocks are complete:
# MoeConfig.sparse_mixer_epsilon (read only by SPARSE_MIXER routing), tensorrt_llm/layers/moe.py@c388fec:118;
SPARSE_MIXER_EPSILON = 0.01
# QuantConfig.smoothquant_val (read only by SmoothQuant quantization), the QuantConfig dataclass default.
SMOOTHQUANT_VAL = 0.5


def moe_block(spec: ModelSpec) -> dict:
    return {
        "num_experts": spec.num_experts, "shared_expert_intermediate_size": spec.shared_intermediate,
        "top_k": spec.top_k[0], "normalization_mode": RENORMALIZE, "sparse_mixer_epsilon": SPARSE_MIXER_EPSILON, "tp_mode": 0,
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
        "hidden_act": "silu",
        "intermediate_size": spec.expert_intermediate[0],
        "moe_intermediate_size": spec.expert_intermediate[0],
        "moe_shared_expert_intermediate_size": spec.shared_intermediate,
        "moe_topk": list(spec.top_k),
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
