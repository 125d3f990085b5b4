"""`hunyuan-trt bundle-status --profile NAME [--engine E] --bundle DIR`: exit 0 when DIR holds a bundle built
from profile NAME exactly as it resolves now on that engine (revision included) for the engine's pinned
release, else exit 1 with the reason. The model-prep Job runs it first and skips every step for an
up-to-date bundle."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipeline.profiles import ENGINE_NAMES


def staleness(profile_name: str, bundle: Path, engine: str | None = None) -> str | None:
    """Why the bundle at `bundle` is not current for `profile_name` on `engine` (default: the profile's; None: it is).
    The bundle records the profile in its engine's checkpoint terms, so that is what it is compared with."""
    from pipeline.engines.registry import engine_profile

    try:
        meta = json.loads((bundle / "bundle.json").read_text())
    except (OSError, ValueError) as error:
        return f"no readable bundle.json ({error.__class__.__name__})"
    server, profile, _ = engine_profile(profile_name, {"engine": engine} if engine else None)
    expected = {"resolved_profile": (meta.get("resolved_profile"), profile.model_dump(mode="json")),
                "engine": (meta.get("engine", {}).get("label"), server.label())}
    changed = [key for key, (found, wanted) in expected.items() if found != wanted]
    return f"{', '.join(changed)} changed" if changed else None


@click.command("bundle-status")
@click.option("--profile", required=True, help="Profile name or YAML path the bundle must be built from.")
@click.option("--engine", type=click.Choice(ENGINE_NAMES), default=None, envvar="HUNYUAN_TRT_ENGINE",
              help="The engine the bundle serves with (default: the profile's YAML key `engine`).")
@click.option("--bundle", required=True, type=click.Path(path_type=Path), help="Bundle directory to check.")
def bundle_status(profile, engine, bundle):
    """Exit 0 if BUNDLE is up to date for PROFILE (on ENGINE), 1 (with the reason) if it must be rebuilt."""
    reason = staleness(profile, bundle, engine)
    click.echo(f"{bundle}: {'up to date' if reason is None else 'rebuild: ' + reason}")
    sys.exit(0 if reason is None else 1)
