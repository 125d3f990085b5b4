"""The model side of the CPU stand-in: load a Hugging Face Hunyuan checkpoint, render prompts, decode.

`Engine.run` decodes one sequence token by token with a KV cache, in the calling (worker) thread, and
reports text (with the logprobs of the tokens behind it, when asked) through a callback; it checks a cancel
flag before every step so an abandoned request stops within one token. The text is the raw model output
(`<think>`/`<answer>`/`<tool_calls>` included): parsing it is the adapter's job, exactly as with trtllm-serve.

Prompt length is bounded before anything is tokenized: no token of the vocabulary decodes to more than
`max_token_bytes` UTF-8 bytes, and a character is at least one byte, so a prompt whose messages hold more
than max_seq_len * max_token_bytes characters cannot fit and is refused without tokenizing it (a 10 MB
prompt used to tie up the event loop for tens of seconds and a 100 MB one to exhaust memory).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pipeline.cpu_backend.protocol import RequestError
from pipeline.cpu_backend.sampling import Sampling, StopScan, apply_penalties, choose_token
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

KV_TOKENS_PER_BLOCK = 32  # the stand-in's KV accounting unit, reported as trtllm_kv_cache_tokens_per_block


@dataclass
class Job:
    """One sequence to generate."""

    prompt_ids: list[int]
    max_new_tokens: int
    sampling: Sampling
    stops: list[str] = field(default_factory=list)
    stop_token_ids: set[int] = field(default_factory=set)
    min_tokens: int = 0
    ignore_eos: bool = False
    keep_stop: bool = False
    skip_special_tokens: bool = True
    logprobs: int | None = None  # None: no logprobs; k: the chosen token's and the k most likely tokens'
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: int = 0  # tokens generated so far (read by the metrics when the request is aborted)


@dataclass
class Finish:
    reason: str  # stop | length | abort
    stop_reason: str | int | None
    completion_tokens: int


class Engine:
    """A causal LM with its tokenizer and the limits the server enforces."""

    def __init__(self, model_dir: Path, max_seq_len: int):
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise PipelineError(f"{model_dir}/config.json: not found (expected a Hugging Face model directory)")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            model, loading = AutoModelForCausalLM.from_pretrained(
                model_dir, dtype=torch.float32, experts_implementation="eager", output_loading_info=True)
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:  # RuntimeError: shapes
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PipelineError(f"{model_dir}: cannot load the checkpoint: {first}") from None
        if loading["missing_keys"]:  # transformers would serve them randomly initialized: silent garbage
            missing = sorted(loading["missing_keys"])
            raise PipelineError(f"{model_dir}: cannot load the checkpoint: no weights for {len(missing)} "
                                f"parameters, e.g. {', '.join(missing[:3])}")
        self.model = model.eval()
        if self.tokenizer.chat_template is None:
            raise PipelineError(f"{model_dir}: the tokenizer has no chat template (chat_template.jinja)")
        context = int(getattr(self.model.config, "max_position_embeddings", max_seq_len))
        self.max_seq_len = min(max_seq_len, context)
        if self.max_seq_len < max_seq_len:
            log.warning("max_seq_len lowered to %d because the model's max_position_embeddings is %d",
                        self.max_seq_len, context)
        self.gen_defaults = GenerationConfig.from_model_config(self.model.config)
        if (model_dir / "generation_config.json").is_file():
            self.gen_defaults = GenerationConfig.from_pretrained(model_dir)
        self.eos_ids = _id_set(self.gen_defaults.eos_token_id) | _id_set(self.model.config.eos_token_id)
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters \
            else "past_key_values"
        self.max_token_bytes = max(len(self.tokenizer.decode([i]).encode()) for i in range(len(self.tokenizer)))
        self._lengths: dict[int, int] = {}  # live sequence lengths, for the KV-cache gauges
        self._lock = threading.Lock()

    # prompts ------------------------------------------------------------------------------------
    def check_prompt_chars(self, chars: int, param: str) -> None:
        """Refuse a prompt of `chars` characters that cannot fit max_seq_len, before tokenizing it."""
        most = self.max_seq_len * self.max_token_bytes
        if chars > most:
            raise RequestError(f"the prompt has {chars:,} characters, more than max_seq_len {self.max_seq_len} "
                               f"tokens can hold (at most {self.max_token_bytes} bytes each); shorten it",
                               param=param)

    def chat_prompt(self, messages: list[dict], tools: list | None, kwargs: dict,
                    add_generation_prompt: bool) -> list[int]:
        try:
            text = self.tokenizer.apply_chat_template(
                messages, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=False, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the template is a function of the request alone
            raise RequestError(f"messages: the chat template cannot render this request "
                               f"({type(exc).__name__}: {exc})", param="messages") from None
        return self.tokenizer.encode(text, add_special_tokens=False)

    def text_prompt(self, prompt: str | list[int]) -> list[int]:
        if isinstance(prompt, str):
            prompt = self.tokenizer.encode(prompt, add_special_tokens=False)
        if not prompt:
            raise RequestError("prompt: an empty prompt has nothing to continue", param="prompt")
        vocab = self.model.config.vocab_size
        bad = [t for t in prompt if not 0 <= t < vocab]
        if bad:
            raise RequestError(f"prompt: token id {bad[0]} is outside the vocabulary [0, {vocab})", param="prompt")
        return list(prompt)

    def budget(self, prompt_len: int, requested: int | None) -> int:
        """Tokens this sequence may generate: the request's max_tokens capped by the context window."""
        room = self.max_seq_len - prompt_len
        if room <= 0:
            raise RequestError(f"the prompt has {prompt_len} tokens but max_seq_len is {self.max_seq_len}; "
                               "shorten the prompt", param="messages")
        return room if requested is None else min(requested, room)

    # decoding -----------------------------------------------------------------------------------
    @torch.inference_mode()
    def run(self, job: Job, emit: Callable[[str, list], None]) -> Finish:
        """Decode `job`, calling `emit(text, logprobs)` for each new piece of safe text (and, at the end, for
        what is left); `logprobs` are the entries of the tokens generated since the previous call."""
        gen, generated, cache, entries = job.sampling.generator(), [], None, []
        scan = StopScan(job.stops, keep=job.keep_stop)
        inputs = torch.tensor([job.prompt_ids])
        key = id(job)

        def send(piece: str) -> None:
            if piece or entries:
                emit(piece, entries[:])
                entries.clear()

        try:
            while len(generated) < job.max_new_tokens:
                if job.cancel.is_set():
                    return Finish("abort", None, len(generated))
                out = self.model(input_ids=inputs, use_cache=True, **{self._cache_arg: cache})
                cache = getattr(out, self._cache_arg)
                logits = apply_penalties(out.logits[0, -1].float(), job.sampling, generated)
                if len(generated) < job.min_tokens or job.ignore_eos:
                    logits[list(self.eos_ids)] = float("-inf")
                distribution = torch.log_softmax(logits, dim=-1) if job.logprobs is not None else None
                token = choose_token(logits, job.sampling, gen)
                with self._lock:
                    self._lengths[key] = len(job.prompt_ids) + len(generated) + 1
                if token in self.eos_ids or token in job.stop_token_ids:
                    send(scan.flush(self._decode(generated, job)))
                    return Finish("stop", None if token in self.eos_ids else token, len(generated) + 1)
                generated.append(token)
                job.progress = len(generated)
                if distribution is not None:
                    entries.append(self.logprob_entry(token, distribution, job.logprobs))
                piece, stop = scan.scan(self._decode(generated, job))
                send(piece)
                if stop is not None:
                    send("")
                    return Finish("stop", stop, len(generated))
                inputs = torch.tensor([[token]])
            send(scan.flush(self._decode(generated, job)))
            return Finish("length", None, len(generated))
        finally:
            with self._lock:
                self._lengths.pop(key, None)

    def logprob_entry(self, token: int, distribution: torch.Tensor, top: int) -> dict:
        """trtllm-serve's chat logprob entry for `token` under `distribution` (log-probabilities after the
        penalties, before logit_bias, temperature and top-k/top-p), with the `top` most likely tokens."""
        def item(token_id: int, logprob: float) -> dict:
            text = self.tokenizer.decode([token_id])
            return {"token": text, "logprob": max(logprob, -9999.0),
                    "bytes": list(text.encode("utf-8", errors="replace"))}

        best = torch.topk(distribution, top) if top else None
        alternatives = [item(int(i), float(v)) for v, i in zip(*best, strict=True)] if best is not None else []
        return {**item(token, float(distribution[token])), "top_logprobs": alternatives}

    def _decode(self, ids: list[int], job: Job) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=job.skip_special_tokens)

    def kv_blocks_used(self) -> int:
        with self._lock:
            return sum(-(-n // KV_TOKENS_PER_BLOCK) for n in self._lengths.values())

    def default_sampling(self) -> Sampling:
        """generation_config.json's sampling defaults (greedy unless it sets do_sample)."""
        g = self.gen_defaults
        if not g.do_sample:
            return Sampling()
        return Sampling(temperature=g.temperature or 1.0, top_p=g.top_p or 1.0, top_k=g.top_k or 0)


def _id_set(value) -> set[int]:
    if value is None:
        return set()
    return {value} if isinstance(value, int) else set(value)

