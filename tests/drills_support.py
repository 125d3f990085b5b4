"""Helpers for the drill tests: a servable copy of hunyuan-tiny with seeded random weights.

The drills test the serving chain (processes, retries, errors), not what the model says, so they use the
embedded model's config, tokenizer and chat template with random weights and do not wait for training.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.model import TINY_MODEL_DIR

SERVING_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "chat_template.jinja")


def servable_model(target: Path, seed: int = 0) -> Path:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    target.mkdir(parents=True, exist_ok=True)
    for name in SERVING_FILES:
        if (TINY_MODEL_DIR / name).is_file():
            shutil.copy(TINY_MODEL_DIR / name, target / name)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(target)))
    tensors = {key: value.contiguous() for key, value in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


def shared_servable_model(tmp_path_factory) -> Path:
    """One servable model per test session (built on first use, reused by every drill test module)."""
    target = tmp_path_factory.getbasetemp() / "servable-hunyuan-tiny"
    if not (target / "model.safetensors").is_file():
        servable_model(target)
    return target
