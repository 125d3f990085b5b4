"""`hunyuan-trt prep --profile NAME`: fill the model cache at /models the way the Kubernetes model-prep Job
does (docker compose's model-prep service runs it): the Job's own steps (`pipeline.deploy.prep`), one after
the other, stopping at once when the bundle is already current and at the first step that fails."""

from __future__ import annotations

import shlex
import subprocess

import click


@click.command("prep")
@click.option("--profile", "-p", required=True, envvar="HUNYUAN_TRT_PROFILE", help="Profile name from engine_configs/.")
@click.option("--dry-run", is_flag=True, help="Print each step's command line; run nothing.")
def prep(profile, dry_run):
    """Check the bundle, download, inspect, quantize (when the profile's weights need it) and build, as the
    model-prep Job does; the same directories under /models."""
    from pipeline.deploy.prep import prep_steps
    from pipeline.deploy.settings import deployment_for
    from pipeline.errors import PipelineError

    for name, spec in prep_steps(deployment_for(profile)):
        click.echo(f"[{name}] {shlex.join(spec['argv'])}", err=True)
        if dry_run:
            continue
        code = subprocess.call(spec["argv"])
        if spec.get("gate"):
            if code == 0:
                return  # the bundle is current: nothing to do
        elif code:
            raise PipelineError(f"prep step {name}: `{shlex.join(spec['argv'])}` exited with {code}")
