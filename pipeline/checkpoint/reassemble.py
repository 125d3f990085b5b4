"""The inverse of a plan: rebuild every HF tensor from the rank files and compare it with the source.

Walks each output tensor's pieces in byte order, puts each piece back at its cut of the source tensor
(duplicated kv heads and replicated tensors must agree across ranks), checks that vocab padding is zero,
and that every element of every source tensor was covered exactly.
"""

from __future__ import annotations

import torch

from pipeline.checkpoint.plan import CheckpointPlan
from pipeline.checkpoint.source import Cut, SourceCheckpoint


def _place(target: torch.Tensor, seen: torch.Tensor, cut: Cut, chunk: torch.Tensor) -> bool:
    """Write chunk at cut; False when a copy already placed there disagrees."""
    region, mask = target.narrow(cut.dim, cut.start, cut.stop - cut.start), seen.narrow(cut.dim, cut.start, cut.stop - cut.start)
    if mask.any() and not torch.equal(region[mask], chunk[mask]):
        return False
    region.copy_(chunk)
    mask.fill_(True)
    return True


def reassemble(plan: CheckpointPlan, ranks, source: SourceCheckpoint) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(rebuilt HF tensors, problems) from rank tensor dicts laid out by `plan`."""
    rebuilt, seen, problems = {}, {}, []
    for rank, tensors in enumerate(plan.ranks):
        for out in tensors:
            flat, offset = ranks[rank][out.name].reshape(-1), 0
            for piece in out.pieces:
                chunk = flat[offset: offset + piece.numel].reshape(piece.shape)
                offset += piece.numel
                if piece.name is None:
                    if chunk.any():
                        problems.append(f"rank{rank} {out.name}: padding is not zero")
                    continue
                info = source.tensors[piece.name]
                target = rebuilt.setdefault(piece.name, torch.zeros(info.shape, dtype=info.dtype))
                mask = seen.setdefault(piece.name, torch.zeros(info.shape, dtype=torch.bool))
                if not _place(target, mask, piece.cut, chunk.to(info.dtype)):
                    problems.append(f"rank{rank} {out.name}: copies of {piece.name} disagree between ranks")
    problems += [f"{name}: not every element is covered" for name, mask in seen.items() if not mask.all()]
    return rebuilt, problems


def compare_with_source(rebuilt: dict[str, torch.Tensor], source: SourceCheckpoint) -> list[str]:
    """Names whose rebuilt tensor differs from the HF tensor."""
    different = []
    for name, tensor in sorted(rebuilt.items()):
        info = source.tensors[name]
        original = torch.cat(list(source.read(name, Cut(0, 0, info.shape[0]))), dim=0)
        if not torch.equal(original, tensor):
            different.append(name)
    return different
