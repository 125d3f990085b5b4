"""Model knowledge: the shipped A13B config parses, and parameter counts match the published totals."""

import copy
import json

import pytest

from pipeline.errors import PipelineError
from pipeline.model import A13B_CONFIG, active_params, count_params, load_spec, spec_from_config


@pytest.fixture
def a13b():
    return json.loads(A13B_CONFIG.read_text())


def test_a13b_totals_match_published_numbers():
    spec = load_spec()
    total, active = count_params(spec).total, active_params(spec)
    assert abs(total / 80.38e9 - 1) < 0.002, total
    assert abs(active / 12.74e9 - 1) < 0.002, active


def test_a13b_parts_by_hand():
    counts = count_params(load_spec())
    assert counts.embedding == 128167 * 4096
    assert counts.lm_head == 0  # tied
    assert counts.attention == 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024)
    assert counts.router == 32 * 64 * 4096
    assert counts.shared_expert == 32 * 3 * 4096 * 3072
    assert counts.routed_experts == 32 * 64 * 3 * 4096 * 3072
    assert counts.qk_norms == 32 * 2 * 128


def test_rotary_base_follows_alpha_rule():
    assert load_spec().rotary_base == pytest.approx(11158839.925, rel=1e-9)


def test_config_is_written_in_a13b_key_style(a13b):
    assert "rope_parameters" not in a13b and a13b["rope_scaling"]["alpha"] == 1000.0
    assert a13b["torch_dtype"] == "bfloat16"


def test_per_layer_top_k_and_untied_head(a13b):
    a13b["moe_topk"] = [2, 4] * 16
    a13b["tie_word_embeddings"] = False
    spec = spec_from_config(a13b)
    counts = count_params(spec)
    assert counts.lm_head == counts.embedding
    chosen = sum(3 * 4096 * 3072 * k for k in spec.top_k)
    assert active_params(spec) == counts.total - counts.routed_experts + chosen


@pytest.mark.parametrize("change, message", [
    ({"architectures": ["LlamaForCausalLM"]}, "not supported"),
    ({"use_cla": True}, "cross-layer attention"),
    ({"rope_parameters": {"rope_type": "dynamic"}}, "rope_parameters"),
    ({"num_experts": [64] * 32}, "one integer"),
    ({"moe_topk": [8] * 31}, "31 entries"),
    ({"num_key_value_heads": 5}, "not a multiple"),
    ({"moe_topk": [65] * 32}, "exceeds num_experts"),
])
def test_bad_configs_are_named(a13b, change, message):
    bad = copy.deepcopy(a13b) | change
    with pytest.raises(PipelineError, match=message):
        spec_from_config(bad)


def test_missing_key_is_named(a13b):
    del a13b["hidden_size"]
    with pytest.raises(PipelineError, match="missing key.*hidden_size"):
        spec_from_config(a13b)
