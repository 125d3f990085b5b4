"""A converted checkpoint on disk: its config.json and every rank's tensors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from pipeline.errors import PipelineError

REQUIRED = ("mapping", "moe", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_size", "norm_epsilon", "rotary_base", "moe_topk")


@dataclass(frozen=True)
class RankShards:
    config: dict
    ranks: tuple[dict[str, torch.Tensor], ...]  # stored dtypes

    @property
    def mapping(self) -> dict:
        return self.config["mapping"]


def _config(directory: Path) -> dict:
    path = directory / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; expected a checkpoint written by `hunyuan-trt convert`") from None
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    missing = [key for key in REQUIRED if key not in config]
    if missing:
        raise PipelineError(f"{path}: missing key(s) {', '.join(missing)}")
    return config


def load_rank_shards(directory: Path) -> RankShards:
    directory = Path(directory)
    config = _config(directory)
    ranks = []
    for rank in range(int(config["mapping"]["world_size"])):
        path = directory / f"rank{rank}.safetensors"
        try:
            ranks.append(load_file(path))
        except FileNotFoundError:
            raise PipelineError(f"{path}: missing (config.json says world_size={config['mapping']['world_size']})") from None
        except (SafetensorError, OSError) as error:
            raise PipelineError(f"{path}: not a readable safetensors file ({error})") from None
    return RankShards(config, tuple(ranks))
