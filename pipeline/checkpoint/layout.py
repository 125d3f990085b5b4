"""Which slice of the model each rank owns, following TensorRT-LLM's Mapping rules.

- world = tp (pp = 1); MoE runs over the same ranks: moe_tp * moe_ep = tp;
- moe_ep_rank = rank % moe_ep, moe_tp_rank = rank // moe_ep (`tensorrt_llm/mapping.py`);
- each EP rank owns a contiguous block of num_experts / moe_ep experts;
- kv heads are split over tp, or duplicated when tp exceeds them (rank r gets head r * kv // tp);
- the vocabulary of lm_head is zero-padded to a multiple of tp, then split.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.parallelism import layout_problems


@dataclass(frozen=True)
class Layout:
    tp: int
    moe_tp: int
    moe_ep: int

    def __post_init__(self):
        problems = layout_problems(self.tp, self.moe_tp, self.moe_ep)
        if problems:
            raise PipelineError("; ".join(problems))

    @property
    def world_size(self) -> int:
        return self.tp

    def moe_ep_rank(self, rank: int) -> int:
        return rank % self.moe_ep

    def moe_tp_rank(self, rank: int) -> int:
        return rank // self.moe_ep

    def experts(self, rank: int, num_experts: int) -> range:
        """The contiguous block of global expert ids this rank holds."""
        per_rank = num_experts // self.moe_ep
        first = self.moe_ep_rank(rank) * per_rank
        return range(first, first + per_rank)

    def kv_heads(self, rank: int, num_kv_heads: int) -> range:
        """kv heads held by this rank: its share, or one duplicated head when tp > num_kv_heads."""
        count = max(num_kv_heads // self.tp, 1)
        first = rank * num_kv_heads // self.tp
        return range(first, first + count)

    def padded_vocab(self, vocab_size: int) -> int:
        return -(-vocab_size // self.tp) * self.tp

    def to_mapping(self) -> dict:
        """The `mapping` block of a TRT-LLM checkpoint config.json (Mapping.to_dict without `rank`)."""
        return {
            "world_size": self.world_size, "gpus_per_node": max(self.world_size, 1), "cp_size": 1,
            "tp_size": self.tp, "pp_size": 1, "moe_tp_size": self.moe_tp, "moe_cluster_size": 1,
            "moe_ep_size": self.moe_ep, "attn_tp_size": self.tp, "attn_cp_size": 1, "cp_config": {},
            "enable_attention_dp": False, "enable_lm_head_tp_in_adp": False,
        }
