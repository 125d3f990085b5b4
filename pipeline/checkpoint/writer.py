"""Streams a CheckpointPlan into rank{N}.safetensors files inside a temp directory that is renamed at the end.

Each output tensor is written piece by piece straight from `pread` chunks (at most CHUNK_BYTES in memory
per worker); the safetensors header is computed from the plan first, so no output tensor is ever
materialised whole. sha256 is computed while writing. Files and the directory are fsynced before the
rename, so a directory named like the output is always complete; a killed run leaves only a hidden
`.NAME.partial-PID` directory, which the next run removes once PID is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from pipeline.checkpoint.plan import CheckpointPlan, OutTensor
from pipeline.checkpoint.progress import Progress
from pipeline.checkpoint.source import CHUNK_BYTES, SourceCheckpoint
from pipeline.checkpoint.st_format import header_bytes
from pipeline.errors import PipelineError


def _open_output(path: Path):
    """The one place output files are opened (the I/O boundary tests use to simulate a full disk)."""
    return open(path, "wb")


def _chunks(tensor: OutTensor, source: SourceCheckpoint) -> Iterator[memoryview]:
    itemsize = torch.empty((), dtype=tensor.dtype).element_size()
    for piece in tensor.pieces:
        if piece.name is None:
            remaining = piece.numel * itemsize
            while remaining:
                size = min(remaining, CHUNK_BYTES)
                yield memoryview(bytes(size))
                remaining -= size
            continue
        for chunk in source.read(piece.name, piece.cut):
            chunk = chunk.to(tensor.dtype) if chunk.dtype != tensor.dtype else chunk
            yield memoryview(chunk.reshape(-1).view(torch.uint8).numpy())


def write_rank(tensors: tuple[OutTensor, ...], source: SourceCheckpoint, path: Path, progress: Progress) -> dict:
    """Write one rank file; returns its byte count and sha256."""
    header, sizes = header_bytes([(t.name, t.dtype, t.shape) for t in tensors])
    digest = hashlib.sha256(header)
    total = len(header)
    with _open_output(path) as handle:
        handle.write(header)
        for tensor, size in zip(tensors, sizes, strict=True):
            written = 0
            for chunk in _chunks(tensor, source):
                handle.write(chunk)
                digest.update(chunk)
                written += chunk.nbytes
                progress.update(chunk.nbytes)
            if written != size:
                raise PipelineError(f"{path}: internal error: '{tensor.name}' produced {written} bytes, expected {size}")
            total += written
        handle.flush()
        os.fsync(handle.fileno())
    return {"bytes": total, "sha256": digest.hexdigest()}


def write_ranks(plan: CheckpointPlan, source: SourceCheckpoint, directory: Path, workers: int) -> dict[str, dict]:
    """All rank files, `workers` ranks at a time; returns {file name: {bytes, sha256}}."""
    progress = Progress(plan.total_bytes, "convert")
    names = [f"rank{rank}.safetensors" for rank in range(plan.layout.world_size)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(write_rank, tensors, source, directory / name, progress)
                   for name, tensors in zip(names, plan.ranks, strict=True)]
        records = [future.result() for future in futures]
    progress.close()
    return dict(zip(names, records, strict=True))


def _remove_stale(out: Path) -> None:
    for partial in out.parent.glob(f".{out.name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_directory(out: Path) -> Iterator[Path]:
    """Yield a temp sibling of `out`; on success it replaces `out`, on any failure it is removed."""
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise PipelineError(f"{out}: exists and is not a directory; expected a directory path for the checkpoint")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(out)
        temp = out.parent / f".{out.name}.partial-{os.getpid()}"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
    except OSError as error:
        raise PipelineError(f"{out.parent}: cannot create the output directory there ({error.strerror}); "
                            "expected a writable directory") from None
    try:
        yield temp
        for path in temp.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(temp)
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            out.rename(old)
        temp.rename(out)
        _fsync_dir(out.parent)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as error:
        raise PipelineError(f"{out}: writing failed ({error.strerror}, errno {error.errno}); nothing was written, "
                            "the partial output was removed") from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
