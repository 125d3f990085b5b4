"""Train hunyuan-tiny on CPU, deterministically, and write the model directory atomically.

Recipe: AdamW, linear warm-up then cosine decay to 10 % of the peak rate, loss on the response only,
fresh synthetic examples every step from one seeded generator. Same seed and thread count -> same weights.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from pipeline.outputs import TINY_MODEL, replaced_directory
from pipeline.tiny import runtime
from pipeline.tiny.config import write_configs
from pipeline.tiny.tasks import training_example
from pipeline.tiny.tokenizer import PAD, write_tokenizer

log = logging.getLogger(__name__)
WEIGHTS = "model.safetensors"
KEEP_FILES = ("MODEL_CARD.md",)  # hand-written files carried over when the directory is rebuilt
POOL_BATCHES = 8  # batches drawn together and grouped by length


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4000
    batch_size: int = 24
    peak_lr: float = 3e-3
    warmup_steps: int = 60
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 100


def learning_rate(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.peak_lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.peak_lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_batch(tokenizer, examples: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded batch; pads sit after each sequence and are excluded from the loss."""
    pairs = [runtime.encode_for_training(tokenizer, example) for example in examples]
    width = max(len(ids) for ids, _ in pairs)
    pad_id = tokenizer.convert_tokens_to_ids(PAD)
    ids = [ids + [pad_id] * (width - len(ids)) for ids, _ in pairs]
    labels = [labels + [-100] * (width - len(labels)) for _, labels in pairs]
    return torch.tensor(ids), torch.tensor(labels)


def batches(tokenizer, rng: random.Random, cfg: TrainConfig):
    """Endless training batches. Examples are drawn POOL_BATCHES batches at a time and grouped by length,
    so a batch pads little (about half the compute of random batches); the batches of a pool are shuffled."""
    while True:
        pool = sorted((training_example(rng) for _ in range(cfg.batch_size * POOL_BATCHES)),
                      key=lambda example: len(example.response) + len(str(example.messages)) + len(str(example.tools)))
        chunks = [pool[i:i + cfg.batch_size] for i in range(0, len(pool), cfg.batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            yield make_batch(tokenizer, chunk)


def train_model(model_dir: Path, cfg: TrainConfig) -> tuple[torch.nn.Module, list[dict]]:
    """Train a fresh model whose config and tokenizer are already in model_dir; returns it and the loss log."""
    tokenizer = runtime.load_tokenizer(model_dir)
    model = runtime.new_model(model_dir, cfg.seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.peak_lr, weight_decay=cfg.weight_decay)
    rng = random.Random(cfg.seed)
    history, start, window = [], time.monotonic(), []
    for step, (input_ids, labels) in zip(range(cfg.steps), batches(tokenizer, rng, cfg), strict=False):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        loss = model(input_ids=input_ids, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        window.append(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            entry = {"step": step + 1, "loss": round(sum(window) / len(window), 4),
                     "elapsed_s": round(time.monotonic() - start, 1)}
            history.append(entry)
            log.info("step %(step)d  loss %(loss).4f  %(elapsed_s).1fs", entry)
            window = []
    return model.eval(), history


def _save_weights(model: torch.nn.Module, out_dir: Path) -> None:
    """Only the safetensors file from save_pretrained; config.json stays the hand-written A13B one."""
    with tempfile.TemporaryDirectory() as scratch:
        model.save_pretrained(scratch)
        shutil.copyfile(Path(scratch) / WEIGHTS, out_dir / WEIGHTS)


def build(out_dir: Path, cfg: TrainConfig, force: bool = False) -> dict:
    """Write config, tokenizer and trained weights into out_dir (replaced atomically, `pipeline.outputs`);
    returns the train record."""
    out_dir = Path(out_dir)
    runtime.use_cpu_threads()
    with replaced_directory(out_dir, TINY_MODEL, force) as work:
        write_configs(work)
        write_tokenizer(work)
        started = time.monotonic()
        model, history = train_model(work, cfg)
        _save_weights(model, work)
        record = {"train_config": asdict(cfg), "wall_s": round(time.monotonic() - started, 1),
                  "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "params": sum(p.numel() for p in model.parameters()), "history": history}
        (work / "training.json").write_text(json.dumps(record, indent=2) + "\n")
        for name in KEEP_FILES:
            if (out_dir / name).exists():
                shutil.copyfile(out_dir / name, work / name)
    return record
