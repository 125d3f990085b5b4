"""The quantize stage end to end: pick the method, produce the tensors, write them and the small files into
a temp directory, check the result against the loader facts, rename.

Methods: `modelopt` (ModelOpt calibrates and exports into a scratch directory inside the temp directory; the
tensors are then streamed from there), `stream` (INT8 weight-only, one tensor at a time from the source) and
`published` (Tencent's FP8 checkpoint relabelled: tensors copied, config files written). The layout check
runs on the written files before the rename, so a directory named like the output always passed it.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pipeline.checkpoint.source import SourceCheckpoint
from pipeline.errors import PipelineError
from pipeline.model import ModelSpec, read_config, spec_from_config
from pipeline.outputs import QUANTIZED_CHECKPOINT, check_target, owns, replaced_directory
from pipeline.quantize import calibration, metadata, published
from pipeline.quantize.emit import OutTensor, computed, copied, write_tensors
from pipeline.quantize.formats import FORMATS, QuantFormat, get_format
from pipeline.quantize.layout import check_directory, expected_names, linears, source_accounting
from pipeline.quantize.roles import linear_of, role_of

STREAM_QUANTIZER = "hunyuan-trt per-channel int8 (ModelOpt's arithmetic)"


@dataclass(frozen=True)
class QuantizeRequest:
    model_dir: Path
    out: Path
    format: str = "fp8"
    method: str | None = None
    from_published: bool = False
    calib_file: Path | None = None
    calib_size: int | None = None
    trust_remote_code: bool = False
    force: bool = False
    keep_current: bool = False  # leave --out alone when it already holds this very conversion


@dataclass
class QuantizeResult:
    out: Path
    format: QuantFormat
    method: str
    quantizer: str
    bytes: int
    seconds: float
    calibration: dict | None = None
    notes: list[str] = field(default_factory=list)
    status: str = "written"  # or "up-to-date" (keep_current found the same conversion in --out)


def resolve_method(fmt: QuantFormat, method: str | None) -> str:
    if fmt.unavailable:
        raise PipelineError(f"--format {fmt.name}: not supported by this stage: {fmt.unavailable}")
    if method is None:
        return fmt.methods[0]
    if method not in fmt.methods:
        raise PipelineError(f"--method: '{method}' cannot produce {fmt.name} (expected {' or '.join(fmt.methods)}); "
                            "streaming needs scales that follow from the weights alone")
    return method


def calibration_ids(request: QuantizeRequest) -> tuple[list[list[int]], dict]:
    if request.calib_file:
        samples, where = calibration.read_jsonl(request.calib_file), str(request.calib_file)
    else:
        samples, where = calibration.CALIBRATION, "built-in"
    samples = calibration.select(samples, request.calib_size, where)
    tokenizer = calibration.load_tokenizer(request.model_dir, request.trust_remote_code)
    ids = calibration.token_ids(samples, tokenizer)
    return ids, calibration.describe(ids, where)


def from_export(export: SourceCheckpoint, spec: ModelSpec, fmt: QuantFormat) -> list[OutTensor]:
    """The tensors the loader reads, copied from ModelOpt's export; anything missing or extra is an error."""
    names = expected_names(spec, fmt)
    missing = [name for name in names if name not in export.tensors]
    extra = sorted(set(export.tensors) - set(names))
    if missing or extra:
        raise PipelineError(f"ModelOpt's export does not match the loader facts for {fmt.quant_algo}: missing "
                            f"{missing[:3]}, unexpected {extra[:3]} ({len(missing)} missing, {len(extra)} unexpected)")
    return [copied(export, name) for name in names]


def int8_stream(source: SourceCheckpoint, spec: ModelSpec) -> list[OutTensor]:
    """INT8 weight-only, one linear at a time. High-precision tensors as ModelOpt leaves them in a bf16 load:
    bf16, except the router, which transformers keeps in fp32."""
    from pipeline.quantize.int8 import quantize_int8_rows
    from pipeline.quantize.raw import read_whole

    @lru_cache(maxsize=1)  # a linear's weight and weight_scale are written one after the other
    def quantized(prefix: str):
        name = f"{prefix}.weight"
        return quantize_int8_rows(name, read_whole(source.tensors[name]))

    shapes = {linear.role.prefix: linear.shape for linear in linears(spec)}
    tensors = []
    for name in expected_names(spec, FORMATS["int8-wo"]):
        linear = linear_of(name)
        if linear is None:
            tensors.append(copied(source, name, "F32" if role_of(name).kind == "router" else "BF16"))
        elif name.endswith(".weight"):
            tensors.append(computed(name, "I8", shapes[linear.prefix], lambda p=linear.prefix: quantized(p)[0]))
        else:
            tensors.append(computed(name, "F32", shapes[linear.prefix][:1], lambda p=linear.prefix: quantized(p)[1]))
    return tensors


def current_output(out: Path, fmt: QuantFormat, method: str, source: SourceCheckpoint) -> dict | None:
    """The manifest of `out` when it holds this conversion, complete: same source fingerprint, format, method,
    tool version and TensorRT-LLM pin, every recorded file at its size. Calibrated outputs never count: their
    prompts and the ModelOpt run are not part of the fingerprint."""
    if method == "modelopt" or not owns(out, QUANTIZED_CHECKPOINT):
        return None
    try:
        recorded = json.loads((out / metadata.MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    files = recorded.get("files") or {}
    complete = all((out / name).is_file() and (out / name).stat().st_size == record.get("bytes")
                   for name, record in files.items())
    same = metadata.recorded_made_from(recorded) == metadata.made_from(fmt, method, source.fingerprint())
    return recorded if same and complete and files else None


def quantize(request: QuantizeRequest) -> QuantizeResult:
    check_target(request.out, QUANTIZED_CHECKPOINT, request.force, [request.model_dir])  # before any work
    model_dir = Path(request.model_dir)
    config = read_config(model_dir / "config.json")
    spec = spec_from_config(config, source=str(model_dir / "config.json"))
    fmt = FORMATS["fp8"] if request.from_published else get_format(request.format)
    method = "published" if request.from_published else resolve_method(fmt, request.method)
    source = SourceCheckpoint(model_dir)
    kept = current_output(Path(request.out), fmt, method, source) if request.keep_current else None
    if kept:
        total = sum(record["bytes"] for record in kept["files"].values())
        return QuantizeResult(Path(request.out), fmt, method, kept["quantizer"], total, 0.0, status="up-to-date")
    if method == "published":
        published.published_block(config, str(model_dir / "config.json"))
    else:
        problems = source_accounting(source, spec)
        if problems:
            raise PipelineError(f"{problems[0]} ({len(problems)} problem(s); expected a BF16 Hunyuan checkpoint)")
    calibration_info, quantizer = None, STREAM_QUANTIZER
    start = time.monotonic()
    with replaced_directory(Path(request.out), QUANTIZED_CHECKPOINT, request.force, [request.model_dir]) as temp:
        export = temp / ".modelopt-export"
        if method == "modelopt":
            from pipeline.quantize import modelopt_run

            ids, calibration_info = calibration_ids(request)
            modelopt_run.calibrate_and_export(model_dir, fmt, ids, export)
            tensors, quantizer = from_export(SourceCheckpoint(export), spec, fmt), modelopt_run.modelopt_version()
        elif method == "stream":
            tensors = int8_stream(source, spec)
        else:
            tensors, quantizer = published.relabelled(source, spec), published.QUANTIZER
        files = write_tensors(tensors, temp, f"quantize {fmt.name}")
        shutil.rmtree(export, ignore_errors=True)
        exclude = metadata.exclude_modules(config)
        files["config.json"] = metadata.write_json(
            temp / "config.json", metadata.quantized_config(config, fmt, exclude, str(model_dir / "config.json")))
        files[metadata.HF_QUANT_CONFIG] = metadata.write_json(
            temp / metadata.HF_QUANT_CONFIG, metadata.hf_quant_config(fmt, exclude, quantizer))
        files.update(metadata.copy_side_files(model_dir, temp))
        report = check_directory(temp)
        if report.problems:
            raise PipelineError(f"the written checkpoint fails the layout check ({len(report.problems)} problem(s)), "
                                f"nothing was written: {report.problems[0]}")
        metadata.write_json(temp / metadata.MANIFEST, metadata.manifest(
            fmt=fmt, method=method, quantizer=quantizer, source_dir=model_dir, fingerprint=source.fingerprint(),
            calibration=calibration_info, files=files))
    total = sum(record["bytes"] for record in files.values())
    return QuantizeResult(Path(request.out), fmt, method, quantizer, total, time.monotonic() - start, calibration_info)
