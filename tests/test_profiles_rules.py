"""Profile schema: every cross-field rule rejects with its reason; unknown keys get a did-you-mean."""

import json

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.model import A13B_CONFIG
from pipeline.profiles import load_profile, profile_names, resolve_raw

GPU_PROFILES = ["a100x2", "a100x4", "h100x2", "h100x4", "h20x2", "h200x1", "h200x2", "l40sx4"]


def write(directory, name, data):
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_required_profile_exists():
    assert set(GPU_PROFILES + ["cpu-tiny"]) <= set(profile_names())


@pytest.mark.parametrize("name", GPU_PROFILES)
def test_gpu_profiles_carry_the_required_keys(name):
    profile, _ = load_profile(name)
    assert profile.max_batch_size == 128 and profile.max_num_tokens == 16384
    assert profile.moe_tp_size * profile.moe_ep_size == profile.tp_size
    assert profile.backend == "pytorch" and profile.evidence
    assert profile.hardware_validated is False  # none has run on real hardware yet


@pytest.mark.parametrize("name", GPU_PROFILES + ["cpu-tiny"])
def test_profile_files_open_with_two_comment_lines(name, profiles_copy):
    lines = (profiles_copy / f"{name}.yaml").read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1].startswith("# ")


def test_extends_merges_parent_then_child(profiles_copy):
    raw = resolve_raw(profiles_copy / "h20x2.yaml")
    assert raw["kv_cache_free_gpu_memory_fraction"] == 0.6  # child wins
    assert raw["cuda_graph_batch_sizes"][-1] == 128  # inherited from base
    assert "extends" not in raw


def test_extends_chain_of_three(profiles_copy):
    write(profiles_copy, "mine", {"extends": "h100x2", "max_seq_len": 8192})
    profile, _ = load_profile("mine")
    assert profile.max_seq_len == 8192 and profile.weights == "fp8" and profile.backend == "pytorch"


def test_extends_cycle_is_reported(profiles_copy):
    write(profiles_copy, "a", {"extends": "b"})
    write(profiles_copy, "b", {"extends": "a"})
    with pytest.raises(PipelineError, match="cycle"):
        load_profile("a")


def test_unknown_key_suggests_the_right_one(profiles_copy):
    write(profiles_copy, "typo", {"extends": "h100x2", "max_batch_sise": 64})
    with pytest.raises(PipelineError, match="unknown key 'max_batch_sise' \\(did you mean 'max_batch_size'\\?\\)"):
        load_profile("typo")


def test_removed_tencent_keys_are_rejected(profiles_copy):
    write(profiles_copy, "old", {"extends": "h100x2", "use_cuda_graph": True})
    with pytest.raises(PipelineError, match="unknown key 'use_cuda_graph'"):
        load_profile("old")


RULES = [
    ({"tp_size": 4, "moe_ep_size": 4}, "tp_size \\* pp_size must equal num_gpus"),
    ({"moe_tp_size": 2, "moe_ep_size": 2}, "moe_tp_size \\* moe_ep_size must equal tp_size"),
    ({"model_cls_file": "m.py", "model_cls_name": "M"}, "model_cls_file/model_cls_name are for backend tensorrt"),
    ({"backend": "tensorrt", "model_cls_file": "m.py"}, "model_cls_file and model_cls_name go together"),
    ({"accelerator": "a100-sxm-80g", "weights": "bf16"}, "kv_cache_dtype=fp8 needs FP8"),
    ({"kv_cache_free_gpu_memory_fraction": 0}, "kv_cache_free_gpu_memory_fraction: Input should be greater than 0"),
    ({"kv_cache_free_gpu_memory_fraction": 1.5}, "less than or equal to 1"),
    ({"max_num_tokens": 64}, "max_num_tokens \\(64\\) must be >= max_batch_size \\(128\\)"),
    ({"num_gpus": 16, "tp_size": 16, "moe_ep_size": 16}, "exceeds 8 GPUs per node"),
    ({"backend": "cpu"}, "backend=cpu does not match accelerator"),
    ({"num_gpus": 1, "tp_size": 1, "moe_ep_size": 1, "enable_attention_dp": True}, "enable_attention_dp needs tp_size > 1"),
    ({"cuda_graph_batch_sizes": [1, 256]}, "cuda_graph_batch_sizes"),
    ({"accelerator": "h100-sxm-8g"}, "did you mean 'h100-sxm-80g'"),
    ({"tp_size": "two"}, "tp_size: Input should be a valid integer"),
]


@pytest.mark.parametrize("change, message", RULES)
def test_cross_field_rule_rejects_with_reason(profiles_copy, change, message):
    write(profiles_copy, "bad", {"extends": "h100x2", **change})
    with pytest.raises(PipelineError, match=message):
        load_profile("bad")


MODEL_RULES = [
    ({"num_gpus": 3, "tp_size": 3, "moe_ep_size": 1, "moe_tp_size": 3}, "num_attention_heads=32 is not divisible by tp_size=3"),
    ({"num_gpus": 8, "tp_size": 8, "moe_ep_size": 1, "moe_tp_size": 8, "accelerator": "h100-sxm-80g"}, None),
    ({"max_seq_len": 65536}, "exceeds the served max_position_embeddings=32768"),
    ({"max_seq_len": 65536, "max_position_embeddings": 65536}, None),
]


@pytest.mark.parametrize("change, message", MODEL_RULES)
def test_model_dependent_rules(profiles_copy, change, message):
    write(profiles_copy, "m", {"extends": "h100x2", **change})
    if message is None:
        load_profile("m")  # tp 8 = kv heads 8; a raised served context: allowed
    else:
        with pytest.raises(PipelineError, match=message):
            load_profile("m")


def test_experts_not_divisible_by_ep(profiles_copy, tmp_path):
    config = tmp_path / "config.json"
    data = json.loads(A13B_CONFIG.read_text()) | {"num_experts": 6, "moe_topk": [2] * 32}
    config.write_text(json.dumps(data))
    write(profiles_copy, "e", {"extends": "h100x4", "hf_config": str(config)})
    with pytest.raises(PipelineError, match="num_experts=6 is not divisible by moe_ep_size=4"):
        load_profile("e")


def test_kv_heads_duplication_is_allowed_when_tp_is_a_multiple(profiles_copy, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(json.loads(A13B_CONFIG.read_text()) | {"num_key_value_heads": 2}))
    write(profiles_copy, "dup", {"extends": "h100x4", "hf_config": str(config)})
    load_profile("dup")  # tp 4 > 2 kv heads: duplicated, allowed
    write(profiles_copy, "nodup", {"extends": "h100x4", "hf_config": str(config), "num_gpus": 3, "tp_size": 3,
                                   "moe_ep_size": 1, "moe_tp_size": 3})
    with pytest.raises(PipelineError):
        load_profile("nodup")
