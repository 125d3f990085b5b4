"""`hunyuan-trt tiny train|eval`: build and measure the embedded hunyuan-tiny model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from pipeline.model import TINY_MODEL_DIR

DIR_OPTION = click.option("--model-dir", type=click.Path(path_type=Path), default=TINY_MODEL_DIR,
                          show_default=True, help="hunyuan-tiny model directory")


@click.group("tiny")
def tiny():
    """The embedded tiny Hunyuan (CPU-trained on addition and tool calls)."""


@tiny.command("train")
@DIR_OPTION
@click.option("--steps", type=click.IntRange(min=1), default=None, help="training steps (default: recipe)")
@click.option("--seed", type=int, default=0, show_default=True, help="data and init seed")
@click.option("--force", is_flag=True, help="replace MODEL_DIR even if it is not a hunyuan-tiny written by this command")
def train_cmd(model_dir: Path, steps: int | None, seed: int, force: bool):
    """Write config, tokenizer, chat template and trained weights into MODEL_DIR (replaced atomically)."""
    from pipeline.tiny.train import TrainConfig, build

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = TrainConfig(seed=seed) if steps is None else TrainConfig(seed=seed, steps=steps)
    record = build(model_dir, cfg, force)
    click.echo(f"trained {record['params']:,} params in {record['wall_s']} s "
               f"(final loss {record['history'][-1]['loss']}) -> {model_dir}")


@tiny.command("eval")
@DIR_OPTION
@click.option("--prompts", type=click.IntRange(min=1), default=200, show_default=True,
              help="held-out prompts per group")
@click.option("--seed", type=int, default=0, show_default=True, help="held-out prompt seed")
def eval_cmd(model_dir: Path, prompts: int, seed: int):
    """Measure format compliance and accuracy; write eval.json and the model card's table."""
    from pipeline.tiny.evaluate import card_table, evaluate, write_results

    results = evaluate(model_dir, prompts, seed)
    write_results(model_dir, results)
    click.echo(card_table(results), nl=False)
    click.echo(json.dumps({g: r["failures"] for g, r in results["groups"].items() if r["failures"]},
                          indent=1, ensure_ascii=False))
