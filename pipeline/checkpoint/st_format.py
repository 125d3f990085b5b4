"""The safetensors container: an 8-byte little-endian header length, a JSON header, then raw tensor bytes.

Parsed and written here (rather than through `safe_open`) so that reads can use `pread` on exact byte ranges:
memory-mapped reads count every touched page of the source towards the converter's resident memory.
Dtypes stay safetensors names ("BF16", "F32", ...) and data stays raw numpy words of the element size, so the
converter needs neither torch nor a bf16 numpy type; the one numeric change, router → fp32, is in CASTS.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError

# safetensors dtype name -> bytes per element
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
            "F8_E4M3": 1, "F8_E5M2": 1}
RAW = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # element size -> numpy word holding the bits


def _bf16_to_f32(words: np.ndarray) -> np.ndarray:
    return words.astype(np.uint32) << 16  # bf16 is the upper half of an fp32: exact


def _f16_to_f32(words: np.ndarray) -> np.ndarray:
    return words.view(np.float16).astype(np.float32).view(np.uint32)


CASTS = {("BF16", "F32"): _bf16_to_f32, ("F16", "F32"): _f16_to_f32}  # exact widenings only


def cast(words: np.ndarray, source: str, target: str) -> np.ndarray:
    return words if source == target else CASTS[(source, target)](words)


MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives: file, dtype, shape and absolute byte range."""

    file: Path
    dtype: str  # safetensors name
    shape: tuple[int, ...]
    offset: int  # absolute offset of the first byte in the file
    nbytes: int

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]


def _entry(path: Path, name: str, entry, data_start: int, file_size: int) -> TensorInfo:
    try:
        dtype = entry["dtype"]
        itemsize = ITEMSIZE[dtype]
        shape = tuple(int(dim) for dim in entry["shape"])
        begin, end = (int(x) for x in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise PipelineError(f"{path}: corrupt safetensors header: entry '{name}' needs dtype, shape and "
                            f"data_offsets, got {entry!r}") from None
    if end - begin != math.prod(shape) * itemsize:
        raise PipelineError(f"{path}: corrupt safetensors header: '{name}' spans {end - begin} bytes, but shape "
                            f"{list(shape)} of {entry['dtype']} needs {math.prod(shape) * itemsize}")
    if data_start + end > file_size:
        raise PipelineError(f"{path}: truncated: tensor '{name}' ends at byte {data_start + end}, the file has "
                            f"{file_size} bytes")
    return TensorInfo(path, dtype, shape, data_start + begin, end - begin)


def read_header(path: Path) -> dict[str, TensorInfo]:
    """Every tensor of one safetensors file, validated against the file size."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise PipelineError(f"{path}: truncated: {size} bytes, too short for a safetensors header")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES or 8 + length > size:
                raise PipelineError(f"{path}: corrupt or truncated safetensors header: it claims {length} "
                                    f"bytes, the file has {size}")
            raw = handle.read(length)
    except OSError as error:
        raise PipelineError(f"{path}: cannot read ({error.strerror})") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PipelineError(f"{path}: corrupt safetensors header: not valid JSON") from None
    if not isinstance(header, dict):
        raise PipelineError(f"{path}: corrupt safetensors header: expected a JSON object")
    header.pop("__metadata__", None)
    return {name: _entry(path, name, entry, 8 + length, size) for name, entry in header.items()}


def header_bytes(entries: list[tuple[str, str, tuple[int, ...]]]) -> tuple[bytes, list[int]]:
    """Serialized header for tensors written back to back in this order, and each tensor's byte count.

    Deterministic: same entries, same bytes. Padded with spaces to 8-byte alignment, as the library does.
    """
    header: dict = {"__metadata__": {"format": "pt"}}
    sizes, offset = [], 0
    for name, dtype, shape in entries:
        nbytes = math.prod(shape) * ITEMSIZE[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        sizes.append(nbytes)
        offset += nbytes
    body = json.dumps(header, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)
    return struct.pack("<Q", len(body)) + body, sizes
