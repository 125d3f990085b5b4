"""`hunyuan-trt download --profile NAME`: the profile's weights at a pinned commit into the default model
directory (`pipeline.download`); `--where` prints that directory, or says how to fetch what is missing."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.profiles import ENGINE_NAMES


@click.command()
@click.option("--profile", "-p", required=True, envvar="HUNYUAN_TRT_PROFILE",
              help="Profile name from engine_configs/ or a path to a YAML file; its model_repo is fetched.")
@click.option("--engine", type=click.Choice(ENGINE_NAMES), default=None, envvar="HUNYUAN_TRT_ENGINE",
              help="Fetch the checkpoint this engine serves for the profile (e.g. vllm on a100x2: the published "
                   "GPTQ-Int4); overrides YAML key `engine`.")
@click.option("--revision", default=None, envvar="HUNYUAN_TRT_REVISION",
              help="Commit to fetch (default: the profile's `revision`, else the commit pinned in "
                   "pipeline/data/hf_revisions.json); a branch such as main works, with a warning.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Directory to fill (default: $HUNYUAN_TRT_MODELS or ./models, then <repo name>@<commit>).")
@click.option("--force", is_flag=True, help="Replace an existing --out that is not a download of ours.")
@click.option("--where", is_flag=True,
              help="Download nothing: print the model directory build-engine uses when MODEL_DIR is not given, "
                   "or fail (exit 2) with the command that fetches it and its size.")
def download(profile, engine, revision, out, force, where):
    """Fetch PROFILE's Hugging Face checkpoint (resumable, disk space checked first, sizes checked at the end)."""
    from pipeline.download import download as fetch
    from pipeline.download import require_model_dir
    from pipeline.engines.registry import engine_profile

    _, resolved, spec = engine_profile(profile, {"engine": engine} if engine else None)
    if where:
        click.echo(require_model_dir(profile, resolved, spec, revision))
        return
    result = fetch(resolved, revision, out, force)
    click.echo(f"{result.status}: {resolved.model_repo}@{result.commit} -> {result.directory} "
               f"({result.files} files, {result.total_bytes / 1e9:.2f} GB, every size checked against the hub)")
