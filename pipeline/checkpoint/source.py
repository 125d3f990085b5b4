"""An HF checkpoint directory as an index of tensors, read slice by slice with `pread`.

Accepts `model.safetensors.index.json` + shard files, or a single `model.safetensors`. Every shard header
is validated up front (missing file, truncated or corrupt header, index/header disagreement), so a bad
checkpoint fails before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.checkpoint.st_format import RAW, TensorInfo, read_header
from pipeline.errors import PipelineError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
CHUNK_BYTES = 64 * 1024 * 1024  # largest read held in memory at once


@dataclass(frozen=True)
class Cut:
    """A contiguous range [start, stop) along `dim` of a source tensor (the whole tensor when it spans it)."""

    dim: int
    start: int
    stop: int


def _read_index(model_dir: Path) -> dict[str, str]:
    path = model_dir / INDEX_FILE
    try:
        index = json.loads(path.read_text())
        weight_map = index["weight_map"]
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    except (KeyError, TypeError):
        raise PipelineError(f"{path}: expected an object with a 'weight_map' of tensor name -> shard file") from None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise PipelineError(f"{path}: 'weight_map' must map tensor names to shard file names")
    return weight_map


def _shard_files(model_dir: Path) -> tuple[dict[str, str], list[str]]:
    """(tensor name -> file name as the index says, shard file names in order)."""
    if (model_dir / INDEX_FILE).is_file():
        weight_map = _read_index(model_dir)
        return weight_map, sorted(set(weight_map.values()))
    if (model_dir / SINGLE_FILE).is_file():
        return {}, [SINGLE_FILE]
    raise PipelineError(f"{model_dir}: no {INDEX_FILE} or {SINGLE_FILE}; expected a Hugging Face safetensors checkpoint")


class SourceCheckpoint:
    """Tensor name -> TensorInfo over all shards of one HF checkpoint."""

    def __init__(self, model_dir: Path):
        self.model_dir = Path(model_dir)
        weight_map, files = _shard_files(self.model_dir)
        self.files = files
        self.tensors: dict[str, TensorInfo] = {}
        for file_name in files:
            path = self.model_dir / file_name
            if not path.is_file():
                held = sorted(name for name, f in weight_map.items() if f == file_name)
                raise PipelineError(f"{path}: shard file missing ({INDEX_FILE} maps {len(held)} tensor(s) to it, "
                                    f"e.g. '{held[0]}')")
            self.tensors.update(read_header(path))
        for name, file_name in sorted(weight_map.items()):
            info = self.tensors.get(name)
            if info is None or info.file.name != file_name:
                raise PipelineError(f"{self.model_dir / file_name}: tensor '{name}' is missing from this shard "
                                    f"({INDEX_FILE} says it is here)")

    def where(self, name: str) -> str:
        """The shard file holding `name`, for error messages."""
        return str(self.tensors[name].file)

    def fingerprint(self) -> str:
        """sha256 over config.json, the index, and each shard's name, size, mtime and header bytes."""
        digest = hashlib.sha256()
        for extra in ("config.json", INDEX_FILE):
            path = self.model_dir / extra
            digest.update(path.read_bytes() if path.is_file() else b"-")
        for file_name in self.files:
            path = self.model_dir / file_name
            stat = path.stat()
            digest.update(f"{file_name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
            with open(path, "rb") as handle:
                length = int.from_bytes(handle.read(8), "little")
                digest.update(handle.read(length))
        return digest.hexdigest()

    def byte_range(self, name: str, cut: Cut) -> tuple[Path, int, int] | None:
        """(file, offset, byte count) when the slice `cut` of `name` is one contiguous run of the file: a dim-0
        cut, or a cut that spans its whole dimension; None otherwise (rows must be gathered)."""
        info = self.tensors[name]
        if cut.dim != 0 and (cut.start, cut.stop) != (0, info.shape[cut.dim]):
            return None
        if cut.dim != 0:
            return info.file, info.offset, info.nbytes
        row_bytes = math.prod(info.shape[1:]) * info.itemsize
        return info.file, info.offset + cut.start * row_bytes, (cut.stop - cut.start) * row_bytes

    def read(self, name: str, cut: Cut) -> Iterator[np.ndarray]:
        """The slice `cut` of tensor `name` as raw words (see st_format.RAW), in row-major chunks of at most
        CHUNK_BYTES for dim-0 cuts; other cuts read the whole tensor once."""
        info = self.tensors[name]
        row_elems = math.prod(info.shape[1:])
        row_bytes = row_elems * info.itemsize
        if cut.dim == 0:
            rows_per_chunk = max(1, CHUNK_BYTES // max(row_bytes, 1))
            for first in range(cut.start, cut.stop, rows_per_chunk):
                last = min(cut.stop, first + rows_per_chunk)
                yield self._pread(info, info.offset + first * row_bytes, (last - first) * row_bytes,
                                  (last - first, *info.shape[1:]))
            return
        whole = self._pread(info, info.offset, info.nbytes, info.shape)
        index = (slice(None),) * cut.dim + (slice(cut.start, cut.stop),)
        yield np.ascontiguousarray(whole[index])

    @staticmethod
    def _pread(info: TensorInfo, offset: int, nbytes: int, shape: tuple[int, ...]) -> np.ndarray:
        buffer = bytearray(nbytes)
        view = memoryview(buffer)
        fd = os.open(info.file, os.O_RDONLY)
        try:
            done = 0
            while done < nbytes:
                got = os.preadv(fd, [view[done:]], offset + done)
                if got == 0:
                    raise PipelineError(f"{info.file}: truncated while reading (expected {nbytes} bytes at {offset})")
                done += got
        finally:
            os.close(fd)
        return np.frombuffer(buffer, dtype=RAW[info.itemsize]).reshape(shape)
