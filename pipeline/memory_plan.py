"""Memory planner: will this profile fit, and how much KV cache does it leave?

Per GPU of one replica:
  weights  = quantized linears (attention, shared and routed experts) at the checkpoint's bytes/param,
             sharded over the ranks, + what stays high precision (embedding/lm_head bf16, replicated to be
             safe; router fp32; norms);
  reserve  = RUNTIME_GIB (CUDA context, cuBLAS/CUTLASS and NCCL workspaces) + CUDA_GRAPH_GIB (graph
             pools, GPU backends only) + activations for one step of max_num_tokens (hidden-state buffers,
             the MoE permute/fc workspace of top_k rows per token, fp32 logits of max_batch_size rows);
  kv       = kv_cache_free_gpu_memory_fraction × (memory − weights − reserve), as TensorRT-LLM sizes it
             from the memory left after loading and warm-up.
The verdict "fits" needs room for at least one sequence of max_seq_len tokens; otherwise the shortfall in
GiB is the memory one such sequence would still need.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.model import ModelSpec, active_params, count_params
from pipeline.profiles import Profile, load_profile

GIB = 1024**3
RUNTIME_GIB = 2.0
CUDA_GRAPH_GIB = 0.5
ACTIVATION_BUFFERS = 10  # live hidden-state-sized bf16 buffers per token in one step (residual, norms, qkv, ...)
STORAGE_GB_S = 1.0  # conservative checkpoint read rate for the start-up estimate (network volume class)
ENGINE_INIT_S = 300  # autotuning + CUDA-graph capture + NCCL init, upper end of published anchors

# bytes per parameter of the quantized linears; int4-gptq adds one fp16 scale + 4-bit zero per group of 128
WEIGHT_BYTES = {"bf16": 2.0, "fp8": 1.0, "int4-gptq": 0.5 + 2.5 / 128}
KV_BYTES = {"bf16": 2, "fp8": 1}
ROUTER_BYTES = 4
HIGH_PRECISION_BYTES = 2


@dataclass(frozen=True)
class Plan:
    profile: str
    slug: str
    accelerator: str
    num_gpus: int
    memory_gib_per_gpu: float
    weights_gib_per_gpu: float
    weights_quantized_gib_per_gpu: float
    weights_high_precision_gib_per_gpu: float
    reserve_gib_per_gpu: float
    activation_gib_per_gpu: float
    kv_budget_gib_per_gpu: float
    kv_bytes_per_token_per_gpu: int
    kv_bytes_per_token_model: int
    kv_token_capacity: int
    max_seq_len: int
    concurrent_max_len_sequences: float
    fits: bool
    verdict: str
    checkpoint_gb: float
    startup_estimate_s: int
    decode_ceiling_batch1_tok_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def _kv_heads_per_gpu(spec: ModelSpec, profile: Profile) -> int:
    if profile.enable_attention_dp:
        return spec.num_kv_heads
    return max(spec.num_kv_heads, profile.tp_size) // profile.tp_size  # duplicated when tp > kv heads


def _weight_bytes_per_gpu(spec: ModelSpec, profile: Profile) -> tuple[float, float]:
    """(quantized linears, high-precision remainder) in bytes on one GPU."""
    counts = count_params(spec)
    tp, pp = profile.tp_size, profile.pp_size
    attn_tp = 1 if profile.enable_attention_dp else tp
    h, d = spec.hidden_size, spec.head_dim
    q_and_o = 2 * h * spec.num_heads * d * spec.num_layers / attn_tp
    k_and_v = 2 * h * _kv_heads_per_gpu(spec, profile) * d * spec.num_layers
    shared = counts.shared_expert / attn_tp
    experts = counts.routed_experts / (profile.moe_tp_size * profile.moe_ep_size)
    quantized = (q_and_o + k_and_v + shared + experts) / pp * WEIGHT_BYTES[profile.weights]
    high = ((counts.embedding + counts.lm_head + counts.norms + counts.qk_norms) * HIGH_PRECISION_BYTES
            + counts.router / pp * ROUTER_BYTES)
    return quantized, high


def _activation_bytes(spec: ModelSpec, profile: Profile) -> float:
    top_k = max(spec.top_k)
    expert_width = max(spec.expert_intermediate) / profile.moe_tp_size
    per_token = (ACTIVATION_BUFFERS * spec.hidden_size * 2  # bf16 hidden-state buffers
                 + top_k * 2 * expert_width * 2  # fc (up+gate) output per routed copy
                 + top_k * spec.hidden_size * 2)  # unpermuted expert outputs before the weighted sum
    logits = profile.max_batch_size * spec.vocab_size / profile.tp_size * 4
    return profile.max_num_tokens * per_token + logits


def make_plan(name: str, profile: Profile, spec: ModelSpec) -> Plan:
    gpu = profile.gpu
    quantized, high = _weight_bytes_per_gpu(spec, profile)
    weights = quantized + high
    activations = _activation_bytes(spec, profile)
    is_gpu = profile.backend != "cpu"
    reserve = (RUNTIME_GIB + CUDA_GRAPH_GIB) * GIB * is_gpu + activations
    memory = gpu.memory_gib * GIB
    free_after = memory - weights - reserve
    kv_budget = max(0.0, free_after * profile.kv_cache_free_gpu_memory_fraction)
    kv_per_token_gpu = (2 * spec.num_layers // profile.pp_size * _kv_heads_per_gpu(spec, profile)
                        * spec.head_dim * KV_BYTES[profile.kv_dtype])
    kv_per_token_model = 2 * spec.num_layers * spec.num_kv_heads * spec.head_dim * KV_BYTES[profile.kv_dtype]
    dp_ranks = profile.tp_size if profile.enable_attention_dp else 1
    capacity = int(kv_budget // kv_per_token_gpu) * dp_ranks
    needed_for_one = profile.max_seq_len * kv_per_token_gpu / profile.kv_cache_free_gpu_memory_fraction
    fits = capacity >= profile.max_seq_len
    if fits:
        verdict = (f"fits: {capacity:,} KV tokens = {capacity / profile.max_seq_len:.1f} sequences of "
                   f"{profile.max_seq_len:,} tokens")
    else:
        shortfall = (weights + reserve + needed_for_one - memory) / GIB
        verdict = (f"does not fit: each {profile.accelerator} needs {shortfall:.1f} GiB more "
                   f"(weights {weights / GIB:.1f} GiB + reserve {reserve / GIB:.1f} GiB + one "
                   f"{profile.max_seq_len:,}-token sequence of KV {needed_for_one / GIB:.1f} GiB > "
                   f"{gpu.memory_gib:.1f} GiB); {_suggestion(profile)}")
    checkpoint_gb = (count_params(spec).total * WEIGHT_BYTES[profile.weights]) / 1e9
    active_bytes = active_params(spec) * WEIGHT_BYTES[profile.weights]
    return Plan(
        profile=name,
        slug=profile.slug,
        accelerator=profile.accelerator,
        num_gpus=profile.num_gpus,
        memory_gib_per_gpu=gpu.memory_gib,
        weights_gib_per_gpu=round(weights / GIB, 2),
        weights_quantized_gib_per_gpu=round(quantized / GIB, 2),
        weights_high_precision_gib_per_gpu=round(high / GIB, 2),
        reserve_gib_per_gpu=round(reserve / GIB, 2),
        activation_gib_per_gpu=round(activations / GIB, 2),
        kv_budget_gib_per_gpu=round(kv_budget / GIB, 2),
        kv_bytes_per_token_per_gpu=int(kv_per_token_gpu),
        kv_bytes_per_token_model=int(kv_per_token_model),
        kv_token_capacity=capacity,
        max_seq_len=profile.max_seq_len,
        concurrent_max_len_sequences=round(capacity / profile.max_seq_len, 1),
        fits=fits,
        verdict=verdict,
        checkpoint_gb=round(checkpoint_gb, 2),
        startup_estimate_s=int(checkpoint_gb / STORAGE_GB_S + ENGINE_INIT_S * is_gpu),
        decode_ceiling_batch1_tok_s=round(profile.num_gpus * gpu.bandwidth_tbs * 1e12 / active_bytes, 1),
    )


def plan_profile(profile_name: str, overrides: dict | None = None) -> Plan:
    """Load a profile (name or YAML path, flags overriding it) and plan it under its file's stem."""
    profile, spec = load_profile(profile_name, overrides)
    return make_plan(Path(profile_name).stem, profile, spec)


def _suggestion(profile: Profile) -> str:
    if profile.weights == "bf16":
        return "use more GPUs (raise num_gpus and tp_size) or a quantized checkpoint (weights: fp8 or int4-gptq)"
    return "use more GPUs, fp8 KV cache where supported, a smaller max_seq_len, or lower max_num_tokens"
