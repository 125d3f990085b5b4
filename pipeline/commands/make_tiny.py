"""`hunyuan-trt make-tiny`: a seeded tiny Hunyuan-A13B HF checkpoint (sharded safetensors + index)."""

from __future__ import annotations

from pathlib import Path

import click


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
@click.option("--untied", is_flag=True, help="Separate lm_head.weight (tie_word_embeddings false).")
@click.option("--remote-code", is_flag=True,
              help="Publish the classes as remote code, as Tencent's checkpoints do (auto_map + modules).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def make_tiny_cmd(out, seed, config_path, shards, layers, experts, kv_heads, vocab, untied, remote_code, force):
    """Write config.json, model-*.safetensors and model.safetensors.index.json into --out."""
    from pipeline.model import read_config, spec_from_config
    from pipeline.outputs import SYNTHETIC_CHECKPOINT, check_target, replaced_directory
    from pipeline.remote_code import add_remote_code
    from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

    check_target(out, SYNTHETIC_CHECKPOINT, force)
    if config_path:
        config = read_config(config_path)
    else:
        sizes = {"num_hidden_layers": layers, "num_experts": experts, "num_key_value_heads": kv_heads,
                 "vocab_size": vocab, "tie_word_embeddings": False if untied else None}
        config = tiny_config(**{key: value for key, value in sizes.items() if value is not None})
    spec_from_config(config, source=str(config_path or "built-in tiny config"))
    with replaced_directory(out, SYNTHETIC_CHECKPOINT, force) as temp:
        weight_map = write_checkpoint(config, temp, seed=seed, shards=shards)
        if remote_code:
            add_remote_code(temp)
    click.echo(f"wrote {out}: {len(weight_map)} tensors in {len(set(weight_map.values()))} shard(s), seed {seed}")
