"""Decode roofline for a profile (formulas of the performance reference, §4b), per batch and context.

  W(B)  = (P_always + D(B) * P_expert) * b           weight bytes read per decode step
  D(B)  = E * (1 - (1 - k/E) ** B)                   distinct routed experts touched per layer
  KV(B) = B * ctx * kv_bytes_per_token               KV bytes read per step
  t_mem = (W(B) + KV(B)) / (N * BW);  t_cmp = B * 2 * P_active / (N * FLOPS)
  bound = B / max(t_mem, t_cmp)                      output tokens/s of the whole replica

P_always is everything but the routed experts (attention, shared expert, embeddings/lm_head, norms, router);
P_expert is one routed expert across all layers. The bound ignores communication and kernel efficiency, so a
real replica reaches a fraction of it; at B=1 it equals the planner's `decode_ceiling_batch1_tok_s`
up to the KV term.
"""

from __future__ import annotations

from pipeline.memory_plan import KV_BYTES
from pipeline.model import ModelSpec, active_params, count_params
from pipeline.profiles import Profile
from pipeline.weights_formats import FORMATS


def distinct_experts(spec: ModelSpec, batch: int) -> float:
    top_k = sum(spec.top_k) / len(spec.top_k)
    return spec.num_experts * (1 - (1 - top_k / spec.num_experts) ** batch)


def _flops(profile: Profile) -> float:
    gpu = profile.gpu
    tflops = gpu.fp8_tflops if profile.weights == "fp8" and gpu.has_fp8 else gpu.bf16_tflops
    return tflops * 1e12


def decode_bound_tok_s(profile: Profile, spec: ModelSpec, batch: int, context: int) -> float:
    """Upper bound on decode output tokens/s with `batch` sequences at `context` tokens each."""
    counts = count_params(spec)
    p_expert = counts.routed_experts / spec.num_experts
    p_always = counts.total - counts.routed_experts
    weight_bytes = (p_always + distinct_experts(spec, batch) * p_expert) * FORMATS[profile.weights].storage.param
    kv_per_token = 2 * spec.num_layers * spec.num_kv_heads * spec.head_dim * KV_BYTES[profile.kv_dtype]
    bandwidth = profile.num_gpus * profile.gpu.bandwidth_tbs * 1e12
    t_mem = (weight_bytes + batch * context * kv_per_token) / bandwidth
    t_cmp = batch * 2 * active_params(spec) / (profile.num_gpus * _flops(profile))
    return batch / max(t_mem, t_cmp)
