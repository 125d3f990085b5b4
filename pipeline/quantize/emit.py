"""Streams output tensors into `model-0000i-of-0000n.safetensors` shards plus the index, deterministically.

Each output tensor is a name, dtype, shape and a function yielding its bytes in pieces (a copy reads the
source in bounded chunks; a quantized tensor is produced whole, one linear at a time), so memory stays at
one piece. Tensors are written in natural name order (layer 2 before layer 10) and cut into shards by size,
so the same tensors give byte-identical files whatever the source's own sharding. Files are hashed while
written and fsynced; the caller writes into `pipeline.outputs.replaced_directory`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.checkpoint.progress import Progress
from pipeline.checkpoint.source import Cut, SourceCheckpoint
from pipeline.checkpoint.st_format import CASTS, ITEMSIZE, cast
from pipeline.checkpoint.writer import write_safetensors
from pipeline.errors import PipelineError

if TYPE_CHECKING:
    import torch

INDEX_FILE = "model.safetensors.index.json"
SHARD_BYTES = 5 * 10**9


@dataclass(frozen=True)
class OutTensor:
    name: str
    dtype: str  # safetensors name
    shape: tuple[int, ...]
    pieces: Callable[[], Iterator[memoryview]]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * ITEMSIZE[self.dtype]


def natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def shards(tensors: list[OutTensor], max_bytes: int) -> list[list[OutTensor]]:
    """Consecutive runs of at most `max_bytes` (a larger tensor gets a shard of its own)."""
    result: list[list[OutTensor]] = [[]]
    size = 0
    for tensor in tensors:
        if result[-1] and size + tensor.nbytes > max_bytes:
            result.append([])
            size = 0
        result[-1].append(tensor)
        size += tensor.nbytes
    return [shard for shard in result if shard]


def write_tensors(tensors: list[OutTensor], directory: Path, label: str,
                  max_shard_bytes: int = SHARD_BYTES) -> dict[str, dict]:
    """All shards and the index into `directory`; returns {file name: {bytes, sha256}} of the shards."""
    ordered = sorted(tensors, key=lambda t: natural_key(t.name))
    names = [t.name for t in ordered]
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise PipelineError(f"internal error: output tensor '{duplicate}' produced twice")
    groups = shards(ordered, max_shard_bytes)
    progress = Progress(sum(t.nbytes for t in ordered), label)
    records, weight_map = {}, {}
    for number, group in enumerate(groups, 1):
        file_name = f"model-{number:05d}-of-{len(groups):05d}.safetensors"
        records[file_name] = write_safetensors([(t.name, t.dtype, t.shape, t.pieces) for t in group],
                                               directory / file_name, progress)
        weight_map.update(dict.fromkeys((t.name for t in group), file_name))
    progress.close()
    index = {"metadata": {"total_size": sum(t.nbytes for t in ordered)}, "weight_map": weight_map}
    (directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    return records


def copied(source: SourceCheckpoint, name: str, dtype: str | None = None) -> OutTensor:
    """Tensor `name` of `source`, streamed in bounded chunks; cast to `dtype` when given and different."""
    info = source.tensors[name]
    target = dtype or info.dtype

    def pieces() -> Iterator[memoryview]:
        chunks = source.read(name, Cut(0, 0, info.shape[0])) if info.shape else [
            SourceCheckpoint._pread(info, info.offset, info.nbytes, info.shape)]
        for words in chunks:
            yield _converted(words, info.dtype, target)

    return OutTensor(name, target, info.shape, pieces)


def _converted(words: np.ndarray, source: str, target: str) -> memoryview:
    """Raw words as `target` bytes: as they are, widened with numpy (exact), or narrowed by torch (its rounding).
    torch is imported only for a narrowing, so relabelling a checkpoint does not pay for it."""
    if source == target or (source, target) in CASTS:
        return memoryview(np.ascontiguousarray(cast(words, source, target)).reshape(-1).view(np.uint8))
    from pipeline.quantize.raw import TORCH_DTYPES, to_bytes, to_torch

    return to_bytes(to_torch(words, source, words.shape).to(TORCH_DTYPES[target]))


def computed(name: str, dtype: str, shape: tuple[int, ...], make: Callable[[], torch.Tensor]) -> OutTensor:
    """A tensor computed when it is written (one linear at a time)."""

    def pieces() -> Iterator[memoryview]:
        from pipeline.quantize.raw import st_dtype, to_bytes

        tensor = make()
        if tuple(tensor.shape) != tuple(shape) or st_dtype(tensor) != dtype:
            raise PipelineError(f"internal error: '{name}' computed as {st_dtype(tensor)} {list(tensor.shape)}, "
                                f"expected {dtype} {list(shape)}")
        yield to_bytes(tensor)

    return OutTensor(name, dtype, tuple(shape), pieces)
