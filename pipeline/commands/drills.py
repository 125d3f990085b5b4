"""`hunyuan-trt drills`: run the fault drills, print one table (drill, goal, measured, result), write it.

Exit 0 when every goal is met, 1 when one is missed, 2 on bad input.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import click

from pipeline.cpu_backend.surfaces import SURFACES
from pipeline.drills.suite import DRILLS, SURFACE_DRILLS, Context, run_drills
from pipeline.drills.table import markdown, write_report
from pipeline.errors import PipelineError, did_you_mean
from pipeline.model import TINY_MODEL_DIR
from pipeline.procs import stop_signals_interrupt
from pipeline.topology import check_model_dir


def parse_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in DRILLS:
            raise PipelineError(f"--only '{name}': unknown drill{did_you_mean(name, DRILLS)}; "
                                f"expected some of {', '.join(DRILLS)}")
    return names or list(DRILLS)


def check_surface(names: list[str], surface: str | None) -> None:
    others = [name for name in names if name not in SURFACE_DRILLS]
    if surface and others:
        raise PipelineError(f"--surface {surface}: only {', '.join(SURFACE_DRILLS)} presents an engine surface, "
                            f"not {', '.join(others)}; add --only {','.join(SURFACE_DRILLS)}")


@click.command()
@click.option("--only", default=",".join(DRILLS), show_default=True, help="Comma-separated drills to run.")
@click.option("--short", is_flag=True, help="The short form that `make test` runs (fewer kills, shorter load).")
@click.option("--model-dir", type=click.Path(path_type=Path), default=TINY_MODEL_DIR,
              show_default="the embedded hunyuan-tiny", help="Model the CPU replicas serve.")
@click.option("--surface", type=click.Choice(SURFACES), default=None,
              help="The engine surface (health path, metrics) the replica-kill drill's CPU replicas present "
                   "(docs/engines.md); default: the stand-in's own.")
@click.option("--report", type=click.Path(path_type=Path), default=None, help="Also write the table here (markdown).")
@click.option("--work", type=click.Path(path_type=Path), default=None,
              help="Keep logs and scratch files here (default: a temporary directory, kept when a drill fails).")
def drills(only, short, model_dir, surface, report, work):
    """Replica kill behind smg, converter crash, bad-input corpus, gateway auth, hostile input and orphans, with goals.

    Ctrl-C, SIGTERM and SIGHUP stop every process a drill started."""
    names = parse_names(only)
    check_surface(names, surface)
    check_model_dir(model_dir)
    scratch = Path(work or tempfile.mkdtemp(prefix="hunyuan-drills-"))
    try:
        with stop_signals_interrupt():
            results = run_drills(names, Context(model_dir, scratch, short, surface), click.echo)
    except BaseException:
        click.echo(f"drills: every child's log is kept in {scratch}", err=True)
        raise
    passed = all(result.passed for result in results)
    if passed and not work:
        shutil.rmtree(scratch, ignore_errors=True)
    elif not passed:
        click.echo(f"drills: every child's log is kept in {scratch}", err=True)
    click.echo(markdown(results))
    if report:
        write_report(results, report, "hunyuan-trt " + shlex.join(sys.argv[1:]))
        click.echo(f"written: {report}")
    if not passed:
        sys.exit(1)
