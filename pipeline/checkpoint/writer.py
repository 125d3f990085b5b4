"""Streams a CheckpointPlan into rank{N}.safetensors files (in the temp directory of `pipeline.outputs`).

The safetensors header is computed from the plan first, so no output tensor is ever materialised whole. A
source slice that is one contiguous byte run and keeps its dtype (every expert, q/k/v rows, the embedding:
nearly all bytes) is copied file to file by the kernel (`os.sendfile`), never entering this process; only
the router (widened to fp32), column cuts and padding pass through `pread` chunks of at most CHUNK_BYTES.
Files are recorded by size: their content is fixed by the plan digest and the source fingerprint of the
manifest, and hashing 160 GB would cost a CPU pass that the kernel copies avoid. Each file is fsynced when
complete.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pipeline.checkpoint.progress import Progress
from pipeline.checkpoint.source import CHUNK_BYTES, SourceCheckpoint
from pipeline.checkpoint.st_format import ITEMSIZE, cast, header_bytes
from pipeline.checkpoint.tensor_plan import CheckpointPlan, OutTensor
from pipeline.errors import PipelineError

WRITEBACK_BYTES = 256 * 1024 * 1024
SYNC_FILE_RANGE_WAIT_BEFORE, SYNC_FILE_RANGE_WRITE, SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4  # <linux/fs.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _sync_file_range(fd: int, offset: int, nbytes: int, flags: int) -> None:
    if _LIBC is not None and _LIBC.sync_file_range(fd, ctypes.c_int64(offset), ctypes.c_int64(nbytes), flags):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


class RankFile:
    """One rank file being written: bytes from memory (`write`) or file to file in the kernel (`copy`).

    Every WRITEBACK_BYTES the new window's writeback is started and the previous window is waited for and
    dropped from the page cache (sync_file_range + POSIX_FADV_DONTNEED): the disk is busy from the first
    window on, dirty memory stays at two windows, and a 160 GB conversion does not fill the page cache.
    """

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.total = self.window_start = 0
        self.previous: tuple[int, int] | None = None

    def write(self, data) -> None:
        view = memoryview(data).cast("B")
        nbytes = view.nbytes
        while view:
            view = view[os.write(self.fd, view):]
        self._advance(nbytes)

    def copy(self, source_fd: int, offset: int, count: int) -> None:
        done = 0
        while done < count:
            sent = os.sendfile(self.fd, source_fd, offset + done, count - done)
            if sent == 0:
                raise OSError(f"source ended {count - done} bytes early at offset {offset + done}")
            done += sent
        self._advance(count)

    def _advance(self, nbytes: int) -> None:
        self.total += nbytes
        if self.total - self.window_start < WRITEBACK_BYTES:
            return
        window = (self.window_start, self.total - self.window_start)
        _sync_file_range(self.fd, *window, SYNC_FILE_RANGE_WRITE)
        if self.previous:
            _sync_file_range(self.fd, *self.previous,
                             SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)
            os.posix_fadvise(self.fd, *self.previous, os.POSIX_FADV_DONTNEED)
        self.previous, self.window_start = window, self.total

    def finish(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def _open_output(path: Path) -> RankFile:
    """The one place output files are opened (the I/O boundary tests use to simulate a full disk)."""
    return RankFile(path)


class _SourceFiles:
    """Read-only descriptors of the source shards, opened once per worker."""

    def __init__(self):
        self.fds: dict[Path, int] = {}

    def fd(self, path: Path) -> int:
        if path not in self.fds:
            self.fds[path] = os.open(path, os.O_RDONLY)
            os.posix_fadvise(self.fds[path], 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return self.fds[path]

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


def _write_tensor(tensor: OutTensor, source: SourceCheckpoint, files: _SourceFiles, output: RankFile,
                  progress: Progress, stop: threading.Event | None, path: Path) -> None:
    for piece in tensor.pieces:
        if stop is not None and stop.is_set():
            raise PipelineError(f"{path}: stopped because another rank failed")
        if piece.name is None:
            remaining = piece.numel * ITEMSIZE[tensor.dtype]
            while remaining:
                size = min(remaining, CHUNK_BYTES)
                output.write(bytes(size))
                remaining -= size
            progress.update(piece.numel * ITEMSIZE[tensor.dtype])
            continue
        source_dtype = source.tensors[piece.name].dtype
        run = source.byte_range(piece.name, piece.cut) if source_dtype == tensor.dtype else None
        if run is not None:
            file, offset, count = run
            for start in range(0, count, CHUNK_BYTES):  # chunked, so `stop` and progress stay responsive
                size = min(CHUNK_BYTES, count - start)
                output.copy(files.fd(file), offset + start, size)
                progress.update(size)
            continue
        for words in source.read(piece.name, piece.cut):
            chunk = cast(words, source_dtype, tensor.dtype).reshape(-1).view(np.uint8)
            output.write(chunk)
            progress.update(chunk.nbytes)


def _write_file(path: Path, entries: list[tuple[str, str, tuple]], write_tensor) -> int:
    """The safetensors file at `path`: its header, then tensor `i` through `write_tensor(i, output)`, each checked
    against the size its header promises; fsynced. Returns its byte count."""
    header, sizes = header_bytes(entries)
    output = _open_output(path)
    try:
        output.write(header)
        for index, ((name, _, _), size) in enumerate(zip(entries, sizes, strict=True)):
            start = output.total
            write_tensor(index, output)
            if output.total - start != size:
                raise PipelineError(f"{path}: internal error: '{name}' produced {output.total - start} bytes, "
                                    f"expected {size}")
        output.finish()
    finally:
        output.close()
    return output.total


def write_rank(tensors: tuple[OutTensor, ...], source: SourceCheckpoint, path: Path, progress: Progress,
               stop: threading.Event | None = None) -> dict:
    """Write one rank file; returns its byte count. Gives up between chunks once `stop` is set."""
    files = _SourceFiles()
    try:
        total = _write_file(path, [(t.name, t.dtype, t.shape) for t in tensors],
                            lambda i, output: _write_tensor(tensors[i], source, files, output, progress, stop, path))
    finally:
        files.close()
    return {"bytes": total}


def write_safetensors(entries, path: Path, progress: Progress, stop: threading.Event | None = None) -> dict:
    """One safetensors file from (name, dtype, shape, chunks) entries, `chunks()` yielding the tensor's bytes in
    pieces (the quantize stage's computed tensors); fsynced; returns its byte count and sha256. Gives up between
    chunks once `stop` is set."""
    meta = [(name, dtype, shape) for name, dtype, shape, _ in entries]
    digest = hashlib.sha256(header_bytes(meta)[0])

    def write_tensor(index: int, output: RankFile) -> None:
        for chunk in entries[index][3]():
            if stop is not None and stop.is_set():
                raise PipelineError(f"{path}: stopped because another rank failed")
            view = memoryview(chunk).cast("B")
            output.write(view)
            digest.update(view)
            progress.update(view.nbytes)

    return {"bytes": _write_file(path, meta, write_tensor), "sha256": digest.hexdigest()}


def write_ranks(plan: CheckpointPlan, source: SourceCheckpoint, directory: Path, workers: int) -> dict[str, dict]:
    """All rank files, `workers` ranks at a time; returns {file name: {bytes}}."""
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
