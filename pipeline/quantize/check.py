"""`verify --quantized`: the layout check against the loader facts, every dequantized weight against its BF16
source, and logits of the checkpoint run as the GPU runs it (pipeline.quantize.emulate) against transformers'
HunYuanMoEV1ForCausalLM on the BF16 checkpoint (fp32). The same emulation of the BF16 checkpoint itself is
reported as the baseline: what running in bf16 alone costs, before any quantization.

What is compared: the tokens the model generates. The reference greedily continues each prompt of the
evaluation set (disjoint from the calibration set, chat-templated with the checkpoint's tokenizer; seeded
random token ids when there is none) for up to GENERATED tokens; the emulations are scored on those generated
positions, teacher-forced on the reference's tokens: max |Δlogit| and top-1 agreement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from pipeline.errors import PipelineError
from pipeline.model import read_config, spec_from_config
from pipeline.quantize import calibration
from pipeline.quantize.emulate import Emulator
from pipeline.quantize.layout import check_directory, linears
from pipeline.quantize.raw import load_tensors

RANDOM_PROMPTS = (8, 16)  # sequences x tokens when the checkpoint has no tokenizer
GENERATED = 48  # tokens generated per prompt


@dataclass
class Agreement:
    max_abs_diff: float
    mean_abs_diff: float
    top1: float


@dataclass
class QuantVerifyReport:
    format: str
    tokens: int
    quantized: Agreement
    baseline: Agreement  # the BF16 checkpoint emulated the same way
    weight_error: float  # largest relative RMS error of a dequantized weight
    worst_weight: str
    tolerance: float
    min_top1: float
    max_weight_error: float
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (not self.problems and self.quantized.max_abs_diff <= self.tolerance
                and self.quantized.top1 >= self.min_top1 and self.weight_error <= self.max_weight_error)

    def to_dict(self) -> dict:
        return asdict(self) | {"passed": self.passed}


def dequantized(tensors: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    weight, scale = tensors[f"{prefix}.weight"].float(), tensors[f"{prefix}.weight_scale"].float()
    return weight * (scale.reshape(-1, 1) if scale.numel() > 1 else scale.reshape(()))


def weight_errors(tensors: dict, source: dict, spec) -> dict[str, float]:
    """prefix -> ||dequantized - source|| / ||source|| for every quantized linear."""
    errors = {}
    for linear in linears(spec):
        prefix = linear.role.prefix
        reference = source[f"{prefix}.weight"].float()
        errors[prefix] = float((dequantized(tensors, prefix) - reference).norm() / reference.norm().clamp_min(1e-30))
    return errors


def prompts(directory: Path, vocab: int, seed: int) -> list[torch.Tensor]:
    try:
        tokenizer = calibration.load_tokenizer(directory, trust_remote_code=False)
    except PipelineError:
        generator = torch.Generator().manual_seed(seed)
        count, length = RANDOM_PROMPTS
        return [torch.randint(0, vocab, (length,), generator=generator) for _ in range(count)]
    return [torch.tensor(ids) for ids in calibration.token_ids(calibration.EVALUATION, tokenizer)]


def continuations(reference, inputs: list[torch.Tensor]) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """(prompt length, prompt + greedy continuation, reference logits at the generated positions) per prompt.

    The continuations are generated in one left-padded batch (a tenth of the time of one prompt at a time on
    hunyuan-tiny, the same tokens); each sequence is then scored alone, unpadded, so padding never reaches the
    logits that are compared."""
    config = reference.generation_config
    eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    pad = config.pad_token_id if config.pad_token_id is not None else eos[0]
    width = max(len(ids) for ids in inputs)
    batch = torch.full((len(inputs), width), pad, dtype=torch.long)
    mask = torch.zeros_like(batch)
    for row, ids in enumerate(inputs):
        batch[row, width - len(ids):], mask[row, width - len(ids):] = ids, 1
    result = []
    with torch.no_grad():
        generated = reference.generate(batch, attention_mask=mask, max_new_tokens=GENERATED, do_sample=False,
                                       pad_token_id=pad)[:, width:]
        for ids, tokens in zip(inputs, generated, strict=True):
            ends = [i + 1 for i, token in enumerate(tokens.tolist()) if token in eos]
            sequence = torch.cat([ids, tokens[:ends[0] if ends else len(tokens)]])
            logits = reference(input_ids=sequence[None]).logits[0].float()
            result.append((len(ids), sequence, logits[len(ids) - 1:-1]))
    return result


def scored(emulator: Emulator, runs) -> list[torch.Tensor]:
    return [emulator.logits(sequence)[length - 1:-1] for length, sequence, _ in runs]


def agreement(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> Agreement:
    a, b = torch.cat(ours), torch.cat(theirs)
    diff = (a - b).abs()
    return Agreement(diff.max().item(), diff.mean().item(), (a.argmax(-1) == b.argmax(-1)).float().mean().item())


def verify_quantized(directory: Path, hf_dir: Path, *, tolerance: float | None = None, min_top1: float | None = None,
                     seed: int = 0) -> QuantVerifyReport:
    from pipeline.reference.hf import load_reference

    layout = check_directory(directory, hf_dir)
    fmt = layout.format
    if fmt.quant_algo not in ("FP8", "W8A16"):
        raise PipelineError(f"{directory}: verify runs FP8 and W8A16 checkpoints on CPU; {fmt.quant_algo} is "
                            "checked for layout only")
    limits = {"tolerance": fmt.logit_tolerance if tolerance is None else tolerance,
              "min_top1": fmt.min_top1 if min_top1 is None else min_top1, "max_weight_error": fmt.weight_error}
    if layout.problems:  # numbers from a checkpoint the loader would not load mean nothing
        nothing = Agreement(float("nan"), float("nan"), 0.0)
        return QuantVerifyReport(fmt.name, 0, nothing, nothing, float("inf"), "", problems=layout.problems, **limits)
    config = read_config(Path(directory) / "config.json")
    spec = spec_from_config(config)
    tensors, source = load_tensors(directory), load_tensors(hf_dir)
    errors = weight_errors(tensors, source, spec)
    worst = max(errors, key=errors.get)
    runs = continuations(load_reference(hf_dir), prompts(directory, spec.vocab_size, seed))
    theirs = [logits for _, _, logits in runs]
    quantized = Emulator(config, tensors, fmt.quant_algo)
    baseline = Emulator(read_config(Path(hf_dir) / "config.json"), source, None)
    return QuantVerifyReport(
        format=fmt.name, tokens=sum(len(logits) for logits in theirs),
        quantized=agreement(scored(quantized, runs), theirs),
        baseline=agreement(scored(baseline, runs), theirs),
        weight_error=errors[worst], worst_weight=worst, **limits)
