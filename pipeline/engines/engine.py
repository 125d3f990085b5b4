"""The one interface every serving engine module fills (pipeline/engines/{trtllm,vllm,sglang}.py).

An engine says which checkpoint it serves for a profile (`served_profile`), whether that loads (`require_loads`),
what its bundle holds (`render`: config files, argv.json lines, backend environment), and the serving surface the
rest of the product relies on: health and metrics paths, the queue gauge for autoscaling, whether the Hunyuan
adapter goes in front and how the API key is handled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.engines.facts import load_facts
from pipeline.errors import PipelineError
from pipeline.memory_plan import Plan
from pipeline.profiles import Profile
from pipeline.support import LOADS, REFUSED, Support
from pipeline.weights_formats import FORMATS


@dataclass(frozen=True)
class Rendered:
    """What an engine contributes to a bundle besides the common bundle.json entries."""

    files: dict[str, str]  # config files by name (e.g. the --config YAML)
    lines: dict[str, list[str]]  # argv.json: "serve" always, others per engine
    env: dict[str, str] = field(default_factory=dict)  # the backend's environment (serve_env)
    meta: dict = field(default_factory=dict)  # engine-specific bundle.json entries


@dataclass(frozen=True)
class Checkpoint:
    """How an engine serves a profile's weights format: the checkpoint it loads and whether that loads there."""

    weights: str  # pipeline.weights_formats name of the served directory
    quantization: str | None  # the engine's --quantization value (None: read from the checkpoint, or none)
    verdict: str  # loads | refused
    evidence: str  # file:line in the pinned wheel (docs/engines.md has the reading)

    @property
    def model_repo(self) -> str:
        """The Hugging Face repo that holds it (Tencent's published checkpoints; BF16 for anything else)."""
        return FORMATS[self.weights].published_repo or FORMATS["bf16"].published_repo


@dataclass(frozen=True)
class Engine:
    name: str  # the profile's `engine` value
    label: Callable[[], str]  # "vLLM 0.34.0": name and pinned version
    health_path: str
    metrics_path: str
    queue_metric: str | None  # Prometheus gauge of waiting requests (autoscaling); None: the pin exports none
    needs_adapter: bool  # `serve` puts the Hunyuan adapter in front of the engine's raw output
    api_key: str  # how the public endpoint's key is enforced for this engine
    script_host: str  # serve.sh's default $HOST
    served_profile: Callable[[Profile], Profile]  # the profile in the engine's checkpoint terms
    support: Callable[[Profile], Support]  # does the served profile load on this engine's pin?
    require_loads: Callable[[str, Profile], Support]  # the verdict; PipelineError (one line) when refused
    render: Callable[[Profile, Plan, str], Rendered]  # (served profile, plan, served model dir)
    memory_setting: Callable[[Profile, Plan], str]  # the engine's memory knob giving the planner's KV budget
    tools_missing: Callable[[Profile], list[str]]  # what serving needs that is not installed here


def checkpoint_profile(profile: Profile, checkpoints: dict[str, Checkpoint]) -> Profile:
    """`profile` with the weights and repo of the checkpoint the engine serves for its weights format."""
    chosen = checkpoints[profile.weights]
    return profile.model_copy(update={"weights": chosen.weights, "model_repo": chosen.model_repo})


def checkpoint_support(label: str, profile: Profile, checkpoints: dict[str, Checkpoint],
                       layout_problem: str = "") -> Support:
    """The verdict of a served profile from the engine's checkpoint table, with its evidence."""
    chosen = next(c for c in checkpoints.values() if c.weights == profile.weights)
    basis = f"{label}: {chosen.weights} ({chosen.model_repo}"
    basis += f", --quantization {chosen.quantization})" if chosen.quantization else ")"
    if chosen.verdict == LOADS and not layout_problem:
        return Support(LOADS, basis, f"evidence: {chosen.evidence}")
    loading = sorted({c.weights for c in checkpoints.values() if c.verdict == LOADS})
    return Support(REFUSED, basis, f"{layout_problem or f'weights {profile.weights} does not load'} "
                                   f"(evidence: {chosen.evidence}); formats that load on {label}: {', '.join(loading)}")


def refuse_unless_loads(label: str, name: str, verdict: Support) -> Support:
    """`verdict`, or a one-line PipelineError when it is a refusal."""
    if verdict.refused:
        raise PipelineError(f"profile '{name}' is refused on {label}: {verdict.detail}")
    return verdict


def fraction(value: float) -> float:
    """A memory fraction as an engine flag value: four decimals, never above 1."""
    return round(min(value, 1.0), 4)


def pinned_engine(name: str, display: str, checkpoints: dict[str, Checkpoint], support: Callable[[Profile], Support],
                  **fields) -> Engine:
    """An engine whose label and serving surface come from its facts file (facts/<name>.json) and whose checkpoint
    table decides what it serves and whether that loads; `fields` are the rest of the interface. It runs behind the
    adapter and takes no key of its own, so serve.sh keeps it on loopback unless `fields` say otherwise."""
    fields = {"needs_adapter": True, "script_host": "127.0.0.1"} | fields
    facts = load_facts(name)
    serving, label = facts["serving"], f"{display} {facts['version']}"
    return Engine(name=name, label=lambda: label, health_path=serving["health"]["path"],
                  metrics_path=serving["metrics"]["path"], queue_metric=serving["queue_metric"],
                  served_profile=lambda profile: checkpoint_profile(profile, checkpoints), support=support,
                  require_loads=lambda profile_name, profile: refuse_unless_loads(label, profile_name, support(profile)),
                  **fields)
