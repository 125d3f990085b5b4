"""Raw safetensors words ↔ torch tensors, and whole-tensor reads by byte range (scales, single linears)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from pipeline.checkpoint.source import SourceCheckpoint
from pipeline.checkpoint.st_format import TensorInfo

TORCH_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64,
                "F8_E4M3": torch.float8_e4m3fn, "I8": torch.int8, "U8": torch.uint8, "I16": torch.int16,
                "I32": torch.int32, "I64": torch.int64}
ST_DTYPES = {dtype: name for name, dtype in TORCH_DTYPES.items()}


def st_dtype(tensor: torch.Tensor) -> str:
    return ST_DTYPES[tensor.dtype]


def to_torch(words: np.ndarray, dtype: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A tensor viewing raw words (numpy integers of the element size) as `dtype`."""
    return torch.from_numpy(np.ascontiguousarray(words).view(np.uint8)).view(TORCH_DTYPES[dtype]).reshape(shape)


def to_bytes(tensor: torch.Tensor) -> memoryview:
    """The tensor's bytes in row-major order (what a safetensors file holds)."""
    flat = tensor.detach().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")


def read_whole(info: TensorInfo) -> torch.Tensor:
    """One whole tensor, read with pread (memory: the tensor itself)."""
    return to_torch(SourceCheckpoint._pread(info, info.offset, info.nbytes, info.shape), info.dtype, info.shape)


def load_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a (small) checkpoint directory, in memory: for the CPU proofs on tiny models."""
    tensors = {}
    for file_name in SourceCheckpoint(directory).files:
        tensors.update(load_file(Path(directory) / file_name))
    return tensors
