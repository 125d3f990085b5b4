"""Streams a CheckpointPlan into rank{N}.safetensors files (in the temp directory of `pipeline.outputs`).

The safetensors header is computed from the plan first, so no output tensor is ever materialised whole. Bytes
bypass the page cache in both directions (O_DIRECT, in BLOCK-aligned BUFFER_BYTES blocks): a source slice that
is one contiguous byte run and keeps its dtype (every expert, q/k/v rows, the embedding: nearly all bytes) is
read by a background thread one block ahead (`_RunReader`) and copied once, into the output's staging buffer;
a full staging buffer is written by a second background thread while the other fills (`RankFile`). Only the
router (widened to fp32), column cuts and padding pass through `pread` chunks of at most CHUNK_BYTES. Memory is
four buffers per worker whatever the model size, and no page cache is filled or dirtied. Files are recorded by
size: their content is fixed by the plan digest and the source fingerprint of the manifest, and hashing 160 GB
would cost a CPU pass that the copies avoid. Each file is fsynced when complete.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pipeline.checkpoint.mapping import Piece
from pipeline.checkpoint.progress import Progress
from pipeline.checkpoint.source import CHUNK_BYTES, SourceCheckpoint
from pipeline.checkpoint.st_format import ITEMSIZE, cast, header_bytes
from pipeline.checkpoint.tensor_plan import CheckpointPlan, OutTensor
from pipeline.errors import PipelineError

BLOCK = 4096  # O_DIRECT offsets, sizes and buffer addresses are multiples of this (>= any logical block size)
BUFFER_BYTES = 16 * 1024 * 1024  # one read or staging buffer; a multiple of BLOCK


def _open_direct(path: Path, flags: int) -> int:
    """`path` opened with O_DIRECT, or without it where the filesystem refuses it (tmpfs)."""
    try:
        return os.open(path, flags | os.O_DIRECT, 0o644)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
        return os.open(path, flags, 0o644)


def _aligned_buffer() -> memoryview:
    """BUFFER_BYTES of page-aligned memory, resident from the start (MAP_POPULATE), so that the converter's RSS
    stops growing once its files are open, whatever the model's size or tensor widths."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE
    return memoryview(mmap.mmap(-1, BUFFER_BYTES, flags=flags))


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class RankFile:
    """One output file, appended to through two page-aligned staging buffers: a full one is written with
    O_DIRECT by a background thread while `write` fills the other."""

    def __init__(self, path: Path):
        self.fd = _open_direct(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        self.buffers = [_aligned_buffer(), _aligned_buffer()]  # [filling, being written]
        self.filled = self.flushed = 0
        self.writer = ThreadPoolExecutor(max_workers=1)
        self.pending: Future | None = None

    @property
    def total(self) -> int:
        return self.flushed + self.filled

    def write(self, data) -> None:
        view = memoryview(data).cast("B")
        while view:
            size = min(view.nbytes, BUFFER_BYTES - self.filled)
            self.buffers[0][self.filled:self.filled + size] = view[:size]
            self.filled += size
            view = view[size:]
            if self.filled == BUFFER_BYTES:
                self._flush(BUFFER_BYTES)

    def _flush(self, size: int) -> None:
        """Hand the first `size` bytes of the filling buffer (its `filled` bytes, zero-padded to a whole block
        at the very end) to the background writer once its previous write is done, and switch buffers."""
        self._wait()
        self.pending = self.writer.submit(_pwrite_all, self.fd, self.buffers[0][:size], self.flushed)
        self.buffers.reverse()
        self.flushed += self.filled
        self.filled = 0

    def _wait(self) -> None:
        """Block until the background write is done; raise its error (a full disk) here."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def finish(self) -> None:
        """Write the last partial block zero-padded (O_DIRECT writes whole blocks), cut the file back to its
        size, and fsync it."""
        total = self.total
        if self.filled:
            padded = -(-self.filled // BLOCK) * BLOCK
            self.buffers[0][self.filled:padded] = bytes(padded - self.filled)
            self._flush(padded)
        self._wait()
        os.ftruncate(self.fd, total)
        os.fsync(self.fd)

    def close(self) -> None:
        self.writer.shutdown(wait=True)
        os.close(self.fd)


def _open_output(path: Path) -> RankFile:
    """The one place output files are opened (the I/O boundary tests use to simulate a full disk)."""
    return RankFile(path)


def _run(piece: Piece, tensor: OutTensor, source: SourceCheckpoint) -> tuple[Path, int, int] | None:
    """(file, offset, byte count) when `piece` is one contiguous byte run of its shard, copied unchanged."""
    if piece.name is None or source.tensors[piece.name].dtype != tensor.dtype:
        return None
    return source.byte_range(piece.name, piece.cut)


class _RunReader:
    """The contiguous source runs of one rank file, in write order, read with O_DIRECT in BLOCK-aligned blocks of
    at most BUFFER_BYTES into two page-aligned buffers: a background thread reads the next block while the
    caller copies the current one."""

    def __init__(self, runs: list[tuple[Path, int, int]]):
        self.fds: dict[Path, int] = {}  # opened and used by the reader thread only, closed after it ends
        self.buffers = [_aligned_buffer(), _aligned_buffer()]
        self.blocks = self._blocks(runs)
        self.reader = ThreadPoolExecutor(max_workers=1)
        self.ahead = self._read_next()

    @staticmethod
    def _blocks(runs: list[tuple[Path, int, int]]) -> Iterator[tuple[Path, int, int, int, int]]:
        """(file, start, size, first, stop): read the aligned [start, start + size), keep its [first, stop)."""
        for path, offset, count in runs:
            end = offset + count
            while offset < end:
                start = offset // BLOCK * BLOCK
                size = min(-(-end // BLOCK) * BLOCK - start, BUFFER_BYTES)
                yield path, start, size, offset - start, min(end - start, size)
                offset = min(end, start + size)

    def _read_next(self) -> Future | None:
        block = next(self.blocks, None)
        if block is None:
            return None
        self.buffers.reverse()
        return self.reader.submit(self._read, self.buffers[0], *block)

    def _read(self, buffer: memoryview, path: Path, start: int, size: int, first: int, stop: int) -> memoryview:
        if path not in self.fds:
            self.fds[path] = _open_direct(path, os.O_RDONLY)
        done = 0
        while done < stop:
            got = os.preadv(self.fds[path], [buffer[done:size]], start + done)
            if got == 0:
                raise PipelineError(f"{path}: truncated while reading (expected bytes up to {start + stop})")
            done += got
        return buffer[first:stop]

    def take(self, count: int) -> Iterator[memoryview]:
        """The next `count` bytes of the runs, as views each valid until the next one is taken."""
        while count:
            view = self.ahead.result()
            self.ahead = self._read_next()
            yield view
            count -= view.nbytes

    def close(self) -> None:
        self.reader.shutdown(wait=True)
        for fd in self.fds.values():
            os.close(fd)


def _write_tensor(tensor: OutTensor, source: SourceCheckpoint, reader: _RunReader, output: RankFile,
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
        run = _run(piece, tensor, source)
        if run:
            chunks = reader.take(run[2])
        else:
            source_dtype = source.tensors[piece.name].dtype
            chunks = (cast(words, source_dtype, tensor.dtype).reshape(-1).view(np.uint8)
                      for words in source.read(piece.name, piece.cut))
        for chunk in chunks:
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
    reader = _RunReader([run for t in tensors for piece in t.pieces if (run := _run(piece, t, source))])
    try:
        total = _write_file(path, [(t.name, t.dtype, t.shape) for t in tensors],
                            lambda i, output: _write_tensor(tensors[i], source, reader, output, progress, stop, path))
    finally:
        reader.close()
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
