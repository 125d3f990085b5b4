"""`hunyuan-trt render`: Kubernetes overlays from the hardware profiles."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.errors import PipelineError, did_you_mean
from pipeline.profiles import ENGINE_NAMES


@click.group()
def render():
    """Render deployment manifests from the hardware profiles."""


@render.command("k8s")
@click.option("--profile", "profile", required=True,
              help="Profile name from engine_configs/ (the images carry that folder, so no paths here)")
@click.option("--engine", type=click.Choice(ENGINE_NAMES), default=None, envvar="HUNYUAN_TRT_ENGINE",
              help="Serving engine (default: the profile's YAML key `engine`); another engine's overlay is "
                   "k8s/overlays/<profile>-<engine>, refused where the profile does not load there.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Overlay directory to write (default: k8s/overlays/<profile>[-<engine>]); replaced whole")
@click.option("--force", is_flag=True,
              help="Replace --out even if it is not an overlay written by hunyuan-trt (never /, home or the current directory).")
def render_k8s(profile: str, engine: str | None, out: Path | None, force: bool):
    """Write the kustomize overlay of one profile on one engine: GPUs, node affinity, probes, metrics, autoscaling
    signal, cache size, images."""
    from pipeline.deploy.render import K8S_ROOT, write_overlay
    from pipeline.deploy.settings import deployment_for
    from pipeline.profiles import profile_names

    if profile not in profile_names():
        raise PipelineError(f"--profile: unknown profile '{profile}'{did_you_mean(profile, profile_names())}; "
                            f"available: {', '.join(profile_names())}")
    d = deployment_for(profile, engine)
    target = out or K8S_ROOT / "overlays" / d.name
    write_overlay(d, target, force=force)
    click.echo(f"wrote {target} (build it with: kubectl kustomize {target})")


@render.command("all")
@click.option("--check", is_flag=True,
              help="Write nothing: compare committed overlays and golden files with a fresh render, run the policies")
def render_all_cmd(check: bool):
    """Every profile's overlay and its golden `kubectl kustomize` output under k8s/ (what `make k8s` runs)."""
    from pipeline.deploy.render import policy_violations, render_all, stale_files

    if check:
        stale = stale_files()
        if stale:
            raise PipelineError(f"k8s: {len(stale)} file(s) differ from a fresh render ({', '.join(stale)}); "
                                "run `make k8s` and commit the result")
        broken = policy_violations()
        if broken:
            raise PipelineError(f"k8s: {len(broken)} policy violation(s): {'; '.join(broken)}")
        click.echo("k8s: overlays and golden files match a fresh render and meet every policy")
        return
    for name in render_all():
        click.echo(f"rendered k8s/overlays/{name} -> k8s/rendered/{name}.yaml")
