"""`hunyuan-trt bundle-status --profile NAME --bundle DIR`: exit 0 when DIR holds a bundle built from
profile NAME exactly as it resolves now (revision included) for the pinned TensorRT-LLM, else exit 1 with
the reason. The model-prep Job runs it first and skips every step for an up-to-date bundle."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def staleness(profile_name: str, bundle: Path) -> str | None:
    """Why the bundle at `bundle` is not current for `profile_name` (None: it is)."""
    from pipeline.profiles import load_profile
    from pipeline.trtllm import trtllm_version

    try:
        meta = json.loads((bundle / "bundle.json").read_text())
    except (OSError, ValueError) as error:
        return f"no readable bundle.json ({error.__class__.__name__})"
    profile, _ = load_profile(profile_name)
    expected = {"resolved_profile": profile.model_dump(mode="json"), "trtllm_version": trtllm_version()}
    changed = [key for key, value in expected.items() if meta.get(key) != value]
    return f"{', '.join(changed)} changed" if changed else None


@click.command("bundle-status")
@click.option("--profile", required=True, help="Profile name or YAML path the bundle must be built from.")
@click.option("--bundle", required=True, type=click.Path(path_type=Path), help="Bundle directory to check.")
def bundle_status(profile, bundle):
    """Exit 0 if BUNDLE is up to date for PROFILE, 1 (with the reason) if it must be rebuilt."""
    reason = staleness(profile, bundle)
    click.echo(f"{bundle}: {'up to date' if reason is None else 'rebuild: ' + reason}")
    sys.exit(0 if reason is None else 1)
