"""Profile override flags shared by every stage: the one documented place where flags override YAML.

Each flag names the YAML key it overrides in its help and can also come from an environment variable
HUNYUAN_TRT_<KEY> (e.g. HUNYUAN_TRT_TP_SIZE=4).
"""

from __future__ import annotations

import json

import click

from pipeline.profiles import ENGINE_NAMES
from pipeline.weights_formats import FORMATS

# (flag, YAML key, click type, help)
PROFILE_OVERRIDES = (
    ("--tp", "tp_size", click.IntRange(min=1), "Tensor-parallel size"),
    ("--ep", "moe_ep_size", click.IntRange(min=1), "MoE expert-parallel size"),
    ("--moe-tp", "moe_tp_size", click.IntRange(min=1), "MoE tensor-parallel size"),
    ("--gpus", "num_gpus", click.IntRange(min=1), "GPUs per replica"),
    ("--max-batch-size", "max_batch_size", click.IntRange(min=1), "Max sequences per step"),
    ("--max-num-tokens", "max_num_tokens", click.IntRange(min=1), "Max tokens per step"),
    ("--max-seq-len", "max_seq_len", click.IntRange(min=1), "Max prompt + output tokens per sequence"),
    ("--kv-fraction", "kv_cache_free_gpu_memory_fraction", float, "Share of free GPU memory for the KV cache"),
    ("--kv-cache-dtype", "kv_cache_dtype", click.Choice(["auto", "bf16", "fp8"]), "KV-cache dtype"),
    ("--weights", "weights", click.Choice(list(FORMATS)), "Weights format of the served directory"),
    ("--engine", "engine", click.Choice(ENGINE_NAMES), "Serving engine (pipeline/engines/)"),
    ("--backend", "backend", click.Choice(["pytorch", "tensorrt", "cpu"]), "Serving backend"),
    ("--model-cls-file", "model_cls_file", str, "backend tensorrt: model class file for trtllm-build"),
    ("--model-cls-name", "model_cls_name", str, "backend tensorrt: model class name for trtllm-build"),
)


def profile_options(command):
    """Add --profile and every override flag to a click command (kwargs `profile` and `overrides`)."""
    for flag, key, kind, text in reversed(PROFILE_OVERRIDES):
        command = click.option(flag, key, type=kind, default=None, envvar=f"HUNYUAN_TRT_{key.upper()}",
                               help=f"{text}; overrides YAML key `{key}`.")(command)
    command = click.option("--profile", "-p", required=True, envvar="HUNYUAN_TRT_PROFILE",
                           help="Profile name from engine_configs/ or a path to a YAML file.")(command)
    return command


def split_overrides(kwargs: dict) -> dict:
    """Pop the override flags out of a command's kwargs: {yaml_key: value} for those given."""
    return {key: value for _, key, _, _ in PROFILE_OVERRIDES if (value := kwargs.pop(key, None)) is not None}


def emit(data, as_json: bool, human) -> None:
    """Print `data` as JSON, or through the `human` formatter."""
    click.echo(json.dumps(data, indent=2, default=str) if as_json else human(data))
