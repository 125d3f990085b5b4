"""hunyuan-tiny's config.json: A13B key style, A13B architecture, loads in transformers' Hunyuan class."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from transformers import HunYuanMoEV1ForCausalLM

from pipeline.model import TINY_MODEL_DIR, load_spec
from pipeline.tiny.config import generation_config, tiny_model_config

A13B_ONLY_KEYS = ("rope_theta", "rope_scaling", "torch_dtype", "attention_head_dim", "moe_topk",
                  "num_shared_expert", "moe_intermediate_size", "use_mixed_mlp_moe", "use_qk_norm")


@pytest.fixture(scope="module")
def config():
    return json.loads((TINY_MODEL_DIR / "config.json").read_text())


@pytest.fixture(scope="module")
def model():
    return HunYuanMoEV1ForCausalLM.from_pretrained(str(TINY_MODEL_DIR), experts_implementation="eager").eval()


def test_shipped_files_are_the_writers_output(config):
    assert config == tiny_model_config()
    assert json.loads((TINY_MODEL_DIR / "generation_config.json").read_text()) == generation_config()


def test_a13b_key_style(config):
    for key in A13B_ONLY_KEYS:
        assert key in config, key
    assert "rope_parameters" not in config and "dtype" not in config
    assert config["rope_scaling"]["type"] == "dynamic" and config["rope_scaling"]["alpha"] > 1  # alpha-scaled base


def test_a13b_architecture_shrunk_for_tp2_ep2(config):
    spec = load_spec(TINY_MODEL_DIR)
    assert spec.num_experts >= 8 and spec.num_experts % 2 == 0
    assert spec.num_kv_heads == 2 and spec.num_heads > spec.num_kv_heads  # GQA
    assert spec.head_dim * spec.num_heads == spec.hidden_size
    assert spec.tie_word_embeddings and spec.num_shared_experts == 1 and spec.use_qk_norm
    assert set(spec.top_k) == {2} and spec.expert_intermediate == (spec.shared_intermediate,) * spec.num_layers
    assert config["norm_topk_prob"] is True


def test_loads_with_alpha_scaled_rotary_base_and_tied_embeddings(model, config):
    spec = load_spec(TINY_MODEL_DIR)
    dim = spec.head_dim
    expected = 1.0 / spec.rotary_base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    assert torch.allclose(model.model.rotary_emb.inv_freq, expected, rtol=1e-5)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert model.model.embed_tokens.weight.shape == (config["vocab_size"], config["hidden_size"])


def test_few_parameters_and_small_weights(model):
    assert sum(p.numel() for p in model.parameters()) < 3_000_000
    assert (TINY_MODEL_DIR / "model.safetensors").stat().st_size <= 10 * 1024 * 1024


def test_weights_use_hunyuan_tensor_names(config):
    with safe_open(str(TINY_MODEL_DIR / "model.safetensors"), "pt") as handle:
        names = set(handle.keys())
    assert "lm_head.weight" not in names  # tied, as in A13B
    last = config["num_experts"] - 1
    for layer in range(config["num_hidden_layers"]):
        prefix = f"model.layers.{layer}."
        for suffix in ("mlp.gate.wg.weight", "mlp.shared_mlp.up_proj.weight", f"mlp.experts.{last}.down_proj.weight",
                       "self_attn.query_layernorm.weight", "self_attn.key_layernorm.weight", "self_attn.k_proj.weight"):
            assert prefix + suffix in names
