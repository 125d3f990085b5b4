"""Token selection and stop strings for one sequence: pure functions over a logits vector and text.

Temperature 0 (or unset with no default in generation_config.json) is greedy, like trtllm-serve, and so is
any temperature below MIN_TEMPERATURE: dividing float32 logits by 1e-40 overflows to inf and the softmax to
NaN, while the distribution it asks for is the argmax anyway. A seed gives a per-request `torch.Generator`,
so concurrent requests do not disturb each other's randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

# Below this, softmax(logits / T) puts all its mass on the argmax unless two logits lie within ~1e-3 of
# each other (exp(-1e-3 / 1e-5) = exp(-100)); greedy gives that result without the overflow.
MIN_TEMPERATURE = 1e-5

@dataclass
class Sampling:
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    seed: int | None = None

    def generator(self) -> torch.Generator:
        gen = torch.Generator()
        if self.seed is None:
            gen.seed()
        else:
            gen.manual_seed(self.seed)
        return gen


def apply_penalties(logits: torch.Tensor, s: Sampling, generated: list[int]) -> torch.Tensor:
    """OpenAI presence/frequency penalties and the HF-style repetition penalty over generated ids."""
    if not generated:
        return logits
    ids, counts = torch.unique(torch.tensor(generated), return_counts=True)
    picked = logits[ids]
    if s.repetition_penalty != 1.0:
        picked = torch.where(picked > 0, picked / s.repetition_penalty, picked * s.repetition_penalty)
    picked = picked - s.presence_penalty - s.frequency_penalty * counts.to(logits.dtype)
    logits = logits.clone()
    logits[ids] = picked
    return logits


def choose_token(logits: torch.Tensor, s: Sampling, gen: torch.Generator) -> int:
    """One token id from a 1-D float logits vector."""
    for token_id, bias in s.logit_bias.items():
        logits[token_id] += bias
    if s.temperature < MIN_TEMPERATURE:
        return int(torch.argmax(logits))
    logits = logits / s.temperature
    if 0 < s.top_k < logits.numel():
        kth = torch.topk(logits, s.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if s.min_p > 0.0:
        probs = probs.masked_fill(probs < s.min_p * probs.max(), 0.0)
    if s.top_p < 1.0:
        probs = _top_p(probs, s.top_p)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=gen))


def _top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    ordered, order = torch.sort(probs, descending=True)
    outside = torch.cumsum(ordered, dim=-1) - ordered > top_p  # keep the token that crosses top_p
    ordered = ordered.masked_fill(outside, 0.0)
    return torch.zeros_like(probs).scatter(0, order, ordered)


@dataclass
class StopScan:
    """Finds stop strings in the growing output and says how much text is safe to emit so far.

    Text that could still become the start of a stop string is held back, so a stop string never
    reaches the client (unless `keep` asks for it, as trtllm's include_stop_str_in_output does).
    """

    stops: list[str]
    keep: bool = False
    emitted: int = 0

    def scan(self, text: str) -> tuple[str, str | None]:
        """(new text safe to send, the stop string hit or None)."""
        hits = [(text.find(s, max(0, self.emitted - len(s) + 1)), s) for s in self.stops]
        hits = [(i, s) for i, s in hits if i >= 0]
        if hits:
            index, stop = min(hits)
            end = index + len(stop) if self.keep else index
            return self._take(text, end), stop
        hold = max((len(s) - 1 for s in self.stops), default=0)
        end = len(text) - hold
        while end > self.emitted and text[end - 1] == "\ufffd":  # incomplete multi-byte character
            end -= 1
        return self._take(text, end), None

    def flush(self, text: str) -> str:
        return self._take(text, len(text))

    def _take(self, text: str, end: int) -> str:
        if end <= self.emitted:
            return ""
        piece, self.emitted = text[self.emitted:end], end
        return piece
