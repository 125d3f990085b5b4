"""THE Hunyuan (HunYuanMoEV1ForCausalLM) → TensorRT-LLM weight mapping: one row per output tensor.

A row names the TRT-LLM target, its HF source(s) with their expected shape and shard rule, and a named
transform that assembles one rank's pieces into the target. Names are full, anchored templates
(`{layer}`, `{expert}`); nothing is renamed by substring. Shape letters: V vocab, H hidden, Q q-heads ×
head_dim, KV kv-heads × head_dim, D head_dim, E experts, I expert width of the layer, S shared-expert width.

Shard rules (what one rank takes from a source; `layout.py` holds the rank arithmetic):
  replicate      whole tensor on every rank (norms, router, embedding)
  tp_rows        dim 0 split over tp (q heads, shared up/gate)
  tp_cols        dim 1 split over tp (o_proj and shared down: row-parallel, partial sums all-reduced)
  kv_heads       the rank's kv heads, one duplicated head per rank when tp > kv heads
  vocab_rows     dim 0 zero-padded to a multiple of tp, then split (lm_head)
  expert_rows    the rank's contiguous EP block of experts, each split on dim 0 over moe_tp
  expert_cols    the same experts, each split on dim 1 over moe_tp (down_proj)
Transforms (how the pieces become one tensor; all are row-major byte concatenations, so they stream):
  copy, concat_rows (q|k|v, up|gate), to_fp32 (router), stack_experts (down),
  stack_experts_concat_rows (per expert: up then gate — TRT-LLM's `fc` is [w3; w1]).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pipeline.checkpoint.layout import Layout
from pipeline.checkpoint.source import Cut
from pipeline.model import ModelSpec


@dataclass(frozen=True)
class Src:
    pattern: str  # full HF name, with {layer} / {expert} placeholders
    shape: tuple[str, ...]  # symbolic dims (letters above)
    shard: str  # key of SHARD_RULES


@dataclass(frozen=True)
class Row:
    target: str
    sources: tuple[Src, ...]
    transform: str  # key of TRANSFORMS
    when: str = "always"  # key of CONDITIONS


HF = "model.layers.{layer}"
TRT = "transformer.layers.{layer}"
EXPERT = HF + ".mlp.experts.{expert}"

ROWS: tuple[Row, ...] = (
    Row("transformer.vocab_embedding.weight", (Src("model.embed_tokens.weight", ("V", "H"), "replicate"),), "copy"),
    Row(f"{TRT}.input_layernorm.weight", (Src(f"{HF}.input_layernorm.weight", ("H",), "replicate"),), "copy"),
    Row(f"{TRT}.attention.qkv.weight", (Src(f"{HF}.self_attn.q_proj.weight", ("Q", "H"), "tp_rows"),
                                        Src(f"{HF}.self_attn.k_proj.weight", ("KV", "H"), "kv_heads"),
                                        Src(f"{HF}.self_attn.v_proj.weight", ("KV", "H"), "kv_heads")), "concat_rows"),
    Row(f"{TRT}.attention.dense.weight", (Src(f"{HF}.self_attn.o_proj.weight", ("H", "Q"), "tp_cols"),), "copy"),
    Row(f"{TRT}.attention.q_layernorm.weight", (Src(f"{HF}.self_attn.query_layernorm.weight", ("D",), "replicate"),), "copy"),
    Row(f"{TRT}.attention.k_layernorm.weight", (Src(f"{HF}.self_attn.key_layernorm.weight", ("D",), "replicate"),), "copy"),
    Row(f"{TRT}.post_layernorm.weight", (Src(f"{HF}.post_attention_layernorm.weight", ("H",), "replicate"),), "copy"),
    Row(f"{TRT}.mlp.router.weight", (Src(f"{HF}.mlp.gate.wg.weight", ("E", "H"), "replicate"),), "to_fp32"),
    Row(f"{TRT}.mlp.fc.weight", (Src(f"{EXPERT}.up_proj.weight", ("I", "H"), "expert_rows"),
                                 Src(f"{EXPERT}.gate_proj.weight", ("I", "H"), "expert_rows")), "stack_experts_concat_rows"),
    Row(f"{TRT}.mlp.proj.weight", (Src(f"{EXPERT}.down_proj.weight", ("H", "I"), "expert_cols"),), "stack_experts"),
    Row(f"{TRT}.mlp.shared_expert.fc.weight", (Src(f"{HF}.mlp.shared_mlp.up_proj.weight", ("S", "H"), "tp_rows"),
                                               Src(f"{HF}.mlp.shared_mlp.gate_proj.weight", ("S", "H"), "tp_rows")), "concat_rows"),
    Row(f"{TRT}.mlp.shared_expert.proj.weight", (Src(f"{HF}.mlp.shared_mlp.down_proj.weight", ("H", "S"), "tp_cols"),), "copy"),
    Row("transformer.ln_f.weight", (Src("model.norm.weight", ("H",), "replicate"),), "copy"),
    Row("lm_head.weight", (Src("model.embed_tokens.weight", ("V", "H"), "vocab_rows"),), "concat_rows", when="tied"),
    Row("lm_head.weight", (Src("lm_head.weight", ("V", "H"), "vocab_rows"),), "concat_rows", when="untied"),
)

# Source tensors that may be present and are deliberately dropped: (full-name regex, condition).
IGNORABLE: tuple[tuple[str, str], ...] = (
    (r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq", "always"),  # recomputed from rope_theta/alpha
    (r"lm_head\.weight", "tied"),  # a stored copy of the tied embedding
)

CONDITIONS = {
    "always": lambda spec: True,
    "tied": lambda spec: spec.tie_word_embeddings,
    "untied": lambda spec: not spec.tie_word_embeddings,
}


def dims(spec: ModelSpec, layer: int | None) -> dict[str, int]:
    """Values of the shape letters for one layer (I needs the layer)."""
    values = {"V": spec.vocab_size, "H": spec.hidden_size, "Q": spec.num_heads * spec.head_dim,
              "KV": spec.num_kv_heads * spec.head_dim, "D": spec.head_dim, "E": spec.num_experts,
              "S": spec.shared_intermediate}
    if layer is not None:
        values["I"] = spec.expert_intermediate[layer]
    return values


def is_ignorable(name: str, spec: ModelSpec) -> bool:
    return any(re.fullmatch(pattern, name) and CONDITIONS[when](spec) for pattern, when in IGNORABLE)


@dataclass(frozen=True)
class RankContext:
    layout: Layout
    rank: int
    spec: ModelSpec


@dataclass(frozen=True)
class Take:
    """What a shard rule takes from one source: an expert id (or None), a cut, and zero rows to append."""

    expert: int | None
    cut: Cut
    pad_rows: int = 0


def _even(size: int, parts: int, index: int, dim: int) -> Cut:
    step = size // parts
    return Cut(dim, index * step, (index + 1) * step)


def replicate(shape, ctx: RankContext) -> list[Take]:
    return [Take(None, Cut(0, 0, shape[0]))]


def tp_rows(shape, ctx: RankContext) -> list[Take]:
    return [Take(None, _even(shape[0], ctx.layout.tp, ctx.rank, 0))]


def tp_cols(shape, ctx: RankContext) -> list[Take]:
    return [Take(None, _even(shape[1], ctx.layout.tp, ctx.rank, 1))]


def kv_heads(shape, ctx: RankContext) -> list[Take]:
    heads = ctx.layout.kv_heads(ctx.rank, ctx.spec.num_kv_heads)
    return [Take(None, Cut(0, heads.start * ctx.spec.head_dim, heads.stop * ctx.spec.head_dim))]


def vocab_rows(shape, ctx: RankContext) -> list[Take]:
    per_rank = ctx.layout.padded_vocab(shape[0]) // ctx.layout.tp
    start = ctx.rank * per_rank
    stop = min(start + per_rank, shape[0])
    return [Take(None, Cut(0, start, max(stop, start)), start + per_rank - max(stop, start))]


def _experts(shape, ctx: RankContext, dim: int) -> list[Take]:
    cut = _even(shape[dim], ctx.layout.moe_tp, ctx.layout.moe_tp_rank(ctx.rank), dim)
    return [Take(expert, cut) for expert in ctx.layout.experts(ctx.rank, ctx.spec.num_experts)]


def expert_rows(shape, ctx: RankContext) -> list[Take]:
    return _experts(shape, ctx, 0)


def expert_cols(shape, ctx: RankContext) -> list[Take]:
    return _experts(shape, ctx, 1)


SHARD_RULES = {rule.__name__: rule for rule in (replicate, tp_rows, tp_cols, kv_heads, vocab_rows,
                                                 expert_rows, expert_cols)}


@dataclass(frozen=True)
class Piece:
    """A run of output bytes: a cut of source `name`, or zeros (name None) of `shape`."""

    name: str | None
    cut: Cut | None
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def _rows(pieces: list[Piece]) -> tuple[int, ...]:
    rest = pieces[0].shape[1:]
    return (sum(p.shape[0] for p in pieces), *rest)


def concat_rows(groups: list[list[Piece]]) -> tuple[tuple[int, ...], list[Piece], str | None]:
    pieces = [piece for group in groups for piece in group]
    return _rows(pieces), pieces, None


def copy(groups):
    return concat_rows(groups)


def to_fp32(groups):
    shape, pieces, _ = concat_rows(groups)
    return shape, pieces, "F32"


def stack_experts(groups):
    (pieces,) = groups
    return (len(pieces), *pieces[0].shape), pieces, None


def stack_experts_concat_rows(groups):
    per_expert = [[group[e] for group in groups] for e in range(len(groups[0]))]
    return (len(per_expert), *_rows(per_expert[0])), [p for expert in per_expert for p in expert], None


TRANSFORMS = {fn.__name__: fn for fn in (copy, concat_rows, to_fp32, stack_experts, stack_experts_concat_rows)}
# Source dtypes a transform accepts besides the model's torch_dtype: a widening also takes its target dtype.
TARGET_DTYPES = {"to_fp32": {"F32"}}
