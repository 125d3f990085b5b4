"""The engines, one row each: adding an engine is one module (pipeline/engines/<name>.py, filling
`pipeline.engines.engine.Engine`) and its facts file, plus its row here and its name in
`pipeline.profiles.ENGINE_NAMES` (a test keeps the two equal)."""

from __future__ import annotations

from pathlib import Path

from pipeline.engines import sglang, trtllm, vllm
from pipeline.engines.engine import Engine
from pipeline.model import ModelSpec
from pipeline.profiles import Profile, load_profile

ENGINES: dict[str, Engine] = {engine.name: engine for engine in (trtllm.ENGINE, vllm.ENGINE, sglang.ENGINE)}


def engine_profile(name: str, overrides: dict | None = None) -> tuple[Engine, Profile, ModelSpec]:
    """The profile's engine and the profile in that engine's checkpoint terms (weights format, repo)."""
    profile, spec = load_profile(name, overrides)
    engine = ENGINES[profile.engine]
    return engine, engine.served_profile(profile), spec


def engine_verdicts(name: str, profile: Profile, spec: ModelSpec) -> dict[str, str]:
    """Per engine: whether `profile` (as written, any engine) loads and fits there, in a few words."""
    from pipeline.errors import PipelineError
    from pipeline.memory_plan import make_plan

    verdicts = {}
    for engine_name, engine in ENGINES.items():
        try:
            served = engine.served_profile(profile.model_copy(update={"engine": engine_name}))
            Profile.model_validate(served.model_dump())
        except (PipelineError, ValueError):
            verdicts[engine_name] = "refused (profile rules)"
            continue
        if engine.support(served).refused:
            verdicts[engine_name] = f"refused ({served.weights})"
            continue
        plan = make_plan(Path(name).stem, served, spec)
        verdicts[engine_name] = f"{'fits' if plan.fits else 'does not fit'} ({served.weights})"
    return verdicts
