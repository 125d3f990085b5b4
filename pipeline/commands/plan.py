"""`hunyuan-trt plan`: will this profile load and fit? Exit 2 with the reason when it does not: one line when it
does not load at the pin, the plan and then the shortfall when it does not fit."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.commands.options import emit, profile_options, split_overrides
from pipeline.errors import PipelineError

ROWS = (
    ("profile", "profile"), ("derived name", "slug"), ("GPUs", "num_gpus"), ("accelerator", "accelerator"),
    ("engine", "engine"), ("checkpoint served", "checkpoint"), ("loads at the pin", "support"),
    ("memory / GPU (GiB)", "memory_gib_per_gpu"), ("weights / GPU (GiB)", "weights_gib_per_gpu"),
    ("  quantized linears", "weights_quantized_gib_per_gpu"),
    ("  kept high precision", "weights_high_precision_gib_per_gpu"),
    ("  in each format", "weights_gib_per_gpu_by_format"),
    ("whole model, one device (GiB)", "model_weights_gib_by_format"),
    ("reserve / GPU (GiB)", "reserve_gib_per_gpu"), ("  of which activations", "activation_gib_per_gpu"),
    ("KV budget / GPU (GiB)", "kv_budget_gib_per_gpu"), ("KV bytes / token / GPU", "kv_bytes_per_token_per_gpu"),
    ("engine memory setting", "engine_memory_setting"), ("KV token capacity", "kv_token_capacity"), ("max_seq_len", "max_seq_len"),
    ("max_seq_len sequences in KV", "concurrent_max_len_sequences"), ("checkpoint (GB)", "checkpoint_gb"),
    ("start-up estimate (s)", "startup_estimate_s"), ("batch-1 decode ceiling (tok/s)", "decode_ceiling_batch1_tok_s"),
)


def _value(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {item}" for key, item in value.items())
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def format_plan(data: dict) -> str:
    width = max(len(label) for label, _ in ROWS)
    lines = [f"{label:<{width}}  {_value(data[key])}" for label, key in ROWS]
    return "\n".join([*lines, f"{'verdict':<{width}}  {data['verdict']}"])


@click.command()
@profile_options
@click.option("--model-config", type=click.Path(dir_okay=True), default=None,
              help="Plan against this config.json or model dir; overrides YAML key `hf_config`.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan(profile, model_config, as_json, **kwargs):
    """Whether the profile loads on its engine's pin (--engine; TensorRT-LLM: the support matrix), the checkpoint
    served, per-GPU weights, reserve, KV bytes/token, the engine's memory setting, KV capacity and the fit verdict."""
    from pipeline.engines.registry import engine_profile
    from pipeline.memory_plan import make_plan

    overrides = split_overrides(kwargs) | ({"hf_config": model_config} if model_config else {})
    engine, resolved, spec = engine_profile(profile, overrides)
    verdict = engine.require_loads(Path(profile).stem, resolved)
    result = make_plan(Path(profile).stem, resolved, spec)
    emit(result.to_dict() | {"engine": engine.label(), "checkpoint": f"{resolved.weights} ({resolved.model_repo})",
                             "support": f"{verdict.verdict}: {verdict.basis}",
                             "engine_memory_setting": engine.memory_setting(resolved, result)},
         as_json, format_plan)
    if not result.fits:
        raise PipelineError(f"profile '{profile}' {result.verdict}")
