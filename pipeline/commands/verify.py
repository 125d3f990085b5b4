"""`hunyuan-trt verify`: prove on CPU that a converted checkpoint's sharding is right."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("verify")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path), help="Directory written by `convert`.")
@click.option("--hf-dir", required=True, type=click.Path(path_type=Path), help="The HF checkpoint it was converted from.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the report as JSON here.")
@click.option("--tolerance", default=1e-4, show_default=True, help="Largest allowed |Δlogit| (computed in fp32).")
@click.option("--seed", default=0, show_default=True, help="Seed of the random input tokens.")
@click.option("--batch", default=2, show_default=True, help="Sequences in the test batch.")
@click.option("--seq-len", default=16, show_default=True, help="Tokens per sequence.")
@click.option("--position-start", default=0, show_default=True, type=click.IntRange(min=0),
              help="First position of the test tokens (RoPE past 200,000 on a config with a raised "
                   "max_position_embeddings, as the 256K profiles serve).")
def verify_cmd(checkpoint, hf_dir, json_path, tolerance, seed, batch, seq_len, position_start):
    """Forward from the rank shards (partial sums where TensorRT-LLM all-reduces) vs transformers'
    HunYuanMoEV1ForCausalLM; exit 1 above tolerance or when reassembly differs, 2 on bad input."""
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
    if json_path:
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    click.echo("PASS" if report.passed else "FAIL")
    if not report.passed:
        raise SystemExit(1)
