"""Seeded tiny Hunyuan-A13B checkpoints: the A13B config shrunk, random weights, several safetensors shards.

config.json keeps the original A13B key style (`rope_theta` + `rope_scaling` with alpha, `torch_dtype`,
per-layer lists, `attention_head_dim`), never transformers 5's `rope_parameters`. The expert width equals
`intermediate_size` because transformers' HunYuanMoEV1 sizes its experts from the latter. Tensor names
follow the HF module tree (`model.layers.N.mlp.experts.E.up_proj.weight`, ...), written independently of the
converter's mapping table so the two check each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import save_file

from pipeline.model import A13B_CONFIG, spec_from_config

# Shrunk A13B: every split non-trivial at tp 1/2/4 (2 kv heads, 8 experts, odd vocab). Top-k is uniform, as a
# TensorRT-LLM checkpoint needs; `make-tiny --moe-topk 2,3` writes a per-layer list (which convert refuses).
TINY_DEFAULTS = {
    "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16, "intermediate_size": 32, "num_experts": 8, "moe_topk": 2, "vocab_size": 131,
    "tie_word_embeddings": True, "max_position_embeddings": 1024, "torch_dtype": "float32",
}
PER_LAYER = ("moe_intermediate_size", "moe_topk", "num_shared_expert")


def tiny_config(**overrides) -> dict:
    """The A13B config.json with shrunk dimensions (A13B key style); overrides win."""
    config = json.loads(A13B_CONFIG.read_text())
    values = TINY_DEFAULTS | overrides
    layers = values["num_hidden_layers"]
    config.update({key: value for key, value in values.items() if key not in PER_LAYER})
    config["attention_head_dim"] = config["head_dim"]
    config["model_type"] = "hunyuan_v1_moe"
    config["moe_intermediate_size"] = [config["intermediate_size"]] * layers
    top_k = values["moe_topk"]
    top_k = top_k if isinstance(top_k, list) else [top_k]
    config["moe_topk"] = [top_k[i % len(top_k)] for i in range(layers)]
    config["num_shared_expert"] = [1] * layers
    config.pop("org_vocab_size", None)
    config.pop("transformers_version", None)
    for token in ("bos_token_id", "eos_token_id", "eod_token_id", "pad_token_id", "pad_id", "sep_token_id"):
        config[token] = min(config.get(token, 0), config["vocab_size"] - 1)
    return config


def hf_tensors(config: dict) -> Iterator[tuple[str, tuple[int, ...], float]]:
    """(name, shape, init std) of every tensor in HF order; std 0 means a norm weight (around 1)."""
    spec = spec_from_config(config)
    h, d = spec.hidden_size, spec.head_dim
    q, kv, s = spec.num_heads * d, spec.num_kv_heads * d, spec.shared_intermediate
    yield "model.embed_tokens.weight", (spec.vocab_size, h), 0.1
    for layer in range(spec.num_layers):
        p, inter = f"model.layers.{layer}", spec.expert_intermediate[layer]
        yield f"{p}.input_layernorm.weight", (h,), 0.0
        for name, shape in (("q_proj", (q, h)), ("k_proj", (kv, h)), ("v_proj", (kv, h)), ("o_proj", (h, q))):
            yield f"{p}.self_attn.{name}.weight", shape, shape[1] ** -0.5
        yield f"{p}.self_attn.query_layernorm.weight", (d,), 0.0
        yield f"{p}.self_attn.key_layernorm.weight", (d,), 0.0
        yield f"{p}.post_attention_layernorm.weight", (h,), 0.0
        yield f"{p}.mlp.gate.wg.weight", (spec.num_experts, h), 2.0 * h ** -0.5
        for name, shape in (("gate_proj", (s, h)), ("up_proj", (s, h)), ("down_proj", (h, s))):
            yield f"{p}.mlp.shared_mlp.{name}.weight", shape, shape[1] ** -0.5
        for expert in range(spec.num_experts):
            for name, shape in (("gate_proj", (inter, h)), ("up_proj", (inter, h)), ("down_proj", (h, inter))):
                yield f"{p}.mlp.experts.{expert}.{name}.weight", shape, shape[1] ** -0.5
    yield "model.norm.weight", (h,), 0.0
    if not spec.tie_word_embeddings:
        yield "lm_head.weight", (spec.vocab_size, h), h ** -0.5


def _tensor(shape, std: float, dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(shape, generator=generator)
    values = 1.0 + 0.2 * noise if std == 0.0 else std * noise
    return values.to(dtype)


def _shard_of(tensors: list[tuple[str, tuple[int, ...], float]], shards: int, itemsize: int) -> list[int]:
    sizes = [itemsize * torch.Size(shape).numel() for _, shape, _ in tensors]
    total, running, result = sum(sizes), 0, []
    for size in sizes:
        result.append(min(shards - 1, running * shards // max(total, 1)))
        running += size
    return result


def write_checkpoint(config: dict, out: Path, seed: int = 0, shards: int = 3) -> dict[str, str]:
    """config.json + model-0000i-of-0000n.safetensors + index into `out` (must exist); returns the weight map.

    One shard is in memory at a time.
    """
    dtype = getattr(torch, config.get("torch_dtype", "bfloat16"))
    generator = torch.Generator().manual_seed(seed)
    tensors = list(hf_tensors(config))
    owner = _shard_of(tensors, shards, torch.empty((), dtype=dtype).element_size())
    count = max(owner) + 1
    weight_map, total = {}, 0
    for shard in range(count):
        file_name = f"model-{shard + 1:05d}-of-{count:05d}.safetensors"
        data = {name: _tensor(shape, std, dtype, generator)
                for (name, shape, std), index in zip(tensors, owner, strict=True) if index == shard}
        save_file(data, out / file_name, metadata={"format": "pt"})
        total += sum(t.numel() * t.element_size() for t in data.values())
        weight_map.update(dict.fromkeys(data, file_name))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return weight_map
