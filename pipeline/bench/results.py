"""Read aiperf's JSON exports (schema 1.x): one `profile_export_aiperf.json` per concurrency level.

A sweep writes one directory per cell (`concurrency_4__requests_32/`); a single level writes the export at the
top of the artifact directory. Only the per-cell exports are read: aiperf's console shows the last cell only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import PipelineError

EXPORT_NAME = "profile_export_aiperf.json"
SUPPORTED_SCHEMA = "1."
# A cell did not measure a token stream when its visible output averages below this share of the requested
# OSL, or when more than this share of its answers arrived as one visible chunk (TTFT = latency, "ITL 0");
# its report row is flagged instead.
VISIBLE_FLOOR = 0.5
ONE_CHUNK_CEILING = 0.5


@dataclass(frozen=True)
class Cell:
    """aiperf's measurements at one concurrency level: metric tag -> {avg, p50, p90, p99, ...}."""

    concurrency: int
    metrics: dict = field(repr=False)
    aiperf_version: str = ""
    config: dict = field(default_factory=dict, repr=False)  # aiperf's input_config (target, workload, SLOs)

    def stat(self, tag: str, stat: str = "avg") -> float | None:
        value = self.metrics.get(tag, {}).get(stat)
        return float(value) if value is not None else None


def _concurrency(export: dict, path: Path) -> int:
    phases = (export.get("input_config") or {}).get("phases") or []
    for phase in phases:
        if phase.get("kind") == "profiling" and phase.get("concurrency"):
            return int(phase["concurrency"])
    raise PipelineError(f"{path}: no profiling phase with a concurrency in input_config.phases")


def read_export(path: Path) -> Cell:
    try:
        export = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(export, dict):
        raise PipelineError(f"{path}: expected a JSON object")
    schema = str(export.get("schema_version", ""))
    if not schema.startswith(SUPPORTED_SCHEMA):
        raise PipelineError(f"{path}: schema_version '{schema}' not supported; expected {SUPPORTED_SCHEMA}x "
                            "(aiperf 0.13)")
    metrics = {key: value for key, value in export.items() if isinstance(value, dict) and "unit" in value}
    return Cell(_concurrency(export, path), metrics, str(export.get("aiperf_version", "")),
                export.get("input_config") or {})


def export_paths(artifact_dir: Path) -> list[Path]:
    artifact_dir = Path(artifact_dir)
    top = artifact_dir / EXPORT_NAME
    return [top] if top.is_file() else sorted(artifact_dir.glob(f"*/{EXPORT_NAME}"))


def load_cells(artifact_dir: Path) -> list[Cell]:
    """Every concurrency level of one aiperf run, sorted by concurrency."""
    paths = export_paths(artifact_dir)
    if not paths:
        raise PipelineError(f"{artifact_dir}: no {EXPORT_NAME} (at the top or one directory down); "
                            "is this an aiperf --output-artifact-dir?")
    return sorted((read_export(path) for path in paths), key=lambda cell: cell.concurrency)


def workload_of(cell: Cell) -> dict:
    """Target and request shape as aiperf recorded them: url, model, isl, osl, goodput SLOs."""
    config = cell.config
    endpoint = config.get("endpoint") or {}
    models = (config.get("models") or {}).get("items") or [{}]
    prompts = ((config.get("datasets") or [{}])[0].get("prompts")) or {}
    slos = config.get("slos") or {}
    return {"url": ", ".join(endpoint.get("urls") or []), "model": models[0].get("name", ""),
            "isl": int((prompts.get("isl") or {}).get("mean", 0)), "osl": int((prompts.get("osl") or {}).get("mean", 0)),
            "goodput": " ".join(f"{tag}:{value:g}" for tag, value in slos.items())}


def visible_osl(cell: Cell) -> float | None:
    """Mean output tokens per request as the client saw them; None when aiperf counted the server's `usage`
    (which includes what the adapter strips or drops) instead of tokenizing the received text."""
    if (cell.config.get("endpoint") or {}).get("use_server_token_count", False):
        return None
    return cell.stat("output_sequence_length")


def one_chunk_share(cell: Cell) -> float | None:
    """Share of requests whose visible output came as a single chunk (aiperf records a time to second token
    only for requests with a second visible response)."""
    requests = cell.stat("request_count")
    if not requests:
        return None
    return 1 - (cell.metrics.get("time_to_second_token") or {}).get("count", 0) / requests


def stream_flag(cell: Cell) -> str:
    """Why this cell's ITL and token throughput do not describe a token stream; '' when they do."""
    visible, requested = visible_osl(cell), workload_of(cell)["osl"]
    if visible is not None and requested > 0 and visible < VISIBLE_FLOOR * requested:
        return f"the client saw {visible:.1f} of the {requested} requested output tokens per request"
    share = one_chunk_share(cell)
    if share is not None and share > ONE_CHUNK_CEILING:
        return f"{share:.0%} of the answers arrived as one visible chunk"
    return ""
