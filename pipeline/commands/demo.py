"""`hunyuan-trt demo`: the whole pipeline on the embedded tiny model behind the smg gateway (`make demo`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from pipeline.errors import PipelineError
from pipeline.model import TINY_MODEL_DIR
from pipeline.procs import stop_signals_interrupt


@click.command("demo")
@click.option("--model-dir", type=click.Path(path_type=Path), default=TINY_MODEL_DIR, show_default=True,
              help="Hugging Face checkpoint to run the pipeline on")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("workspace/demo"), show_default=True,
              help="Where the checkpoint, bundle and logs go")
def demo(model_dir: Path, workdir: Path):
    """inspect/plan -> convert tp2/ep2 -> verify -> build -> 2 replicas + adapters -> smg -> smoke -> stop.

    The gateway's API key comes from $HUNYUAN_TRT_API_KEY, or a random one is made for this run.
    Exit code 0 only when every stage passed. Ctrl-C, SIGTERM and SIGHUP stop every child and report.
    """
    from pipeline.demo import run_demo, summary_table
    from pipeline.gateway import API_KEY_ENV

    if not (model_dir / "config.json").is_file() or not any(model_dir.glob("*.safetensors")):
        raise PipelineError(f"{model_dir}: expected config.json and *.safetensors (the embedded model comes "
                            "from `make tiny-model`)")
    start = time.monotonic()

    def progress(result):
        click.echo(f"[{time.monotonic() - start:6.1f}s] {result.status:<7} {result.name}: {result.detail}")

    with stop_signals_interrupt():  # they unwind the demo's ExitStack, which stops every child process
        results = run_demo(model_dir, workdir, os.environ.get(API_KEY_ENV), progress)
    click.echo("\n" + summary_table(results, time.monotonic() - start))
    click.echo(f"logs: {workdir / 'logs'}")
    raise SystemExit(0 if all(r.status == "PASS" for r in results) else 1)
