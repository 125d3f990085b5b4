"""The convert stage end to end: resolve the layout from profile + flags, plan, then write atomically
(`pipeline.outputs`: an existing --out that is not a checkpoint of ours is replaced only with force)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.checkpoint.layout import Layout
from pipeline.checkpoint.manifest import build_manifest, file_record, is_up_to_date, write_manifest
from pipeline.checkpoint.source import SourceCheckpoint
from pipeline.checkpoint.tensor_plan import CheckpointPlan, build_plan
from pipeline.checkpoint.trt_config import checkpoint_config
from pipeline.checkpoint.writer import write_ranks
from pipeline.model import ModelSpec
from pipeline.outputs import CHECKPOINT, check_target, replaced_directory
from pipeline.profiles import Profile, load_profile, profile_path, resolve_raw


@dataclass(frozen=True)
class ConvertRequest:
    model_dir: Path
    profile: str
    out: Path
    tp: int | None = None
    ep: int | None = None
    moe_tp: int | None = None
    workers: int | None = None
    force: bool = False


@dataclass
class ConvertResult:
    out: Path
    status: str  # "written" or "up-to-date"
    plan: CheckpointPlan
    seconds: float = 0.0
    files: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def parallel_overrides(raw: dict, tp: int | None, ep: int | None, moe_tp: int | None) -> tuple[dict, list[str]]:
    """Profile overrides from the flags; a missing MoE size is derived the way TensorRT-LLM derives it."""
    tp_final = tp or int(raw.get("tp_size", 1))
    overrides: dict = {"tp_size": tp, "moe_ep_size": ep, "moe_tp_size": moe_tp}
    notes = []
    if tp:
        overrides["num_gpus"] = tp * int(raw.get("pp_size", 1))
        notes.append(f"num_gpus={overrides['num_gpus']} because --tp {tp} (each GPU holds one rank)")
    if ep and not moe_tp and tp_final % ep == 0:
        overrides["moe_tp_size"] = tp_final // ep
        notes.append(f"moe_tp_size={tp_final // ep} because moe_tp * moe_ep must equal tp={tp_final}")
    elif moe_tp and not ep and tp_final % moe_tp == 0:
        overrides["moe_ep_size"] = tp_final // moe_tp
        notes.append(f"moe_ep_size={tp_final // moe_tp} because moe_tp * moe_ep must equal tp={tp_final}")
    elif tp and not ep and not moe_tp:
        profile_ep = int(raw.get("moe_ep_size", 1))
        kept = profile_ep if tp % profile_ep == 0 else 1
        overrides.update(moe_ep_size=kept, moe_tp_size=tp // kept)
        notes.append(f"moe_ep_size={kept}, moe_tp_size={tp // kept} because --tp {tp} changed the MoE world")
    return overrides, notes


def resolve(request: ConvertRequest) -> tuple[Profile, ModelSpec, Layout, list[str]]:
    raw = resolve_raw(profile_path(request.profile))
    overrides, notes = parallel_overrides(raw, request.tp, request.ep, request.moe_tp)
    overrides["hf_config"] = str(Path(request.model_dir) / "config.json")
    profile, spec = load_profile(request.profile, overrides)
    return profile, spec, Layout(profile.tp_size, profile.moe_tp_size, profile.moe_ep_size), notes


def convert(request: ConvertRequest) -> ConvertResult:
    check_target(request.out, CHECKPOINT, request.force, [request.model_dir])  # before any work
    profile, spec, layout, notes = resolve(request)
    config = (json.dumps(checkpoint_config(spec, layout, profile.kv_dtype), indent=2) + "\n").encode()
    source = SourceCheckpoint(request.model_dir)
    plan = build_plan(spec, layout, source)
    fingerprint, digest = source.fingerprint(), plan.digest()
    out = Path(request.out)
    if not request.force and is_up_to_date(out, fingerprint=fingerprint, plan_digest=digest, config=config):
        return ConvertResult(out, "up-to-date", plan, notes=notes)
    start = time.monotonic()
    with replaced_directory(out, CHECKPOINT, request.force, [request.model_dir]) as temp:
        (temp / "config.json").write_bytes(config)
        files = {"config.json": file_record(temp / "config.json")}
        files.update(write_ranks(plan, source, temp,
                                   request.workers or min(layout.world_size, os.cpu_count() or 1)))
        write_manifest(temp, build_manifest(source_dir=request.model_dir, fingerprint=fingerprint,
                                            plan_digest=digest, mapping=layout.to_mapping(),
                                            profile=request.profile, files=files))
    return ConvertResult(out, "written", plan, time.monotonic() - start, files, notes)
