"""Prometheus metrics under TensorRT-LLM's own names (`tensorrt_llm/metrics/collector.py` at the pin: no prefix,
see `pipeline/trtllm/facts.json` `prometheus_metrics`), so routers, autoscalers and dashboards written for
trtllm-serve read the CPU stand-in unchanged.

Gauges are computed at scrape time from the live server state; histograms use trtllm's bucket edges.
Each server owns its registry, so several servers can live in one process (tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
_TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                 10.0, 20.0, 40.0, 80.0)

# name -> (help, buckets)
HISTOGRAMS = {
    "e2e_request_latency_seconds": ("Histogram of end to end request latency in seconds.", _LATENCY_BUCKETS),
    "time_to_first_token_seconds": ("Histogram of time to first token in seconds.", _TTFT_BUCKETS),
    "time_per_output_token_seconds": ("Histogram of time per output token in seconds.", _TPOT_BUCKETS),
    "request_queue_time_seconds": ("Histogram of time spent in WAITING phase for request.", _LATENCY_BUCKETS),
}
# name -> help; values come from callables given to ServerMetrics
GAUGES = {
    "num_requests_running": "Number of active requests",
    "num_requests_waiting": "Number of queued requests",
    "kv_cache_utilization": "KV cache utilization",
    "kv_cache_tokens_per_block": "Tokens per KV cache block",
    "kv_cache_max_blocks": "Maximum number of KV cache blocks",
    "kv_cache_used_blocks": "Used KV cache blocks",
    "kv_cache_free_blocks": "Free KV cache blocks",
    "kv_cache_hit_rate": "KV cache hit rate",
    "max_num_active_requests": "Maximum number of active requests",
}
COUNTERS = {
    "prompt_tokens": "Cumulative number of prompt (input) tokens processed.",
    "generation_tokens": "Cumulative number of generation (output) tokens produced.",
}


@dataclass
class RequestTiming:
    arrival: float
    scheduled: float
    first_token: float | None
    done: float
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class ServerMetrics:
    def __init__(self, model_name: str, gauges: dict[str, Callable[[], float]]):
        self.registry = CollectorRegistry()
        self.labels = {"model_name": model_name, "engine_type": "cpu"}
        names = list(self.labels)
        self.histograms = {name: Histogram(name, doc, names, buckets=buckets, registry=self.registry)
                           for name, (doc, buckets) in HISTOGRAMS.items()}
        self.counters = {name: Counter(name, doc, names, registry=self.registry)
                         for name, doc in COUNTERS.items()}
        self.success = Counter("request_success", "Count of successfully processed requests.",
                               [*names, "finished_reason"], registry=self.registry)
        for metric in [*self.histograms.values(), *self.counters.values()]:
            metric.labels(**self.labels)  # expose zeros before the first request
        for name, doc in GAUGES.items():
            Gauge(name, doc, names, registry=self.registry).labels(**self.labels).set_function(
                gauges[name])

    def observe(self, t: RequestTiming) -> None:
        lab = self.labels
        self.histograms["e2e_request_latency_seconds"].labels(**lab).observe(t.done - t.arrival)
        self.histograms["request_queue_time_seconds"].labels(**lab).observe(t.scheduled - t.arrival)
        if t.first_token is not None:
            self.histograms["time_to_first_token_seconds"].labels(**lab).observe(t.first_token - t.arrival)
            if t.completion_tokens > 1:
                per_token = (t.done - t.first_token) / (t.completion_tokens - 1)
                self.histograms["time_per_output_token_seconds"].labels(**lab).observe(per_token)
        self.counters["prompt_tokens"].labels(**lab).inc(t.prompt_tokens)
        self.counters["generation_tokens"].labels(**lab).inc(t.completion_tokens)
        self.success.labels(**lab, finished_reason=t.finish_reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
