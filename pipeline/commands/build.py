"""`hunyuan-trt build`: check the profile loads at the pin and fits, then write the serve bundle (or refuse with
the reason)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.commands.options import profile_options, split_overrides
from pipeline.errors import PipelineError


@click.command()
@profile_options
@click.option("--model-dir", default=None, envvar="MODEL_DIR",
              help="HF directory (pytorch, cpu) in the profile's weights format (the quantize output for "
                   "fp8/int8-wo profiles) or converted TensorRT-LLM checkpoint (tensorrt). Default: what "
                   "`make download` fetched, or for fp8/int8-wo profiles what `hunyuan-trt quantize --profile` "
                   "made of it (`quantize --profile NAME --where`); the embedded hunyuan-tiny for cpu-tiny.")
@click.option("--revision", default=None,
              help="Without --model-dir: the commit of the default download (default: the pinned one).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Bundle directory to write.")
@click.option("--model-on-target", is_flag=True,
              help="--model-dir is where the serving machine sees the checkpoint; do not check it here.")
@click.option("--force", is_flag=True,
              help="Replace --out if it exists (never /, home, the current directory or the model directory).")
def build(profile, model_dir, revision, out, model_on_target, force, **kwargs):
    """Write the engine's config YAML, argv.json, serve.sh and bundle.json for PROFILE (--engine picks the engine)."""
    from pipeline.bundle import bundle_files, write_bundle
    from pipeline.download import require_served_dir
    from pipeline.engines.registry import engine_profile

    overrides = split_overrides(kwargs)
    if model_dir is None:
        _, served, spec = engine_profile(profile, overrides)
        model_dir = str(require_served_dir(profile, served, spec, revision))
        click.echo(f"--model-dir not given: {model_dir} (the profile's default)", err=True)
    elif revision:
        raise PipelineError(f"--revision {revision}: picks the default download; not with --model-dir")
    files = bundle_files(profile, overrides, model_dir, model_on_target)
    write_bundle(files, out, force, model_dir)
    meta = json.loads(files["bundle.json"])
    click.echo(f"bundle for {meta['profile']} ({meta['engine']['label']}, {meta['backend']}) -> {out}")
    click.echo(f"  plan: {meta['verdict']}")
    click.echo(f"  loads at the pin: {meta['support']['verdict']} ({meta['support']['basis']})")
    click.echo(f"  weights: {meta['weights_format']['name']} (checked: {meta['weights_format']['checked']})")
    click.echo(f"  model: {meta['served_model_dir']}  served as {meta['served_model_name']}")
    for tool in meta["tools_missing_here"]:
        click.echo(f"  note: {tool} is not installed here; the bundle is written anyway - run serve.sh where "
                   f"{meta['engine']['label']} is installed (the GPU image)")
