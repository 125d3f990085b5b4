"""Measure hunyuan-tiny on held-out prompts: format compliance and answer accuracy per mode.

Greedy decoding in fixed batches (left padding), prompts rendered by the shipped chat template. Results go
to eval.json (with the weights' sha256, so a stale file is detectable) and into the model card's table.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.errors import PipelineError
from pipeline.outputs import write_text_atomic
from pipeline.tiny import runtime
from pipeline.tiny.formats import check, is_correct
from pipeline.tiny.tasks import EVAL_GROUPS, Example, eval_examples
from pipeline.tiny.tokenizer import EOS, PAD

EVAL_FILE = "eval.json"
CARD_FILE = "MODEL_CARD.md"
BATCH_SIZE = 50
EXTRA_TOKENS = 24  # generation budget beyond the longest expected response of a batch
CARD_TABLE = re.compile(r"(<!-- eval:begin -->\n).*?(<!-- eval:end -->)", re.S)


@dataclass(frozen=True)
class Generation:
    text: str  # up to, not including, <|eos|>
    finished: bool


def generate(model, tokenizer, examples: list[Example]) -> list[Generation]:
    """Greedy completions for one batch of examples."""
    prompts = [runtime.render_prompt(tokenizer, example) for example in examples]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    budget = max(len(tokenizer.encode(e.response, add_special_tokens=False)) for e in examples) + EXTRA_TOKENS
    eos_id, pad_id = tokenizer.convert_tokens_to_ids(EOS), tokenizer.convert_tokens_to_ids(PAD)
    with torch.no_grad():
        output = model.generate(**batch, max_new_tokens=budget, do_sample=False,
                                eos_token_id=eos_id, pad_token_id=pad_id)
    results = []
    for row in output[:, batch["input_ids"].shape[1]:].tolist():
        finished = eos_id in row
        tokens = row[:row.index(eos_id)] if finished else row
        results.append(Generation(tokenizer.decode(tokens, skip_special_tokens=False), finished))
    return results


def score(examples: list[Example], generations: list[Generation]) -> dict:
    """Compliance and accuracy of one batch, plus the first few failures for the record."""
    verdicts, failures = [], []
    for example, generation in zip(examples, generations, strict=True):
        tool = example.kind == "tool"
        verdict = check(generation.text, example.mode, generation.finished, expect_tool=tool)
        correct = is_correct(verdict, example.expected, tool)
        verdicts.append((verdict.format_ok, correct))
        if not correct and len(failures) < 3:
            failures.append({"prompt": example.messages[-1]["content"], "output": generation.text,
                             "reason": verdict.reason or "wrong answer"})
    return {"prompts": len(verdicts), "format_ok": sum(ok for ok, _ in verdicts),
            "correct": sum(c for _, c in verdicts), "failures": failures}


def evaluate_group(model, tokenizer, group: str, count: int, seed: int) -> dict:
    examples = eval_examples(group, count, seed)
    batches = [score(chunk, generate(model, tokenizer, chunk))
               for chunk in (examples[i:i + BATCH_SIZE] for i in range(0, count, BATCH_SIZE))]
    total = {key: sum(b[key] for b in batches) for key in ("prompts", "format_ok", "correct")}
    return {
        "prompts": total["prompts"],
        "format_compliance": round(total["format_ok"] / total["prompts"], 4),
        "accuracy": round(total["correct"] / total["prompts"], 4),
        "first_batch": {"prompts": batches[0]["prompts"],
                        "format_compliance": round(batches[0]["format_ok"] / batches[0]["prompts"], 4),
                        "accuracy": round(batches[0]["correct"] / batches[0]["prompts"], 4)},
        "failures": [f for b in batches for f in b["failures"]][:3],
    }


def weights_digest(model_dir: Path) -> str:
    return hashlib.sha256((Path(model_dir) / "model.safetensors").read_bytes()).hexdigest()


def evaluate(model_dir: Path, count: int, seed: int) -> dict:
    model_dir = Path(model_dir)
    if not (model_dir / "model.safetensors").is_file():
        raise PipelineError(f"{model_dir}: no model.safetensors; run `make tiny-model` first")
    runtime.use_cpu_threads()
    model, tokenizer = runtime.load_model(model_dir), runtime.load_tokenizer(model_dir)
    groups = {group: evaluate_group(model, tokenizer, group, count, seed) for group in EVAL_GROUPS}
    return {"weights_sha256": weights_digest(model_dir), "seed": seed, "prompts_per_group": count,
            "batch_size": BATCH_SIZE, "decoding": "greedy", "groups": groups}


def card_table(results: dict) -> str:
    rows = ["| group | held-out prompts | format compliance | correct answers |", "|---|---|---|---|"]
    for group, r in results["groups"].items():
        rows.append(f"| {group} | {r['prompts']} | {r['format_compliance']:.1%} | {r['accuracy']:.1%} |")
    return "\n".join(rows) + "\n"


def write_results(model_dir: Path, results: dict) -> None:
    """eval.json, and the numbers table between the card's eval markers (both replaced atomically)."""
    model_dir = Path(model_dir)
    write_text_atomic(model_dir / EVAL_FILE, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    card = model_dir / CARD_FILE
    if card.exists():
        text = card.read_text()
        if not CARD_TABLE.search(text):
            raise PipelineError(f"{card}: expected '<!-- eval:begin -->' and '<!-- eval:end -->' markers")
        table = card_table(results)
        write_text_atomic(card, CARD_TABLE.sub(lambda m: m[1] + table + m[2], text))

