"""Scheduling for the CPU stand-in: a bounded queue in front of `max_batch_size` worker threads.

A request is admitted (`Admission.admit`) as soon as its body is valid, before anything is tokenized: it
takes a seat counted as waiting, or gets a 429 when `max_batch_size` requests run and `max_queue` wait.
Counting at admission (not when generation starts) keeps a burst from overfilling the queue. The seat
becomes running when the request gets one of the `max_batch_size` slots and is given back when its worker
thread is done; `Seat.leave` is idempotent, so every exit path may call it. The request's sequences (one
per choice) run one after another in a worker thread; text and finish events come back to the event loop
through an asyncio queue. Leaving the event iterator early (client gone, shutdown) sets the cancel flag of
every sequence, which the worker sees before its next token, and the request is counted as aborted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pipeline.cpu_backend.engine import KV_TOKENS_PER_BLOCK, Engine, Finish, Job
from pipeline.cpu_backend.metrics import RequestTiming, ServerMetrics
from pipeline.cpu_backend.protocol import RequestError, SamplingFields
from pipeline.cpu_backend.sampling import Sampling
from pipeline.request_limits import DEFAULT_LIMITS, RequestLimits


@dataclass
class Limits:
    max_batch_size: int
    max_queue: int
    request: RequestLimits = DEFAULT_LIMITS


@dataclass
class Piece:
    """Generated text of one choice, with the logprob entries of the tokens behind it (when asked for)."""

    text: str
    logprobs: list = field(default_factory=list)


class Admission:
    """Running/waiting counters with a semaphore of `max_batch_size` slots."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.running = 0
        self.waiting = 0
        self.slots = asyncio.Semaphore(limits.max_batch_size)

    def admit(self) -> Seat:
        capacity = self.limits.max_batch_size + self.limits.max_queue
        if self.running + self.waiting >= capacity:
            raise RequestError(f"server busy: {self.running} requests running and {self.waiting} queued "
                               f"(max_queue {self.limits.max_queue}); retry later",
                               status=429, err_type="RateLimitError")
        return Seat(self)


class Seat:
    """One admitted request: waiting until it takes a slot, running until it leaves."""

    def __init__(self, admission: Admission):
        self.admission, self.state = admission, "waiting"
        admission.waiting += 1

    async def take(self) -> None:
        await self.admission.slots.acquire()  # cancellable: nothing is taken when cancelled
        self.admission.waiting -= 1
        self.admission.running += 1
        self.state = "running"

    def abandon(self) -> None:
        """Leave if the seat never became running (a running seat is given back when its worker is done)."""
        if self.state == "waiting":
            self.leave()

    def leave(self) -> None:
        if self.state == "waiting":
            self.admission.waiting -= 1
        elif self.state == "running":
            self.admission.running -= 1
            self.admission.slots.release()
        self.state = "gone"


@dataclass
class Generation:
    """One admitted request's sequences: `(choice index, Job)` pairs and what the metrics need."""

    jobs: list[tuple[int, Job]]
    seat: Seat
    arrival: float
    prompt_tokens: int


class Service:
    def __init__(self, engine: Engine, served_name: str, limits: Limits):
        self.engine = engine
        self.served_name = served_name
        self.limits = limits
        self.admission = Admission(limits)
        self.max_blocks = limits.max_batch_size * -(-engine.max_seq_len // KV_TOKENS_PER_BLOCK)
        self._pool = ThreadPoolExecutor(limits.max_batch_size, thread_name_prefix="generate")
        self._jobs: dict[int, Job] = {}
        self.metrics = ServerMetrics(served_name, self._gauges(limits))

    def _gauges(self, limits: Limits) -> dict:
        used = self.engine.kv_blocks_used
        return {
            "num_requests_running": lambda: self.admission.running,
            "num_requests_waiting": lambda: self.admission.waiting,
            "kv_cache_utilization": lambda: used() / self.max_blocks,
            "kv_cache_tokens_per_block": lambda: KV_TOKENS_PER_BLOCK,
            "kv_cache_max_blocks": lambda: self.max_blocks,
            "kv_cache_used_blocks": used,
            "kv_cache_free_blocks": lambda: self.max_blocks - used(),
            "kv_cache_hit_rate": lambda: 0.0,  # no prefix reuse in the stand-in
            "max_num_active_requests": lambda: limits.max_batch_size,
        }

    def check_limits(self, req: SamplingFields, prompts: int) -> None:
        """The request limits on n, stop strings and prompts (400 naming the field)."""
        limits = self.limits.request
        checks = [("n", req.n, limits.max_n), ("stop", len(req.stop_list()), limits.max_stop),
                  ("prompt", prompts, limits.max_prompts)]
        for param, value, most in checks:
            if value > most:
                raise RequestError(f"{param}: at most {most} allowed on this server; got {value}", param=param)

    def jobs(self, req: SamplingFields, prompts: list[list[int]]) -> list[tuple[int, Job]]:
        """(choice index, Job) for every prompt × n, with sampling resolved against the model's defaults."""
        sampling = self._sampling(req)
        limit = req.token_limit()
        out = []
        for p, prompt in enumerate(prompts):
            budget = self.engine.budget(len(prompt), limit)
            for j in range(req.n):
                seed = None if sampling.seed is None else (sampling.seed + j) % 2 ** 63
                out.append((p * req.n + j, Job(
                    prompt_ids=prompt, max_new_tokens=budget, sampling=Sampling(**{**vars(sampling), "seed": seed}),
                    stops=req.stop_list(), stop_token_ids=set(req.stop_token_ids or ()),
                    min_tokens=req.min_tokens, ignore_eos=req.ignore_eos, keep_stop=req.include_stop_str_in_output,
                    skip_special_tokens=req.skip_special_tokens, logprobs=req.logprob_count())))
        return out

    def _sampling(self, req: SamplingFields) -> Sampling:
        base = self.engine.default_sampling()
        vocab = self.engine.model.config.vocab_size
        bias = {}
        for key, value in (req.logit_bias or {}).items():
            if not key.isdigit() or int(key) >= vocab:
                raise RequestError(f"logit_bias: key {key!r} is not a token id in [0, {vocab})", param="logit_bias")
            bias[int(key)] = max(-100.0, min(100.0, value))
        picked = {"temperature": req.temperature, "top_p": req.top_p, "top_k": req.top_k, "min_p": req.min_p}
        fields = {**vars(base), **{k: v for k, v in picked.items() if v is not None}}
        fields["top_k"] = max(fields["top_k"], 0)
        return Sampling(**{**fields, "presence_penalty": req.presence_penalty, "seed": req.seed,
                           "frequency_penalty": req.frequency_penalty, "logit_bias": bias,
                           "repetition_penalty": req.repetition_penalty})

    async def run(self, generation: Generation) -> AsyncIterator[tuple[int, Piece | Finish]]:
        """Yield (choice index, Piece) and (choice index, Finish) events until every job ends."""
        jobs, seat = generation.jobs, generation.seat
        for _, job in jobs:
            self._jobs[id(job)] = job
        first, scheduled, finishes = None, None, []
        try:
            await seat.take()
            scheduled = time.monotonic()
            loop, queue = asyncio.get_running_loop(), asyncio.Queue()
            future = loop.run_in_executor(self._pool, self._work, jobs, loop, queue)
            future.add_done_callback(lambda _: seat.leave())
            while len(finishes) < len(jobs):
                index, item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Finish):
                    finishes.append(item)
                elif first is None and item.text:
                    first = time.monotonic()
                yield index, item
        finally:
            for _, job in jobs:
                job.cancel.set()
                self._jobs.pop(id(job), None)
            seat.abandon()
            self._observe(generation, scheduled, first, finishes)

    def _observe(self, generation: Generation, scheduled: float | None, first: float | None, finishes) -> None:
        """Every admitted request ends in the metrics; one left before all its sequences ended as "abort"."""
        now = time.monotonic()
        aborted = len(finishes) < len(generation.jobs)
        self.metrics.observe(RequestTiming(
            generation.arrival, scheduled or now, first, now, generation.prompt_tokens,
            sum(job.progress for _, job in generation.jobs) if aborted else sum(f.completion_tokens for f in finishes),
            "abort" if aborted else finishes[-1].reason))

    def _work(self, jobs, loop, queue) -> None:
        """Worker thread: decode the jobs one after another, posting events to the loop."""
        def post(index, item):
            loop.call_soon_threadsafe(queue.put_nowait, (index, item))

        for index, job in jobs:
            try:
                finish = self.engine.run(job, lambda text, logprobs, i=index: post(i, Piece(text, logprobs)))
            except Exception as exc:  # noqa: BLE001 - surfaced to the request, not swallowed
                post(index, exc)
                return
            post(index, finish)

    def abort_all(self) -> None:
        """Shutdown: every running or queued sequence stops before its next token."""
        for job in list(self._jobs.values()):
            job.cancel.set()

    def close(self) -> None:
        self.abort_all()
        self._pool.shutdown(wait=True, cancel_futures=True)
