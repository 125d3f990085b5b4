"""`hunyuan-trt smoke`: PASS/FAIL checks against a running endpoint; exit code = number of failures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command()
@click.option("--url", required=True, envvar="HUNYUAN_TRT_URL", help="Base URL, e.g. http://127.0.0.1:8080.")
@click.option("--api-key", default=None, envvar="HUNYUAN_TRT_API_KEY",
              help="Bearer token (prefer the HUNYUAN_TRT_API_KEY environment variable).")
@click.option("--model", default=None, help="Model id to request (default: the first one /v1/models lists).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the results here.")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds to keep retrying /health while the server starts.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds per request.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=2048, show_default=True,
              help="max_tokens per chat request (slow thinking needs room for reasoning and answer).")
def smoke(url, api_key, model, json_path, wait_s, timeout, max_tokens):
    """Health, models, slow and fast thinking (plain and streamed) and a tool call."""
    from pipeline.smoke import format_check, run_smoke, summary

    checks = run_smoke(url, api_key, model, wait_s, timeout, max_tokens, report=lambda c: click.echo(format_check(c)))
    result = summary(url, checks)
    click.echo(f"{result['passed']} passed, {result['failed']} failed")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(result["failed"])
