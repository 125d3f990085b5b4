"""hunyuan-tiny's config.json and generation_config.json, written in Hunyuan-A13B's own key style.

transformers 5's `save_pretrained` would write `rope_parameters`, which transformers 4.57.3 (TensorRT-LLM
1.2's pin) silently ignores, so the files are built here from one table. The shape follows A13B (GQA,
per-head QK-norm after RoPE, NTK-alpha rotary base, one ungated shared expert plus top-k renormalised routed
experts, tied embeddings), shrunk: 8 routed experts and 2 KV heads so tp=2 / ep=2 shards evenly.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.tiny.tokenizer import BOS, EOS, PAD, SEP, special_ids

# The shape of the tiny model; everything else in config.json follows A13B.
ARCH = {
    "vocab_size": 264,  # 261 tokenizer ids padded to a multiple of 8 (unused rows are never produced)
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,  # = hidden_size / num_attention_heads, as TensorRT-LLM assumes
    "intermediate_size": 128,  # shared expert width; also each routed expert's width
    "num_experts": 8,
    "moe_topk": 2,
    "max_position_embeddings": 1024,
    # A13B uses alpha 1000 with head_dim 128 (64 rotary frequencies). With head_dim 16 that leaves only two
    # frequencies fast enough to tell neighbouring tokens apart, and the model could not learn to copy digits
    # or names from the prompt; alpha 4 keeps the NTK-alpha rule (base = theta * alpha^(d/(d-2)) = 48,761)
    # with usable positions.
    "rope_alpha": 4.0,
}


def tiny_model_config(arch: dict = ARCH) -> dict:
    """config.json contents: A13B's keys and layout with the tiny shape."""
    ids = special_ids()
    layers = arch["num_hidden_layers"]
    return {
        "architectures": ["HunYuanMoEV1ForCausalLM"],
        "model_type": "hunyuan_v1_moe",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attention_head_dim": arch["head_dim"],
        "head_dim": arch["head_dim"],
        "bos_token_id": ids[BOS],
        "eos_token_id": ids[EOS],
        "eod_token_id": ids[EOS],
        "pad_token_id": ids[PAD],
        "sep_token_id": ids[SEP],
        "use_cla": False,
        "cla_share_factor": 2,
        "use_mla": False,
        "hidden_act": "silu",
        "hidden_size": arch["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": arch["intermediate_size"],
        "max_position_embeddings": arch["max_position_embeddings"],
        "mlp_bias": False,
        "moe_intermediate_size": [arch["intermediate_size"]] * layers,
        "moe_layer_num_skipped": 0,
        "moe_topk": [arch["moe_topk"]] * layers,
        "norm_topk_prob": True,
        "norm_type": "rms",
        "num_attention_heads": arch["num_attention_heads"],
        "num_experts": arch["num_experts"],
        "num_hidden_layers": layers,
        "num_key_value_heads": arch["num_key_value_heads"],
        "num_shared_expert": [1] * layers,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {"alpha": arch["rope_alpha"], "beta_fast": 32, "beta_slow": 1, "factor": 1.0, "mscale": 1.0,
                         "mscale_all_dim": 1.0, "type": "dynamic"},
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "use_mixed_mlp_moe": True,
        "use_qk_norm": True,
        "vocab_size": arch["vocab_size"],
    }


def generation_config() -> dict:
    """A13B's sampling defaults, with the tiny tokenizer's ids."""
    ids = special_ids()
    return {"bos_token_id": ids[BOS], "eos_token_id": [ids[EOS]], "pad_token_id": ids[PAD],
            "do_sample": True, "temperature": 0.7, "top_k": 20, "top_p": 0.8}


def write_configs(out_dir: Path, arch: dict = ARCH) -> None:
    out_dir = Path(out_dir)
    (out_dir / "config.json").write_text(json.dumps(tiny_model_config(arch), indent=2) + "\n")
    (out_dir / "generation_config.json").write_text(json.dumps(generation_config(), indent=2) + "\n")
