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
from pipeline.input_limits import brief

# safetensors dtype name -> bytes per element
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
            "F8_E4M3": 1, "F8_E5M2": 1}
RAW = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # element size -> numpy word holding the bits
TORCH_DTYPE_NAMES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}  # config.json torch_dtype -> name


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


MAX_DIMS = 8


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(path: Path, name: str, entry, data_start: int, file_size: int) -> TensorInfo:
    """One header entry, its fields type-checked: a known dtype, a shape of non-negative integers, and
    integer offsets 0 <= begin <= end whose span is exactly the shape's bytes and lies inside the file."""
    corrupt = f"{path}: corrupt safetensors header: {brief(name)}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise PipelineError(f"{corrupt} needs dtype, shape and data_offsets, got {brief(entry)}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in ITEMSIZE:
        raise PipelineError(f"{corrupt} has dtype {brief(dtype)}, expected one of {', '.join(ITEMSIZE)}")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_is_int(d) and d >= 0 for d in shape):
        raise PipelineError(f"{corrupt} has shape {brief(shape)}, expected a list of at most {MAX_DIMS} "
                            "non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(x) for x in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise PipelineError(f"{corrupt} has data_offsets {brief(offsets)}, expected [begin, end] with "
                            "0 <= begin <= end")
    begin, end = offsets
    needed = math.prod(shape) * ITEMSIZE[dtype]
    if end - begin != needed:
        raise PipelineError(f"{corrupt} spans {end - begin} bytes, but shape {shape} of {dtype} needs {needed}")
    if data_start + end > file_size:
        raise PipelineError(f"{path}: truncated: tensor {brief(name)} ends at byte {data_start + end}, the file "
                            f"has {file_size} bytes")
    return TensorInfo(path, dtype, tuple(shape), data_start + begin, end - begin)


def _check_tiling(path: Path, tensors: dict[str, TensorInfo], data_start: int, file_size: int) -> None:
    """The tensors tile the data area exactly, as the safetensors library requires: no byte is claimed by two
    tensors (overlap) and none by no tensor (a gap, or bytes after the last tensor)."""
    position = data_start
    for name, info in sorted(tensors.items(), key=lambda item: (item[1].offset, item[1].nbytes)):
        if info.offset != position:
            problem = "overlaps the tensor before it" if info.offset < position else "leaves a gap before it"
            raise PipelineError(f"{path}: corrupt safetensors header: {brief(name)} starts at data offset "
                                f"{info.offset - data_start}, expected {position - data_start}: it {problem}")
        position += info.nbytes
    if position != file_size:
        raise PipelineError(f"{path}: corrupt safetensors file: {file_size - position} bytes after the last tensor "
                            "that no header entry describes")


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
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise PipelineError(f"{path}: corrupt safetensors header: not valid JSON") from None
    if not isinstance(header, dict):
        raise PipelineError(f"{path}: corrupt safetensors header: expected a JSON object")
    header.pop("__metadata__", None)
    tensors = {name: _entry(path, name, entry, 8 + length, size) for name, entry in header.items()}
    _check_tiling(path, tensors, 8 + length, size)
    return tensors


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
