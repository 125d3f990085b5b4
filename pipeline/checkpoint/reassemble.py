"""The inverse of a plan: rebuild every HF tensor from the rank files and compare it with the source.

Walks each output tensor's pieces in byte order, puts each piece back at its cut of the source tensor
(duplicated kv heads and replicated tensors must agree across ranks), checks that vocab padding is zero,
and that every element of every source tensor was covered exactly.
"""

from __future__ import annotations

import torch

from pipeline.checkpoint.source import Cut, SourceCheckpoint
from pipeline.checkpoint.tensor_plan import CheckpointPlan

TORCH_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}


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
                dtype = TORCH_DTYPES[info.dtype]
                target = rebuilt.setdefault(piece.name, torch.zeros(info.shape, dtype=dtype))
                mask = seen.setdefault(piece.name, torch.zeros(info.shape, dtype=torch.bool))
                if not _place(target, mask, piece.cut, chunk.to(dtype)):
                    problems.append(f"rank{rank} {out.name}: copies of {piece.name} disagree between ranks")
    problems += [f"{name}: not every element is covered" for name, mask in seen.items() if not mask.all()]
    return rebuilt, problems


def compare_with_source(rebuilt: dict[str, torch.Tensor], source: SourceCheckpoint) -> list[str]:
    """Names whose rebuilt tensor differs from the HF tensor."""
    different = []
    for name, tensor in sorted(rebuilt.items()):
        info = source.tensors[name]
        words = [torch.from_numpy(chunk.copy()) for chunk in source.read(name, Cut(0, 0, info.shape[0]))]
        original = torch.cat(words, dim=0).view(TORCH_DTYPES[info.dtype])
        if not torch.equal(original, tensor):
            different.append(name)
    return different
