"""Streams a CheckpointPlan into rank{N}.safetensors files (in the temp directory of `pipeline.outputs`).

Each output tensor is written piece by piece straight from `pread` chunks (at most CHUNK_BYTES in memory
per worker); the safetensors header is computed from the plan first, so no output tensor is ever
materialised whole. sha256 is computed while writing; each file is fsynced when complete.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pipeline.checkpoint.progress import Progress
from pipeline.checkpoint.source import CHUNK_BYTES, SourceCheckpoint
from pipeline.checkpoint.st_format import ITEMSIZE, cast, header_bytes
from pipeline.checkpoint.tensor_plan import CheckpointPlan, OutTensor
from pipeline.errors import PipelineError

WRITEBACK_BYTES = 64 * 1024 * 1024
SYNC_FILE_RANGE_WAIT_BEFORE, SYNC_FILE_RANGE_WRITE, SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4  # <linux/fs.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _open_output(path: Path):
    """The one place output files are opened (the I/O boundary tests use to simulate a full disk)."""
    return open(path, "wb")


def _chunks(tensor: OutTensor, source: SourceCheckpoint) -> Iterator[memoryview]:
    for piece in tensor.pieces:
        if piece.name is None:
            remaining = piece.numel * ITEMSIZE[tensor.dtype]
            while remaining:
                size = min(remaining, CHUNK_BYTES)
                yield memoryview(bytes(size))
                remaining -= size
            continue
        source_dtype = source.tensors[piece.name].dtype
        for words in source.read(piece.name, piece.cut):
            yield memoryview(cast(words, source_dtype, tensor.dtype).reshape(-1).view(np.uint8))


def _sync_file_range(fd: int, offset: int, nbytes: int, flags: int) -> None:
    if _LIBC is not None and _LIBC.sync_file_range(fd, ctypes.c_int64(offset), ctypes.c_int64(nbytes), flags):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


class _Output:
    """One rank file being written, hashed as it goes. Every WRITEBACK_BYTES the new window's writeback is
    started and the previous window is waited for and dropped from the page cache (sync_file_range +
    POSIX_FADV_DONTNEED): the disk is busy from the first window on, dirty memory stays at two windows, and
    a 160 GB conversion does not push the source out of the page cache."""

    def __init__(self, handle):
        self.handle, self.digest = handle, hashlib.sha256()
        self.total = self.window_start = 0
        self.previous: tuple[int, int] | None = None

    def write(self, data) -> None:
        self.handle.write(data)
        self.digest.update(data)
        self.total += memoryview(data).nbytes
        if self.total - self.window_start >= WRITEBACK_BYTES:
            self.handle.flush()
            fd, window = self.handle.fileno(), (self.window_start, self.total - self.window_start)
            _sync_file_range(fd, *window, SYNC_FILE_RANGE_WRITE)
            if self.previous:
                _sync_file_range(fd, *self.previous, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE
                                 | SYNC_FILE_RANGE_WAIT_AFTER)
                os.posix_fadvise(fd, *self.previous, os.POSIX_FADV_DONTNEED)
            self.previous, self.window_start = window, self.total


def write_rank(tensors: tuple[OutTensor, ...], source: SourceCheckpoint, path: Path, progress: Progress,
               stop: threading.Event | None = None) -> dict:
    """Write one rank file; returns its byte count and sha256. Gives up between chunks once `stop` is set."""
    entries = [(t.name, t.dtype, t.shape, lambda t=t: _chunks(t, source)) for t in tensors]
    return write_safetensors(entries, path, progress, stop)


def write_safetensors(entries, path: Path, progress: Progress, stop: threading.Event | None = None) -> dict:
    """One safetensors file from (name, dtype, shape, chunks) entries, `chunks()` yielding the tensor's bytes
    in pieces; fsynced, returns its byte count and sha256. Gives up between chunks once `stop` is set."""
    header, sizes = header_bytes([(name, dtype, shape) for name, dtype, shape, _ in entries])
    with _open_output(path) as handle:
        output = _Output(handle)
        output.write(header)
        for (name, _, _, chunks), size in zip(entries, sizes, strict=True):
            start = output.total
            for chunk in chunks():
                if stop is not None and stop.is_set():
                    raise PipelineError(f"{path}: stopped because another rank failed")
                output.write(chunk)
                progress.update(chunk.nbytes)
            if output.total - start != size:
                raise PipelineError(f"{path}: internal error: '{name}' produced {output.total - start} bytes, "
                                    f"expected {size}")
        handle.flush()
        os.fsync(handle.fileno())
    return {"bytes": output.total, "sha256": output.digest.hexdigest()}


def write_ranks(plan: CheckpointPlan, source: SourceCheckpoint, directory: Path, workers: int) -> dict[str, dict]:
    """All rank files, `workers` ranks at a time; returns {file name: {bytes, sha256}}."""
    progress = Progress(plan.total_bytes, "convert")
    names = [f"rank{rank}.safetensors" for rank in range(plan.layout.world_size)]
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(write_rank, tensors, source, directory / name, progress, stop)
                   for name, tensors in zip(names, plan.ranks, strict=True)]
        try:
            records = [future.result() for future in futures]
        except BaseException:
            stop.set()  # the other ranks stop at their next chunk instead of writing on
            raise
    progress.close()
    return dict(zip(names, records, strict=True))
