"""Planner numbers for every profile against arithmetic written out by hand from the A13B config."""

import pytest

from pipeline.memory_plan import plan_profile

GIB = 1024**3
# A13B, from config.json: hidden 4096, 32 layers, 32 q / 8 kv heads x 128, 64 experts x 3072, shared 3072,
# vocab 128167 (tied), top-8.
LINEARS = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024) + 32 * 3 * 4096 * 3072 * (64 + 1)  # attn + experts + shared
# embedding, norms, qk-norms and the router, all bf16
HIGH_PRECISION = (128167 * 4096 + 32 * 2 * 4096 + 4096 + 32 * 2 * 128 + 32 * 64 * 4096) * 2
BYTES = {"bf16": 2, "fp8": 1, "int8-wo": 1}


def scale_bytes(weights, tp, moe_tp, ep):
    """FP8: two fp32 scalars per linear; INT8 weight-only: a bf16 scale per output row; per GPU, 32 layers."""
    linears = 4 + 3 + 3 * 64 // ep  # q k v o, shared gate up down, local experts' gate up down
    rows = 4096 // tp + 2 * 1024 // tp + 4096 + 2 * 3072 // tp + 4096 + 64 // ep * (2 * 3072 // moe_tp + 4096)
    return 32 * {"bf16": 0, "fp8": 8 * linears, "int8-wo": 2 * rows}[weights]


# profile: (memory GiB/GPU, weights, KV bytes/elem, tp, moe_tp, KV fraction, max_num_tokens, max_batch_size)
HAND = {
    "a100x2": (80.0, "int8-wo", 2, 2, 2, 0.9, 16384, 128),
    "a100x4": (80.0, "bf16", 2, 4, 1, 0.9, 16384, 128),
    "h100x2": (79.6, "fp8", 1, 2, 1, 0.9, 16384, 128),
    "h100x4": (79.6, "bf16", 1, 4, 1, 0.9, 16384, 128),
    "h20x2": (95.6, "bf16", 2, 2, 2, 0.6, 16384, 128),
    "h200x1": (140.4, "fp8", 1, 1, 1, 0.9, 16384, 128),
    "h200x2": (140.4, "bf16", 1, 2, 1, 0.9, 16384, 128),
    "h200x2-256k": (140.4, "bf16", 1, 2, 1, 0.9, 16384, 128),
    "l40sx4": (45.0, "fp8", 1, 4, 1, 0.9, 16384, 128),
    "rtx4090x8": (23.99, "fp8", 1, 8, 1, 0.9, 8192, 64),
}


def by_hand(memory_gib, weights, kv_bytes, tp, moe_tp, fraction, max_tokens, max_batch):
    ep = tp // moe_tp
    weight_bytes = LINEARS / tp * BYTES[weights] + scale_bytes(weights, tp, moe_tp, ep) + HIGH_PRECISION
    activations = (max_tokens * (10 * 4096 * 2 + 8 * 2 * (3072 / moe_tp) * 2 + 8 * 4096 * 2)
                   + max_batch * 128167 / tp * 4)
    reserve = 2.5 * GIB + activations
    kv_per_token = 2 * 32 * (8 // tp) * 128 * kv_bytes
    capacity = int(fraction * (memory_gib * GIB - weight_bytes - reserve) // kv_per_token)
    return weight_bytes / GIB, kv_per_token, capacity


@pytest.mark.parametrize("name", sorted(HAND))
def test_plan_matches_hand_arithmetic(name):
    weights_gib, kv_per_token, capacity = by_hand(*HAND[name])
    plan = plan_profile(name)
    assert plan.weights_gib_per_gpu == pytest.approx(weights_gib, abs=0.01)
    assert plan.kv_bytes_per_token_per_gpu == kv_per_token
    assert plan.kv_token_capacity == pytest.approx(capacity, rel=1e-4)
    assert plan.fits


def test_spot_values():
    # FP8 on 2 GPUs: 79.86 B linears / 2 x 1 B = 37.19 GiB + 0.99 GiB embedding/router/norms.
    assert plan_profile("h100x2").weights_gib_per_gpu == pytest.approx(38.18, abs=0.01)
    # 2 (K,V) x 32 layers x 4 kv heads x 128 x 1 B (FP8) = 32 KiB per token per GPU.
    assert plan_profile("h100x2").kv_bytes_per_token_per_gpu == 32768
    # BF16 KV, 8 kv heads, one GPU would be 128 KiB/token: the published figure.
    assert plan_profile("h100x2", {"kv_cache_dtype": "bf16"}).kv_bytes_per_token_model == 131072
    # INT8 weight-only on 2 GPUs: the per-channel scales add ~0.03 GiB to FP8's bytes
    assert plan_profile("a100x2").weights_gib_per_gpu == pytest.approx(38.21, abs=0.01)


def test_bf16_on_two_a100_does_not_fit_and_names_the_shortfall():
    plan = plan_profile("a100x2", {"weights": "bf16"})
    assert not plan.fits
    # 79.86 B x 2 B / 2 GPUs = 74.38 GiB + 0.99 GiB high precision = 75.37 GiB before any KV or reserve.
    assert plan.weights_gib_per_gpu == pytest.approx(75.37, abs=0.01)
    assert "does not fit" in plan.verdict and "GiB more" in plan.verdict and "quantized checkpoint" in plan.verdict


def test_rtx4090_24gb_is_not_enough_for_the_full_model_in_bf16():
    """The seed article's "24 GB minimum (FP16)": the full model's BF16 weights are ~150 GiB, and even split over
    8 x 24 GB they leave no room for the runtime; FP8 fits with KV to spare."""
    fp8 = plan_profile("rtx4090x8")
    assert fp8.fits and fp8.memory_gib_per_gpu == 23.99
    assert fp8.model_weights_gib_by_format["bf16"] == pytest.approx(149.74, abs=0.01)
    assert fp8.weights_gib_per_gpu_by_format["bf16"] == pytest.approx(19.59, abs=0.01)
    assert fp8.weights_gib_per_gpu_by_format["fp8"] == fp8.weights_gib_per_gpu == pytest.approx(10.29, abs=0.01)
    bf16 = plan_profile("rtx4090x8", {"weights": "bf16"})
    assert not bf16.fits and "does not fit: each rtx4090-24g needs" in bf16.verdict


def test_256k_profile_counts_256k_sequences():
    plan = plan_profile("h200x2-256k")
    assert plan.max_seq_len == 262144 and plan.fits
    # 1,732,621 KV tokens (as h200x2) / 262,144
    assert plan.concurrent_max_len_sequences == pytest.approx(plan.kv_token_capacity / 262144, abs=0.05)
    assert plan.kv_token_capacity == plan_profile("h200x2").kv_token_capacity


def test_attention_dp_replicates_attention_and_kv():
    base = plan_profile("h200x2")
    adp = plan_profile("h200x2", {"enable_attention_dp": True})
    assert adp.kv_bytes_per_token_per_gpu == 2 * base.kv_bytes_per_token_per_gpu
    assert adp.weights_gib_per_gpu > base.weights_gib_per_gpu


@pytest.mark.parametrize("weights", ["fp8", "int8-wo"])
def test_planner_weights_match_the_layout_the_quantize_stage_writes(weights):
    """The planner's bytes-per-format table agrees with the quantize stage's own layout of the full A13B
    checkpoint (every tensor and scale it writes); the router's checkpoint dtype (fp32 there, bf16 on the GPU)
    is the only known difference, a few MB."""
    from pipeline.memory_plan import GIB
    from pipeline.model import load_spec
    from pipeline.quantize.formats import get_format
    from pipeline.quantize.sizes import layout_bytes

    planned = plan_profile("h200x1").model_weights_gib_by_format[weights]
    written = sum(layout_bytes(load_spec(), get_format(weights)).values()) / GIB
    assert planned == pytest.approx(written, rel=1e-3), (planned, written)
