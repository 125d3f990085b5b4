"""`hunyuan-trt verify`: prove on CPU that a converted (rank shards) or quantized checkpoint is right."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.errors import PipelineError


@click.command("verify")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Directory written by `convert`.")
@click.option("--quantized", type=click.Path(path_type=Path), help="Directory written by `quantize`.")
@click.option("--hf-dir", required=True, type=click.Path(path_type=Path), help="The BF16 HF checkpoint it was made from.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the report as JSON here.")
@click.option("--tolerance", type=float,
              help="Largest allowed |Δlogit| [default: 1e-4 for --checkpoint; the format's measured bound for --quantized].")
@click.option("--min-top1", type=float, help="--quantized: smallest allowed top-1 agreement [default: the format's].")
@click.option("--seed", default=0, show_default=True, help="Seed of the random input tokens.")
@click.option("--batch", default=2, show_default=True, help="--checkpoint: sequences in the test batch.")
@click.option("--seq-len", default=16, show_default=True, help="--checkpoint: tokens per sequence.")
@click.option("--position-start", default=0, show_default=True, type=click.IntRange(min=0),
              help="--checkpoint: first position of the test tokens (RoPE past 200,000 on a config with a raised "
                   "max_position_embeddings, as the 256K profiles serve).")
def verify_cmd(checkpoint, quantized, hf_dir, json_path, tolerance, min_top1, seed, batch, seq_len, position_start):
    """--checkpoint: forward from the rank shards (partial sums where TensorRT-LLM all-reduces) vs transformers'
    HunYuanMoEV1ForCausalLM. --quantized: layout vs the pinned loader facts, weights vs their BF16 source, and
    the checkpoint run as the GPU runs it vs transformers. Exit 1 when a check fails, 2 on bad input."""
    if (checkpoint is None) == (quantized is None):
        raise PipelineError("verify: give exactly one of --checkpoint (convert output) or --quantized (quantize output)")
    report = (_verify_quantized(quantized, hf_dir, tolerance, min_top1, seed) if quantized
              else _verify_shards(checkpoint, hf_dir, 1e-4 if tolerance is None else tolerance, seed, batch, seq_len,
                                  position_start))
    if json_path:
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    click.echo("PASS" if report.passed else "FAIL")
    if not report.passed:
        raise SystemExit(1)


def _verify_shards(checkpoint, hf_dir, tolerance, seed, batch, seq_len, position_start):
    from pipeline.reference.compare import verify

    report = verify(checkpoint, hf_dir, tolerance=tolerance, seed=seed, batch=batch, seq_len=seq_len,
                    position_start=position_start)
    m = report.mapping
    click.echo(f"verify {checkpoint}: world_size={m['world_size']} (tp={m['tp_size']}, moe_tp={m['moe_tp_size']}, "
               f"moe_ep={m['moe_ep_size']}), {report.tokens} tokens from position {position_start:,}")
    click.echo(f"  max |Δlogit| = {report.max_abs_diff:.3e} (tolerance {tolerance:.0e})")
    click.echo(f"  top-1 agreement = {100 * report.top1_agreement:.1f}%")
    click.echo(f"  reassembly: {report.reassembled_tensors} HF tensors rebuilt, {len(report.reassembly_problems)} problem(s)")
    for problem in report.reassembly_problems[:10]:
        click.echo(f"    {problem}")
    return report


def _verify_quantized(directory, hf_dir, tolerance, min_top1, seed):
    from pipeline.quantize.check import verify_quantized

    r = verify_quantized(directory, hf_dir, tolerance=tolerance, min_top1=min_top1, seed=seed)
    click.echo(f"verify {directory}: {r.format}, {r.tokens} tokens, layout {len(r.problems)} problem(s)")
    for problem in r.problems[:10]:
        click.echo(f"    {problem}")
    if not r.problems:
        click.echo(f"  weights: worst relative RMS error {r.weight_error:.4f} ({r.worst_weight}; limit {r.max_weight_error})")
        click.echo(f"  quantized as the GPU runs it: max |Δlogit| = {r.quantized.max_abs_diff:.3f} (tolerance "
                   f"{r.tolerance}), mean {r.quantized.mean_abs_diff:.4f}, top-1 agreement = "
                   f"{100 * r.quantized.top1:.1f}% (min {100 * r.min_top1:.0f}%)")
        click.echo(f"  baseline, BF16 run the same way: max |Δlogit| = {r.baseline.max_abs_diff:.3f}, mean "
                   f"{r.baseline.mean_abs_diff:.4f}, top-1 agreement = {100 * r.baseline.top1:.1f}%")
    return r
