"""Planner numbers for every profile against arithmetic written out by hand from the A13B config."""

import pytest

from pipeline.memory_plan import plan_profile

GIB = 1024**3
# A13B, from config.json: hidden 4096, 32 layers, 32 q / 8 kv heads x 128, 64 experts x 3072, shared 3072,
# vocab 128167 (tied), top-8.
LINEARS = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024) + 32 * 3 * 4096 * 3072 * (64 + 1)  # attn + experts + shared
HIGH_PRECISION = (128167 * 4096 + 32 * 2 * 4096 + 4096 + 32 * 2 * 128) * 2 + 32 * 64 * 4096 * 4  # + fp32 router
BYTES = {"bf16": 2, "fp8": 1, "int4-gptq": 0.5 + 2.5 / 128}

# profile: (GPUs, memory GiB/GPU, weights, KV bytes/elem, tp, moe_tp, KV fraction)
HAND = {
    "a100x2": (2, 80.0, "int4-gptq", 2, 2, 2, 0.9),
    "a100x4": (4, 80.0, "bf16", 2, 4, 1, 0.9),
    "h100x2": (2, 79.6, "fp8", 1, 2, 1, 0.9),
    "h100x4": (4, 79.6, "bf16", 1, 4, 1, 0.9),
    "h20x2": (2, 95.6, "bf16", 2, 2, 2, 0.6),
    "h200x1": (1, 140.4, "fp8", 1, 1, 1, 0.9),
    "h200x2": (2, 140.4, "bf16", 1, 2, 1, 0.9),
    "l40sx4": (4, 45.0, "fp8", 1, 4, 1, 0.9),
}


def by_hand(gpus, memory_gib, weights, kv_bytes, tp, moe_tp, fraction):
    weight_bytes = LINEARS / tp * BYTES[weights] + HIGH_PRECISION
    activations = 16384 * (10 * 4096 * 2 + 8 * 2 * (3072 / moe_tp) * 2 + 8 * 4096 * 2) + 128 * 128167 / tp * 4
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
    # FP8 on 2 GPUs: 79.86 B linears / 2 x 1 B = 37.19 GiB + 1.01 GiB embedding/router/norms.
    assert plan_profile("h100x2").weights_gib_per_gpu == pytest.approx(38.2, abs=0.01)
    # 2 (K,V) x 32 layers x 4 kv heads x 128 x 1 B (FP8) = 32 KiB per token per GPU.
    assert plan_profile("h100x2").kv_bytes_per_token_per_gpu == 32768
    # BF16 KV, 8 kv heads, one GPU would be 128 KiB/token: the published figure.
    assert plan_profile("h100x2", {"kv_cache_dtype": "bf16"}).kv_bytes_per_token_model == 131072


def test_bf16_on_two_a100_does_not_fit_and_names_the_shortfall():
    plan = plan_profile("a100x2", {"weights": "bf16"})
    assert not plan.fits
    # 79.86 B x 2 B / 2 GPUs = 74.38 GiB + 1.01 GiB high precision = 75.38 GiB before any KV or reserve.
    assert plan.weights_gib_per_gpu == pytest.approx(75.38, abs=0.01)
    assert "does not fit" in plan.verdict and "GiB more" in plan.verdict and "quantized checkpoint" in plan.verdict


def test_attention_dp_replicates_attention_and_kv():
    base = plan_profile("h200x2")
    adp = plan_profile("h200x2", {"enable_attention_dp": True})
    assert adp.kv_bytes_per_token_per_gpu == 2 * base.kv_bytes_per_token_per_gpu
    assert adp.weights_gib_per_gpu > base.weights_gib_per_gpu
