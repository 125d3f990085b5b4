"""Hunyuan MoE forward pass computed the way a TP/EP world of ranks would compute it, on CPU in fp32.

Every rank holds its own copies of replicated tensors and its own hidden state. Where TensorRT-LLM
all-reduces (after the row-parallel attention output projection, after the MoE block: routed experts of
the rank's EP block + its slice of the shared expert), the ranks' partial results are summed; lm_head
slices are all-gathered. Ranks: moe_ep_rank = rank % moe_ep, moe_tp_rank = rank // moe_ep, each EP rank owning
a contiguous block of experts; `fc` holds up then gate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.reference.shards import RankShards


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope(x: torch.Tensor, base: float, start: int = 0) -> torch.Tensor:
    """NeoX-style rotary embedding over the last dim of x [batch, heads, tokens, head_dim], at positions
    start .. start + tokens - 1 (fp32 angles, as TensorRT-LLM's RoPE table and transformers compute them)."""
    dim, tokens = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    freqs = torch.arange(start, start + tokens, dtype=torch.float)[:, None] * inv_freq
    angles = torch.cat((freqs, freqs), dim=-1)
    first, second = x.chunk(2, dim=-1)
    return x * angles.cos() + torch.cat((-second, first), dim=-1) * angles.sin()


def swiglu_up_first(x: torch.Tensor, fc: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
    up, gate = (x @ fc.T).chunk(2, dim=-1)
    return (F.silu(gate) * up) @ proj.T


class SimulatedWorld:
    def __init__(self, shards: RankShards, position_start: int = 0):
        self.cfg = shards.config
        self.position_start = position_start
        self.world = [{name: t.float() for name, t in rank.items()} for rank in shards.ranks]
        mapping = shards.mapping
        self.tp, self.moe_ep = int(mapping["tp_size"]), int(mapping["moe_ep_size"])
        self.eps = float(self.cfg["norm_epsilon"])

    def attention(self, rank: int, layer: int, h: torch.Tensor) -> torch.Tensor:
        w, p, cfg = self.world[rank], f"transformer.layers.{layer}.", self.cfg
        d = cfg["head_size"]
        q_heads = cfg["num_attention_heads"] // self.tp
        kv_heads = max(cfg["num_key_value_heads"] // self.tp, 1)
        x = rms_norm(h, w[p + "input_layernorm.weight"], self.eps)
        q, k, v = (x @ w[p + "attention.qkv.weight"].T).split([q_heads * d, kv_heads * d, kv_heads * d], dim=-1)
        batch, tokens = h.shape[:2]
        q, k, v = (t.reshape(batch, tokens, -1, d).transpose(1, 2) for t in (q, k, v))
        q = rms_norm(rope(q, cfg["rotary_base"], self.position_start), w[p + "attention.q_layernorm.weight"], self.eps)
        k = rms_norm(rope(k, cfg["rotary_base"], self.position_start), w[p + "attention.k_layernorm.weight"], self.eps)
        k, v = (t.repeat_interleave(q_heads // kv_heads, dim=1) for t in (k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=d ** -0.5)
        return out.transpose(1, 2).reshape(batch, tokens, q_heads * d) @ w[p + "attention.dense.weight"].T

    def moe(self, rank: int, layer: int, h: torch.Tensor) -> torch.Tensor:
        w, p = self.world[rank], f"transformer.layers.{layer}.mlp."
        x = rms_norm(h, w[f"transformer.layers.{layer}.post_layernorm.weight"], self.eps).reshape(-1, h.shape[-1])
        probs = torch.softmax(x @ w[p + "router.weight"].T, dim=-1)
        weights, chosen = probs.topk(int(self.cfg["moe_topk"][layer]), dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        fc, proj = w[p + "fc.weight"], w[p + "proj.weight"]
        first = (rank % self.moe_ep) * fc.shape[0]
        out = swiglu_up_first(x, w[p + "shared_expert.fc.weight"], w[p + "shared_expert.proj.weight"])
        for local in range(fc.shape[0]):
            token, slot = torch.where(chosen == first + local)
            if token.numel():
                routed = swiglu_up_first(x[token], fc[local], proj[local]) * weights[token, slot, None]
                out.index_add_(0, token, routed)
        return out.reshape(h.shape)

    def all_reduce(self, hidden: list[torch.Tensor], block, layer: int) -> list[torch.Tensor]:
        total = sum(block(rank, layer, hidden[rank]) for rank in range(self.tp))
        return [h + total for h in hidden]

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden = [w["transformer.vocab_embedding.weight"][input_ids] for w in self.world]
        for layer in range(int(self.cfg["num_hidden_layers"])):
            hidden = self.all_reduce(hidden, self.attention, layer)
            hidden = self.all_reduce(hidden, self.moe, layer)
        gathered = [rms_norm(hidden[rank], w["transformer.ln_f.weight"], self.eps) @ w["lm_head.weight"].T
                    for rank, w in enumerate(self.world)]
        return torch.cat(gathered, dim=-1)[..., : int(self.cfg["vocab_size"])]
