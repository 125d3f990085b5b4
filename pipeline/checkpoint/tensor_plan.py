"""Table × layout × source → the complete, printable list of output tensors per rank.

Pure: nothing is read beyond headers and nothing is written. Every source tensor is accounted for before a
single byte is written: a missing tensor, a wrong shape, mixed dtypes or an unexpected tensor is an error.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from pipeline.checkpoint.layout import Layout
from pipeline.checkpoint.mapping import (
    CONDITIONS,
    ROWS,
    SHARD_RULES,
    TARGET_DTYPES,
    TRANSFORMS,
    Piece,
    RankContext,
    Row,
    Src,
    dims,
    is_ignorable,
)
from pipeline.checkpoint.source import INDEX_FILE, SourceCheckpoint
from pipeline.checkpoint.st_format import CASTS, ITEMSIZE, TORCH_DTYPE_NAMES
from pipeline.errors import PipelineError
from pipeline.model import ModelSpec
from pipeline.parallelism import model_problems


@dataclass(frozen=True)
class OutTensor:
    name: str
    dtype: str  # safetensors name
    shape: tuple[int, ...]
    pieces: tuple[Piece, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * ITEMSIZE[self.dtype]


@dataclass(frozen=True)
class CheckpointPlan:
    spec: ModelSpec
    layout: Layout
    ranks: tuple[tuple[OutTensor, ...], ...]

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for rank in self.ranks for t in rank)

    def describe(self) -> list[dict]:
        return [{"rank": rank, "name": t.name, "dtype": t.dtype, "shape": list(t.shape),
                 "pieces": [[p.name, *((p.cut.dim, p.cut.start, p.cut.stop) if p.cut else ()), list(p.shape)]
                            for p in t.pieces]}
                for rank, tensors in enumerate(self.ranks) for t in tensors]

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()


def check_fits(spec: ModelSpec, layout: Layout) -> None:
    """The divisibility rules the shard rules rely on (`pipeline.parallelism`, as the profile checks them)."""
    broken = model_problems(spec, layout.tp, layout.moe_tp, layout.moe_ep)
    if broken:
        raise PipelineError("parallel layout does not fit the model: " + "; ".join(broken))


def _active_rows(spec: ModelSpec) -> list[Row]:
    return [row for row in ROWS if CONDITIONS[row.when](spec)]


def _instances(row: Row, spec: ModelSpec) -> list[int | None]:
    return list(range(spec.num_layers)) if "{layer}" in row.target else [None]


def _ordered(spec: ModelSpec) -> list[tuple[Row, int | None]]:
    """(row, layer) pairs layer by layer, so reads follow the shard order; model-level rows keep their side."""
    rows = _active_rows(spec)
    first_layer_row = next(i for i, row in enumerate(rows) if "{layer}" in row.target)

    def position(pair):
        row, layer = pair
        if layer is not None:
            return layer
        return -1 if rows.index(row) < first_layer_row else spec.num_layers

    return sorted(((row, layer) for row in rows for layer in _instances(row, spec)), key=position)


def _names(src: Src, spec: ModelSpec, layer: int | None) -> list[str]:
    experts = range(spec.num_experts) if "{expert}" in src.pattern else [None]
    return [src.pattern.format(layer=layer, expert=e) for e in experts]


def _missing(source: SourceCheckpoint, name: str) -> PipelineError:
    """Name the shard that should hold `name`: the file of its layer's other tensors, else the index."""
    prefix = name.split(".mlp.")[0].split(".self_attn.")[0] + "."
    siblings = sorted({str(i.file) for n, i in source.tensors.items() if n.startswith(prefix)})
    where = siblings[0] if siblings else str(source.model_dir / INDEX_FILE)
    return PipelineError(f"{where}: tensor '{name}' is missing (the mapping table needs it; neither the index "
                         f"nor any shard header has it)")


def expected_tensors(spec: ModelSpec) -> dict[str, tuple[tuple[int, ...], frozenset[str]]]:
    """Every HF tensor the table reads, with the shape it must have and the dtypes it may have: the model's
    torch_dtype, and for a widening row (the router to fp32) also the row's target dtype."""
    model_dtype = TORCH_DTYPE_NAMES[spec.torch_dtype]
    expected = {}
    for row in _active_rows(spec):
        dtypes = frozenset({model_dtype} | TARGET_DTYPES.get(row.transform, set()))
        for layer in _instances(row, spec):
            values = dims(spec, layer)
            for src in row.sources:
                for name in _names(src, spec, layer):
                    expected[name] = (tuple(values[letter] for letter in src.shape), dtypes)
    return expected


def check_source(spec: ModelSpec, source: SourceCheckpoint) -> None:
    expected = expected_tensors(spec)
    for name, (shape, dtypes) in expected.items():
        info = source.tensors.get(name)
        if info is None:
            raise _missing(source, name)
        if info.shape != shape:
            raise PipelineError(f"{info.file}: tensor '{name}' has shape {list(info.shape)}, expected {list(shape)} "
                                f"from config.json")
        if info.dtype not in dtypes:
            raise PipelineError(f"{info.file}: tensor '{name}' is {info.dtype}, expected {' or '.join(sorted(dtypes))} "
                                f"(config.json torch_dtype={spec.torch_dtype})")
    for name in sorted(set(source.tensors) - set(expected)):
        if not is_ignorable(name, spec):
            raise PipelineError(f"{source.where(name)}: unexpected tensor '{name}' (not in the Hunyuan mapping table; "
                                "list it in IGNORABLE in pipeline/checkpoint/mapping.py if it is safe to drop)")


def _pieces(src: Src, ctx: RankContext, layer: int | None) -> list[Piece]:
    shape = tuple(dims(ctx.spec, layer)[letter] for letter in src.shape)
    pieces = []
    for take in SHARD_RULES[src.shard](shape, ctx):
        piece_shape = list(shape)
        piece_shape[take.cut.dim] = take.cut.stop - take.cut.start
        pieces.append(Piece(src.pattern.format(layer=layer, expert=take.expert), take.cut, tuple(piece_shape)))
        if take.pad_rows:
            pieces.append(Piece(None, None, (take.pad_rows, *shape[1:])))
    return pieces


def _out_tensor(row: Row, ctx: RankContext, layer: int | None, source: SourceCheckpoint) -> OutTensor:
    groups = [_pieces(src, ctx, layer) for src in row.sources]
    shape, pieces, dtype = TRANSFORMS[row.transform](groups)
    dtypes = {source.tensors[p.name].dtype for p in pieces if p.name}
    if len(dtypes) != 1:
        names = sorted({p.name for p in pieces if p.name})
        raise PipelineError(f"{source.where(names[0])}: sources of '{row.target}' have mixed dtypes "
                            f"{sorted(map(str, dtypes))}; expected one dtype")
    source_dtype = dtypes.pop()
    if dtype and dtype != source_dtype and (source_dtype, dtype) not in CASTS:
        raise PipelineError(f"{source.where(pieces[0].name)}: '{pieces[0].name}' is {source_dtype}; '{row.target}' "
                            f"needs {dtype}, expected one of {sorted({s for s, _ in CASTS} | {dtype})}")
    return OutTensor(row.target.format(layer=layer), dtype or source_dtype, shape, tuple(pieces))


def build_plan(spec: ModelSpec, layout: Layout, source: SourceCheckpoint) -> CheckpointPlan:
    check_fits(spec, layout)
    check_source(spec, source)
    ranks = []
    for rank in range(layout.world_size):
        ctx = RankContext(layout, rank, spec)
        ranks.append(tuple(_out_tensor(row, ctx, layer, source) for row, layer in _ordered(spec)))
    return CheckpointPlan(spec, layout, tuple(ranks))
