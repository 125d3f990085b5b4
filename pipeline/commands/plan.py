"""`hunyuan-trt plan`: will this profile fit? Exit 2 (with the shortfall) when it does not."""

from __future__ import annotations

import click

from pipeline.commands.options import emit, profile_options, split_overrides
from pipeline.errors import PipelineError
from pipeline.memory_plan import plan_profile

ROWS = (
    ("profile", "profile"), ("derived name", "slug"), ("GPUs", "num_gpus"), ("accelerator", "accelerator"),
    ("memory / GPU (GiB)", "memory_gib_per_gpu"), ("weights / GPU (GiB)", "weights_gib_per_gpu"),
    ("  quantized linears", "weights_quantized_gib_per_gpu"),
    ("  kept high precision", "weights_high_precision_gib_per_gpu"),
    ("reserve / GPU (GiB)", "reserve_gib_per_gpu"), ("  of which activations", "activation_gib_per_gpu"),
    ("KV budget / GPU (GiB)", "kv_budget_gib_per_gpu"), ("KV bytes / token / GPU", "kv_bytes_per_token_per_gpu"),
    ("KV token capacity", "kv_token_capacity"), ("max_seq_len", "max_seq_len"),
    ("max-length sequences", "concurrent_max_len_sequences"), ("checkpoint (GB)", "checkpoint_gb"),
    ("start-up estimate (s)", "startup_estimate_s"), ("batch-1 decode ceiling (tok/s)", "decode_ceiling_batch1_tok_s"),
)


def format_plan(data: dict) -> str:
    width = max(len(label) for label, _ in ROWS)
    lines = [f"{label:<{width}}  {data[key]:,}" if isinstance(data[key], int) and not isinstance(data[key], bool)
             else f"{label:<{width}}  {data[key]}" for label, key in ROWS]
    return "\n".join([*lines, f"{'verdict':<{width}}  {data['verdict']}"])


@click.command()
@profile_options
@click.option("--model-config", type=click.Path(dir_okay=True), default=None,
              help="Plan against this config.json or model dir; overrides YAML key `hf_config`.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan(profile, model_config, as_json, **kwargs):
    """Per-GPU weights, reserve, KV bytes/token, KV capacity and the fit verdict for a profile."""
    overrides = split_overrides(kwargs) | ({"hf_config": model_config} if model_config else {})
    result = plan_profile(profile, overrides)
    emit(result.to_dict(), as_json, format_plan)
    if not result.fits:
        raise PipelineError(f"profile '{profile}' {result.verdict}")
