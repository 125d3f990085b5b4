"""Memory planner: will this profile fit, and how much KV cache does it leave?

Per GPU of one replica:
  weights  = quantized linears (attention, shared and routed experts) at their format's bytes, scales
             included (`pipeline.weights_formats`), sharded over the ranks, + what stays bf16 (embedding/lm_head,
             replicated to be safe; router; norms);
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
from pipeline.weights_formats import FORMATS

GIB = 1024**3
RUNTIME_GIB = 2.0
CUDA_GRAPH_GIB = 0.5
ACTIVATION_BUFFERS = 10  # live hidden-state-sized bf16 buffers per token in one step (residual, norms, qkv, ...)
STORAGE_GB_S = 1.0  # conservative checkpoint read rate for the start-up estimate (network volume class)
ENGINE_INIT_S = 300  # autotuning + CUDA-graph capture + NCCL init, upper end of published anchors

KV_BYTES = {"bf16": 2, "fp8": 1}
# embedding (tied lm_head), norms and the router stay in the checkpoint dtype, bf16, in every weights format:
# TensorRT-LLM builds the Hunyuan router gate in config.torch_dtype (facts.json hunyuan_load_weights.router_dtype)
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
    weights_gib_per_gpu_by_format: dict
    model_weights_gib_by_format: dict  # the whole model on one device, for claims such as "24 GB is enough"
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


def _linears_per_gpu(spec: ModelSpec, profile: Profile) -> list[tuple[float, int, int]]:
    """(how many, rows, cols) of each quantized linear shape on one GPU: attention, shared expert, routed experts."""
    tp, pp = profile.tp_size, profile.pp_size
    attn_tp = 1 if profile.enable_attention_dp else tp
    h, d, layers = spec.hidden_size, spec.head_dim, spec.num_layers / pp
    q_out = spec.num_heads * d // attn_tp
    kv_out = _kv_heads_per_gpu(spec, profile) * d
    shared = spec.shared_intermediate // attn_tp
    local_experts = spec.num_experts / profile.moe_ep_size
    linears = [(layers, q_out, h), (2 * layers, kv_out, h), (layers, h, q_out),  # q, k and v, o
               (2 * layers, shared, h), (layers, h, shared)]  # shared expert: gate and up, down
    for width in spec.expert_intermediate:
        local = width // profile.moe_tp_size
        linears += [(2 * local_experts / pp, local, h), (local_experts / pp, h, local)]  # routed experts of a layer
    return linears


def _quantized_bytes_per_gpu(spec: ModelSpec, profile: Profile, weights: str) -> float:
    storage = FORMATS[weights].storage
    return sum(count * storage.bytes(rows, cols) for count, rows, cols in _linears_per_gpu(spec, profile))


def _high_precision_bytes_per_gpu(spec: ModelSpec, profile: Profile) -> float:
    """Embedding/lm_head and norms replicated on every GPU (conservative), the router split over pp."""
    counts = count_params(spec)
    return (counts.embedding + counts.lm_head + counts.norms + counts.qk_norms
            + counts.router / profile.pp_size) * HIGH_PRECISION_BYTES


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
    quantized = _quantized_bytes_per_gpu(spec, profile, profile.weights)
    high = _high_precision_bytes_per_gpu(spec, profile)
    weights = quantized + high
    by_format = {name: round((_quantized_bytes_per_gpu(spec, profile, name) + high) / GIB, 2) for name in FORMATS}
    whole = profile.model_copy(update=dict.fromkeys(("tp_size", "pp_size", "moe_tp_size", "moe_ep_size"), 1)
                               | {"enable_attention_dp": False})
    whole_high = _high_precision_bytes_per_gpu(spec, whole)
    model_by_format = {name: round((_quantized_bytes_per_gpu(spec, whole, name) + whole_high) / GIB, 2)
                       for name in FORMATS}
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
    param_bytes = FORMATS[profile.weights].storage.param
    checkpoint_gb = (count_params(spec).total * param_bytes) / 1e9
    active_bytes = active_params(spec) * param_bytes
    return Plan(
        profile=name,
        slug=profile.slug,
        accelerator=profile.accelerator,
        num_gpus=profile.num_gpus,
        memory_gib_per_gpu=gpu.memory_gib,
        weights_gib_per_gpu=round(weights / GIB, 2),
        weights_quantized_gib_per_gpu=round(quantized / GIB, 2),
        weights_high_precision_gib_per_gpu=round(high / GIB, 2),
        weights_gib_per_gpu_by_format=by_format,
        model_weights_gib_by_format=model_by_format,
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
        return ("use more GPUs (raise num_gpus and tp_size) or a quantized checkpoint (weights: fp8 on sm89/sm90, "
                "int8-wo on sm80 and later; hunyuan-trt quantize)")
    return "use more GPUs, fp8 KV cache where supported, a smaller max_seq_len, or lower max_num_tokens"
