"""`hunyuan-trt convert`: HF Hunyuan weights → TensorRT-LLM unified checkpoint with TP/EP rank shards."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.errors import PipelineError


def _positive(ctx, param, value):
    if value is not None and value < 1:
        raise PipelineError(f"--{param.name.replace('_', '-')}: expected a positive integer, got {value}")
    return value


@click.command("convert")
@click.option("--model-dir", required=True, type=click.Path(path_type=Path),
              help="Hugging Face checkpoint directory (config.json + safetensors shards); overrides the profile's "
                   "hf_config for the model checks.")
@click.option("--profile", required=True, help="Profile name in engine_configs/ or a YAML path; gives the parallel layout.")
@click.option("--tp", type=int, callback=_positive, help="Tensor-parallel size; overrides YAML key tp_size (and num_gpus).")
@click.option("--ep", type=int, callback=_positive, help="MoE expert-parallel size; overrides YAML key moe_ep_size.")
@click.option("--moe-tp", "moe_tp", type=int, callback=_positive,
              help="MoE tensor-parallel size; overrides YAML key moe_tp_size (derived as tp/ep when only --ep is given).")
@click.option("--workers", type=int, callback=_positive, help="Ranks written in parallel [default: min(world size, CPUs)].")
@click.option("--force", is_flag=True, help="Rewrite even when --out holds an up-to-date checkpoint of this source, "
              "and replace an --out that is not a checkpoint of ours (never /, home, the current or the model directory).")
@click.option("--dry-run", is_flag=True, help="Print every output tensor (rank, name, shape, dtype) and write nothing.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output checkpoint directory (replaced atomically).")
def convert_cmd(model_dir, profile, tp, ep, moe_tp, workers, force, dry_run, out):
    """Write config.json, rank{N}.safetensors and manifest.json for the profile's TP/EP layout, streaming."""
    from pipeline.checkpoint.convert import ConvertRequest, convert, resolve
    from pipeline.checkpoint.source import SourceCheckpoint
    from pipeline.checkpoint.tensor_plan import build_plan

    request = ConvertRequest(model_dir, profile, out, tp, ep, moe_tp, workers, force)
    if dry_run:
        _, spec, layout, notes = resolve(request)
        _print_notes(notes)
        plan = build_plan(spec, layout, SourceCheckpoint(model_dir))
        for entry in plan.describe():
            click.echo(f"rank{entry['rank']} {entry['name']} {entry['dtype']} {json.dumps(entry['shape'])}")
        click.echo(f"dry run: {len(plan.describe())} tensors, {plan.total_bytes / 1e9:.3f} GB; nothing written")
        return
    result = convert(request)
    _print_notes(result.notes)
    layout = result.plan.layout
    world = f"world_size={layout.world_size} (tp={layout.tp}, moe_tp={layout.moe_tp}, moe_ep={layout.moe_ep})"
    if result.status == "up-to-date":
        click.echo(f"{out}: up to date ({world}, same source and plan); nothing to do, --force rewrites")
        return
    gigabytes = result.plan.total_bytes / 1e9
    click.echo(f"wrote {out}: {world}, {gigabytes:.3f} GB in {result.seconds:.1f} s "
               f"({gigabytes / max(result.seconds, 1e-9):.2f} GB/s); manifest {out / 'manifest.json'}")


def _print_notes(notes):
    for note in notes:
        click.echo(f"note: {note}", err=True)
