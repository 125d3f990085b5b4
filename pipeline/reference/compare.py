"""`verify`: simulated-world logits vs transformers, plus the exact reassembly of every HF tensor."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from pipeline.checkpoint.layout import Layout
from pipeline.checkpoint.reassemble import compare_with_source, reassemble
from pipeline.checkpoint.source import SourceCheckpoint
from pipeline.checkpoint.tensor_plan import build_plan
from pipeline.errors import PipelineError
from pipeline.model import load_spec
from pipeline.reference.forward import SimulatedWorld
from pipeline.reference.hf import reference_logits
from pipeline.reference.shards import RankShards, load_rank_shards


@dataclass
class VerifyReport:
    mapping: dict
    tokens: int
    max_abs_diff: float
    top1_agreement: float
    tolerance: float
    reassembled_tensors: int
    reassembly_problems: list[str]

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance and not self.reassembly_problems

    def to_dict(self) -> dict:
        return asdict(self) | {"passed": self.passed}


def check_reassembly(shards: RankShards, hf_dir: Path) -> tuple[int, list[str]]:
    mapping = shards.mapping
    try:
        layout = Layout(int(mapping["tp_size"]), int(mapping["moe_tp_size"]), int(mapping["moe_ep_size"]))
    except (KeyError, TypeError, ValueError):
        raise PipelineError(f"checkpoint config.json: 'mapping' needs integer tp_size, moe_tp_size, moe_ep_size; "
                            f"got {mapping!r}") from None
    source = SourceCheckpoint(hf_dir)
    plan = build_plan(load_spec(hf_dir), layout, source)
    missing = sorted({t.name for rank in plan.ranks for t in rank} - set().union(*shards.ranks))
    if missing:
        return 0, [f"rank files lack {name}" for name in missing]
    rebuilt, problems = reassemble(plan, shards.ranks, source)
    return len(rebuilt), problems + [f"{name}: differs from the HF tensor" for name in compare_with_source(rebuilt, source)]


def verify(checkpoint: Path, hf_dir: Path, *, tolerance: float = 1e-4, seed: int = 0, batch: int = 2,
           seq_len: int = 16, position_start: int = 0) -> VerifyReport:
    """Logits from the rank shards vs transformers at positions position_start .. position_start + seq_len - 1
    (past the published context only on a config whose max_position_embeddings covers them, as served)."""
    served = load_spec(hf_dir).max_position_embeddings
    if position_start + seq_len > served:
        raise PipelineError(f"{hf_dir}/config.json: max_position_embeddings {served:,} does not cover positions up to "
                            f"{position_start + seq_len - 1:,}; verify against the served (derived) config.json")
    shards = load_rank_shards(checkpoint)
    count, problems = check_reassembly(shards, hf_dir)
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, int(shards.config["vocab_size"]), (batch, seq_len), generator=generator)
    with torch.no_grad():
        ours = SimulatedWorld(shards, position_start).logits(input_ids)
    theirs = reference_logits(hf_dir, input_ids, position_start)
    if ours.shape != theirs.shape:
        raise PipelineError(f"{checkpoint}: logits shape {list(ours.shape)} differs from transformers' {list(theirs.shape)}")
    agreement = (ours.argmax(-1) == theirs.argmax(-1)).float().mean().item()
    return VerifyReport(mapping=shards.mapping, tokens=batch * seq_len,
                        max_abs_diff=(ours - theirs).abs().max().item(), top1_agreement=agreement,
                        tolerance=tolerance, reassembled_tensors=count, reassembly_problems=problems)
