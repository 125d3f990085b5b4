"""`hunyuan-trt make-tiny`: a seeded tiny Hunyuan-A13B HF checkpoint (sharded safetensors + index)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.errors import PipelineError


def _int_list(text: str, option: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected integers separated by commas, got '{text}'", param_hint=option) from None


@click.command("make-tiny")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Directory to create (replaced with --force).")
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights.")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Use this config.json (A13B key style) instead of the built-in shrunk A13B config.")
@click.option("--shards", default=3, show_default=True, help="Number of safetensors shard files.")
@click.option("--layers", type=int, help="num_hidden_layers of the built-in config.")
@click.option("--experts", type=int, help="num_experts of the built-in config.")
@click.option("--kv-heads", type=int, help="num_key_value_heads of the built-in config.")
@click.option("--vocab", type=int, help="vocab_size of the built-in config.")
@click.option("--moe-topk", "moe_topk", help="moe_topk of the built-in config: one value, or a comma list "
              "repeated over the layers (e.g. 2,3: per-layer top-k).")
@click.option("--untied", is_flag=True, help="Separate lm_head.weight (tie_word_embeddings false).")
@click.option("--published-fp8", is_flag=True,
              help="Write it in the layout of Tencent's published FP8 checkpoint (AngelSlim per-tensor static FP8: "
                   "F8_E4M3 weights, weight_scale and input_scale per linear, quant_method fp8), the input of "
                   "`quantize --from-published`.")
@click.option("--source", type=click.Path(path_type=Path),
              help="With --published-fp8: quantize this BF16 checkpoint (with its config and tokenizer files) "
                   "instead of seeded random weights, e.g. pipeline/data/hunyuan-tiny.")
@click.option("--remote-code", is_flag=True,
              help="Publish the classes as remote code, as Tencent's checkpoints do (auto_map + modules).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def make_tiny_cmd(out, seed, config_path, shards, layers, experts, kv_heads, vocab, moe_topk, untied, published_fp8,
                  source, remote_code, force):
    """Write config.json, model-*.safetensors and model.safetensors.index.json into --out."""
    from pipeline.model import read_config, spec_from_config
    from pipeline.outputs import SYNTHETIC_CHECKPOINT, check_target, replaced_directory
    from pipeline.remote_code import add_remote_code
    from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

    if source and not published_fp8:
        raise PipelineError("--source: only with --published-fp8 (it names the BF16 checkpoint to quantize)")
    check_target(out, SYNTHETIC_CHECKPOINT, force)
    if source:
        config_path = source / "config.json"
    if config_path:
        config = read_config(config_path)
    else:
        sizes = {"num_hidden_layers": layers, "num_experts": experts, "num_key_value_heads": kv_heads,
                 "vocab_size": vocab, "tie_word_embeddings": False if untied else None,
                 "moe_topk": _int_list(moe_topk, "--moe-topk") if moe_topk else None}
        config = tiny_config(**{key: value for key, value in sizes.items() if value is not None})
    spec_from_config(config, source=str(config_path or "built-in tiny config"))
    if published_fp8:
        if remote_code:
            raise PipelineError("--remote-code: not with --published-fp8 (the published layout is written as Tencent has it)")
        _write_published(config, source, out, seed, shards, force)
        return
    with replaced_directory(out, SYNTHETIC_CHECKPOINT, force) as temp:
        weight_map = write_checkpoint(config, temp, seed=seed, shards=shards)
        if remote_code:
            add_remote_code(temp)
    click.echo(f"wrote {out}: {len(weight_map)} tensors in {len(set(weight_map.values()))} shard(s), seed {seed}")


def _write_published(config: dict, source: Path | None, out: Path, seed: int, shards: int, force: bool) -> None:
    import tempfile

    from pipeline.outputs import SYNTHETIC_CHECKPOINT, replaced_directory
    from pipeline.quantize.metadata import copy_side_files
    from pipeline.quantize.published import write_synthetic
    from pipeline.synthetic_checkpoint import write_checkpoint

    out.parent.mkdir(parents=True, exist_ok=True)
    with (tempfile.TemporaryDirectory(prefix=".bf16-", dir=out.parent) as scratch,
          replaced_directory(out, SYNTHETIC_CHECKPOINT, force) as temp):
        if source is None:
            source = Path(scratch)
            write_checkpoint(config, source, seed=seed, shards=shards)
        else:
            copy_side_files(source, temp)
        count = write_synthetic(config, source, temp, seed)
    click.echo(f"wrote {out}: {count} tensors in Tencent's published FP8 layout (AngelSlim), from "
               f"{'seeded random weights' if source.name.startswith('.bf16-') else source}, seed {seed}")
