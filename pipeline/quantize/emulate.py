"""A quantized Hunyuan checkpoint run on CPU the way TensorRT-LLM's PyTorch backend runs it on the GPU.

Weights are loaded as the pinned loader loads them (facts: formats.<algo>.combine): fused q/k/v and
gate/up FP8 linears take the largest input_scale of their sources and are requantized to the largest
weight_scale (in the model dtype, bf16); the routed experts' FP8 GEMMs quantize their inputs with one scale
per layer, the maximum over all experts; INT8 weight-only scales are cast to bf16. FP8 activations are
quantized with input_scale (clamped to ±448, cast to e4m3). Hidden states are bf16 between operations,
matmuls accumulate in fp32, routing is softmax → top-k → renormalised in fp32. With no quantization this is
the BF16 model; an `observer` dict then collects each linear's largest input magnitude (a calibration pass).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from pipeline.model import spec_from_config
from pipeline.quantize.formats import FP8_MAX
from pipeline.reference.forward import rms_norm, rope

Fn = Callable[[torch.Tensor], torch.Tensor]


def bf16(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.bfloat16)


def fake_fp8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x quantized to e4m3 with a per-tensor scale and dequantized (fp32)."""
    return (x.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn).float() * scale


def scalar(t: torch.Tensor) -> torch.Tensor:
    return t.float().reshape(())


def matmul(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return x.float() @ weight.float().T


class Weights:
    """Builds the linears of one checkpoint for one quant_algo (None: unquantized)."""

    def __init__(self, tensors: dict[str, torch.Tensor], quant_algo: str | None, observer: dict | None = None):
        self.t, self.algo, self.observer = tensors, quant_algo, observer

    def _observe(self, prefixes: list[str], x: torch.Tensor) -> None:
        if self.observer is not None and x.numel():
            amax = float(x.float().abs().max())
            for prefix in prefixes:
                self.observer[prefix] = max(self.observer.get(prefix, 0.0), amax)

    def dense(self, name: str) -> Fn:
        weight = bf16(self.t[name])
        return lambda x: bf16(matmul(x, weight))

    def linear(self, prefixes: list[str]) -> Fn:
        """One linear, or several fused the way the loader fuses them (q,k,v or gate,up)."""
        return {None: self._plain, "FP8": self._fp8, "W8A16": self._int8}[self.algo](prefixes)

    def _plain(self, prefixes: list[str]) -> Fn:
        weight = torch.cat([bf16(self.t[f"{p}.weight"]) for p in prefixes])

        def apply(x):
            self._observe(prefixes, x)
            return bf16(matmul(x, weight))
        return apply

    def _int8(self, prefixes: list[str]) -> Fn:
        weight = torch.cat([bf16(self.t[f"{p}.weight"]) * bf16(self.t[f"{p}.weight_scale"])[:, None] for p in prefixes])
        return lambda x: bf16(matmul(x, weight))

    def _fp8(self, prefixes: list[str]) -> Fn:
        scales = [scalar(self.t[f"{p}.weight_scale"]) for p in prefixes]
        weight_scale = max(scales)
        weight = torch.cat([((bf16(self.t[f"{p}.weight"]) * s) / weight_scale).to(torch.float8_e4m3fn)
                            for p, s in zip(prefixes, scales, strict=True)]).float() * weight_scale
        input_scale = max(scalar(self.t[f"{p}.input_scale"]) for p in prefixes)
        return lambda x: bf16(fake_fp8(x, input_scale) @ weight.T)

    def experts(self, prefixes: list[str]) -> list[Fn]:
        """Per expert x -> down(silu(gate(x)) * up(x)) in fp32, for the experts' HF prefixes."""
        if self.algo == "FP8":
            return self._fp8_experts(prefixes)
        result = []
        for p in prefixes:
            fc31, fc2 = self.linear([f"{p}.gate_proj", f"{p}.up_proj"]), self.linear([f"{p}.down_proj"])
            result.append(lambda x, fc31=fc31, fc2=fc2: fc2(bf16(swiglu(fc31(x)))).float())
        return result

    def _fp8_experts(self, prefixes: list[str]) -> list[Fn]:
        t = self.t
        fc31_input = max(max(scalar(t[f"{p}.gate_proj.input_scale"]), scalar(t[f"{p}.up_proj.input_scale"]))
                         for p in prefixes)
        fc2_input = max(scalar(t[f"{p}.down_proj.input_scale"]) for p in prefixes)
        result = []
        for p in prefixes:
            gate_s, up_s = scalar(t[f"{p}.gate_proj.weight_scale"]), scalar(t[f"{p}.up_proj.weight_scale"])
            shared_s = max(gate_s, up_s)
            fc31 = torch.cat([((bf16(t[f"{p}.{n}.weight"]) * s) / shared_s).to(torch.float8_e4m3fn)
                              for n, s in (("gate_proj", gate_s), ("up_proj", up_s))]).float() * shared_s
            fc2 = t[f"{p}.down_proj.weight"].float() * scalar(t[f"{p}.down_proj.weight_scale"])
            result.append(lambda x, fc31=fc31, fc2=fc2: fake_fp8(swiglu(fake_fp8(x, fc31_input) @ fc31.T), fc2_input) @ fc2.T)
        return result


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    gate, up = gate_up.float().chunk(2, dim=-1)
    return F.silu(gate) * up


class Emulator:
    """Logits of one token sequence, computed from a checkpoint's tensors (see the module docstring)."""

    def __init__(self, config: dict, tensors: dict[str, torch.Tensor], quant_algo: str | None,
                 observer: dict | None = None):
        self.spec = spec_from_config(config)
        self.t, self.w = tensors, Weights(tensors, quant_algo, observer)
        self.eps = self.spec.rms_norm_eps

    def norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return bf16(rms_norm(x.float(), self.t[name].float(), self.eps))

    def attention(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        spec, p = self.spec, f"model.layers.{layer}.self_attn"
        d, heads, kv_heads = spec.head_dim, spec.num_heads, spec.num_kv_heads
        x = self.norm(h, f"model.layers.{layer}.input_layernorm.weight")
        qkv = self.w.linear([f"{p}.q_proj", f"{p}.k_proj", f"{p}.v_proj"])(x)
        q, k, v = (t.float().reshape(len(h), -1, d).transpose(0, 1)[None]
                   for t in qkv.split([heads * d, kv_heads * d, kv_heads * d], dim=-1))
        q = bf16(rms_norm(rope(q, spec.rotary_base), self.t[f"{p}.query_layernorm.weight"].float(), self.eps)).float()
        k = bf16(rms_norm(rope(k, spec.rotary_base), self.t[f"{p}.key_layernorm.weight"].float(), self.eps)).float()
        k, v = (t.repeat_interleave(heads // kv_heads, dim=1) for t in (k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=d ** -0.5)
        return self.w.linear([f"{p}.o_proj"])(bf16(out[0].transpose(0, 1).reshape(len(h), heads * d)))

    def moe(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        p = f"model.layers.{layer}.mlp"
        x = self.norm(h, f"model.layers.{layer}.post_attention_layernorm.weight")
        probs = torch.softmax(self.w.dense(f"{p}.gate.wg.weight")(x).float(), dim=-1)
        weights, chosen = probs.topk(self.spec.top_k[layer], dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        experts = self.w.experts([f"{p}.experts.{e}" for e in range(self.spec.num_experts)])
        routed = torch.zeros(x.shape, dtype=torch.float32)
        for expert in chosen.unique().tolist():
            token, slot = torch.where(chosen == expert)
            routed.index_add_(0, token, experts[expert](x[token]) * weights[token, slot, None])
        shared_fc31 = self.w.linear([f"{p}.shared_mlp.gate_proj", f"{p}.shared_mlp.up_proj"])
        shared = self.w.linear([f"{p}.shared_mlp.down_proj"])(bf16(swiglu(shared_fc31(x))))
        return bf16(shared.float() + bf16(routed).float())

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """fp32 logits [tokens, vocab] of one sequence of token ids [tokens]."""
        embedding = bf16(self.t["model.embed_tokens.weight"])
        h = embedding[input_ids]
        for layer in range(self.spec.num_layers):
            h = bf16(h.float() + self.attention(layer, h).float())
            h = bf16(h.float() + self.moe(layer, h).float())
        head = embedding if self.spec.tie_word_embeddings else bf16(self.t["lm_head.weight"])
        return bf16(matmul(self.norm(h, "model.norm.weight"), head)).float()
