"""The engine surfaces the CPU stand-in can present (`--surface trtllm|vllm|sglang`): the health, model-list and
Prometheus paths and the metric names that our smoke test, gateway, bench and manifests depend on, each read
from that engine's pinned facts (`pipeline/trtllm/facts.json`, `pipeline/engines/facts/<engine>.json`).

The stand-in measures one set of series (its own names, `metrics.py`); a surface re-exposes each under the
engine's name for the same quantity: the same name under the engine's prefix, or the name in `RENAMED` where
the engine calls it differently. A series the engine does not publish is left out, so a scrape shows only
names the pinned release exports. This proves our wiring against each engine's surface, not the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pipeline.engines.facts import load_facts as engine_facts
from pipeline.errors import PipelineError
from pipeline.trtllm import load_facts as trtllm_facts

OPENAI_MODELS_PATH = "/v1/models"  # the OpenAI API's model list, which trtllm-serve implements
# engine -> {stand-in quantity: the engine's series where it is not <prefix><quantity>}; each must be published
RENAMED = {
    "trtllm": {"request_success": "request_success_total"},
    "vllm": {
        "time_per_output_token_seconds": "vllm:request_time_per_output_token_seconds",
        "kv_cache_utilization": "vllm:kv_cache_usage_perc",
    },
    "sglang": {
        "time_per_output_token_seconds": "sglang:request_time_per_output_token_seconds",
        "request_queue_time_seconds": "sglang:queue_time_seconds",
        "num_requests_running": "sglang:num_running_reqs",
        "num_requests_waiting": "sglang:num_queue_reqs",
        "kv_cache_utilization": "sglang:token_usage",
        "prompt_tokens": "sglang:prompt_tokens_total",
        "generation_tokens": "sglang:generation_tokens_total",
        "request_success": "sglang:num_requests_total",
    },
}


@dataclass(frozen=True)
class Surface:
    """What one engine's server shows our code: its paths and the Prometheus series it publishes."""

    engine: str
    health_path: str
    models_path: str
    metrics_path: str
    prefix: str
    published: frozenset[str]  # series names as the facts list them (counters with or without _total)
    queue_metric: str | None

    def series(self, quantity: str) -> str | None:
        """The engine's series for one stand-in quantity, or None when the engine publishes none."""
        name = RENAMED[self.engine].get(quantity, self.prefix + quantity)
        return name if name in self.published else None


def _trtllm() -> Surface:
    facts = trtllm_facts()
    liveness = next(path for path, role in facts["endpoints"]["value"].items() if role == "liveness")
    return Surface("trtllm", health_path=liveness, models_path=OPENAI_MODELS_PATH,
                   metrics_path=facts["prometheus_endpoint"]["value"]["path"],
                   prefix=facts["prometheus_metrics"]["prefix"],
                   published=frozenset(facts["prometheus_metrics"]["value"]), queue_metric=None)


def _engine(engine: str) -> Surface:
    facts = engine_facts(engine)
    serving = facts["serving"]
    prefix = f"{engine}:"
    return Surface(engine, health_path=serving["health"]["path"], models_path=serving["models"]["path"],
                   metrics_path=serving["metrics"]["path"], prefix=prefix, published=frozenset(facts["metrics"]),
                   queue_metric=serving["queue_metric"])


READERS = {"trtllm": _trtllm, "vllm": lambda: _engine("vllm"), "sglang": lambda: _engine("sglang")}
SURFACES = tuple(READERS)


@cache
def surface(engine: str) -> Surface:
    """The surface of `engine`, its renames checked against its facts (a stale rename fails here)."""
    if engine not in READERS:
        raise PipelineError(f"--surface {engine}: expected one of {', '.join(SURFACES)}")
    found = READERS[engine]()
    unpublished = sorted(set(RENAMED[engine].values()) - found.published)
    if unpublished:
        raise PipelineError(f"surface {engine}: {', '.join(unpublished)} not among the pinned release's metrics")
    return found


class SurfaceCollector:
    """A Prometheus collector re-exposing the stand-in's registry under one engine's series names
    (prometheus_client is imported lazily: it comes with the serve extra)."""

    def __init__(self, source, shown: Surface):
        self.source, self.shown = source, shown

    def collect(self):
        from prometheus_client.metrics_core import Metric

        for family in self.source.collect():
            name = self.shown.series(family.name)
            if name is None:
                continue
            base = name.removesuffix("_total") if family.type == "counter" else name
            renamed = Metric(base, family.documentation, family.type, family.unit)
            renamed.samples = [sample._replace(name=base + sample.name[len(family.name):])
                               for sample in family.samples]
            yield renamed


def render_metrics(source, shown: Surface) -> bytes:
    """The exposition of the stand-in's registry `source` as `shown`'s engine names it."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SurfaceCollector(source, shown))
    return generate_latest(registry)


def present(app, service, engine: str) -> None:
    """Serve `engine`'s metrics path (its series names) instead of the stand-in's own; check that its health and
    model-list paths are the stand-in's."""
    from fastapi.responses import Response

    from pipeline.cpu_backend.metrics import CONTENT_TYPE

    shown = surface(engine)
    paths = {route.path for route in app.router.routes}
    missing = [path for path in (shown.health_path, shown.models_path) if path not in paths]
    if missing:
        raise PipelineError(f"--surface {engine}: the stand-in has no route {missing[0]}")
    app.router.routes = [route for route in app.router.routes if getattr(route, "name", "") != "metrics"]

    async def metrics():
        return Response(render_metrics(service.metrics.registry, shown), media_type=CONTENT_TYPE)

    app.add_api_route(shown.metrics_path, metrics, methods=["GET"], name="metrics")
