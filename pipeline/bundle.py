"""The serve bundle: everything `hunyuan-trt serve` (or serve.sh) needs to start one replica of the profile's engine
(`pipeline.engines.registry`: trtllm, vllm, sglang).

    <config YAML>         the engine's: llm_api_options.yaml (trtllm-serve --extra_llm_api_options),
                          vllm_config.yaml / sglang_config.yaml (--config)
    argv.json             {"serve": [...], plus "build" (tensorrt) or "standalone" (vLLM with its parsers)} with
                          {host}/{port}/{bundle}/{python}
    serve.sh              the serve command line as a runnable script (backend only, no adapter), with serve_env
    bundle.json           profile, resolved profile, planner verdict, the engine's support verdict, weights format
                          served, serve_env (environment of the backend), the engine (pin, health and metrics
                          paths, queue metric, adapter, API key), model path, served name
    model/                only when the profile raises max_position_embeddings: the served HF directory, a
                          derived config.json and symlinks to every other file of --model-dir

Nothing is written for a profile that does not load on the engine's pin (the engine's `support`) or does not fit,
nor for a
--model-dir whose weights format (`pipeline.weights_formats.detect_format`) is not the profile's.

Everything emitted is checked first, against pipeline/trtllm/schema.json or the engine's facts
(`pipeline.engines.facts.check_argv`); the directory is written through
`pipeline.outputs` (complete or absent; an existing --out is replaced only with force, never the model's).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from pipeline import __version__
from pipeline.derived_model import Link, derived_entries, write_entries
from pipeline.engines.engine import Engine
from pipeline.engines.registry import engine_profile
from pipeline.errors import PipelineError
from pipeline.memory_plan import make_plan
from pipeline.outputs import BUNDLE, replaced_directory
from pipeline.profiles import Profile
from pipeline.trtllm.options import BUNDLE as BUNDLE_PLACEHOLDER
from pipeline.trtllm.options import fill
from pipeline.weights_formats import FORMATS, detect_format

SHELL_VALUES = {"host": "${HOST}", "port": "${PORT}", "bundle": "${BUNDLE}", "python": "${PYTHON}"}
# what the model directory must hold, per backend
MODEL_FILES = {"pytorch": ["config.json"], "cpu": ["config.json"], "tensorrt": ["config.json", "rank0.safetensors"]}
DERIVED_DIR = "model"  # the served HF directory inside the bundle when the profile raises max_position_embeddings


def _check_model_dir(model_dir: str, backend: str, on_target: bool) -> str:
    path = Path(model_dir)
    if on_target:
        if not path.is_absolute():
            raise PipelineError(f"--model-dir {model_dir}: with --model-on-target the path must be absolute")
        return str(path)
    missing = [name for name in MODEL_FILES[backend] if not (path / name).is_file()]
    if not path.is_dir() or missing:
        what = "a directory" if not path.is_dir() else f"{', '.join(missing)} in it"
        raise PipelineError(f"--model-dir {model_dir}: expected {what} (backend {backend} needs "
                            f"{', '.join(MODEL_FILES[backend])}); pass --model-on-target if the checkpoint "
                            "lives only on the serving machine")
    return str(path.resolve())


def served_weights(profile: Profile, model_path: str, on_target: bool) -> dict:
    """bundle.json's weights_format: the profile's, checked against what --model-dir holds (HF directories)."""
    fmt = FORMATS[profile.weights]
    meta = {"name": fmt.name, "support_matrix_row": fmt.matrix_row, "quant_algo": fmt.quant_algo}
    if on_target or profile.backend == "tensorrt":
        return meta | {"checked": "no: " + ("--model-on-target" if on_target else "a TensorRT-LLM checkpoint")}
    found, where = detect_format(Path(model_path))
    if found.name != fmt.name:
        raise PipelineError(f"--model-dir {model_path}: holds {found.name} weights ({where}), but the profile serves "
                            f"{fmt.name} (made by {fmt.made_by}); pass the directory that step writes, or --weights "
                            f"{found.name} if that is what you mean to serve")
    return meta | {"checked": where}


def derived_model(profile: Profile, model_path: str, on_target: bool) -> dict[str, str | Link]:
    """The served HF directory when the profile raises max_position_embeddings (the pin has no override key,
    facts.json long_context_override): config.json rewritten, every other file linked. Empty otherwise."""
    if profile.max_position_embeddings is None:
        return {}
    if on_target:
        raise PipelineError(f"--model-on-target: this profile serves a derived config.json (max_position_embeddings "
                            f"{profile.max_position_embeddings}), which build writes from the checkpoint; run build "
                            "where --model-dir is readable")
    return derived_entries(Path(model_path), {"max_position_embeddings": profile.max_position_embeddings},
                           prefix=f"{DERIVED_DIR}/")


def _with_model_class(profile: Profile, on_target: bool) -> Profile:
    """The profile with its model_cls_file made absolute (checked here unless it lives on the target)."""
    if not profile.model_cls_file or on_target:
        return profile
    path = Path(profile.model_cls_file)
    if not path.is_file():
        raise PipelineError(f"--model-cls-file {path}: not a file; expected the Python file that defines "
                            f"{profile.model_cls_name} for trtllm-build")
    return profile.model_copy(update={"model_cls_file": str(path.resolve())})


def _shell_word(token: str) -> str:
    if "{" not in token:
        return shlex.quote(token)
    filled = fill([token], SHELL_VALUES)[0]
    return '"' + filled.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'


def serve_script(name: str, engine: Engine, lines: dict[str, list[str]], env: dict[str, str]) -> str:
    words = {key: " ".join(_shell_word(t) for t in argv) for key, argv in lines.items()}
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())
    build = f'[ -d "${{BUNDLE}}/engine" ] || {words["build"]}\n' if "build" in lines else ""
    return (f"#!/usr/bin/env bash\n"
            f"# Generated by hunyuan-trt build (profile {name}, {engine.label()}).\n"
            f"# Starts the backend only; `hunyuan-trt serve --bundle DIR` also puts the Hunyuan adapter in front.\n"
            f"set -euo pipefail\n"
            f'BUNDLE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"\n'
            f'HOST="${{HOST:-{engine.script_host}}}"\nPORT="${{PORT:-8000}}"\nPYTHON="${{PYTHON:-python3}}"\n'
            f"{exports}{build}exec {words['serve']}\n")


def engine_meta(engine: Engine) -> dict:
    """bundle.json's `engine`: what `serve`, the deployment and the benchmarks need to know about the server."""
    return {"name": engine.name, "label": engine.label(), "health_path": engine.health_path,
            "metrics_path": engine.metrics_path, "queue_metric": engine.queue_metric,
            "needs_adapter": engine.needs_adapter, "api_key": engine.api_key}


def bundle_files(name: str, overrides: dict | None, model_dir: str,
                 on_target: bool = False) -> dict[str, str | Link]:
    """Refuse a profile that does not load on its engine's pin or does not fit, then render every bundle entry
    (nothing written yet)."""
    engine, profile, spec = engine_profile(name, overrides)
    loads = engine.require_loads(Path(name).stem, profile)
    plan = make_plan(Path(name).stem, profile, spec)
    if not plan.fits:
        raise PipelineError(f"profile '{name}' {plan.verdict}")
    model_path = _check_model_dir(model_dir, profile.backend, on_target)
    profile = _with_model_class(profile, on_target)
    weights = served_weights(profile, model_path, on_target)
    derived = derived_model(profile, model_path, on_target)
    served_dir = f"{BUNDLE_PLACEHOLDER}/{DERIVED_DIR}" if derived else model_path
    rendered = engine.render(profile, plan, served_dir)
    meta = {
        "profile": Path(name).stem, "resolved_profile": profile.model_dump(mode="json"),
        "plan": plan.to_dict(), "verdict": plan.verdict, "engine": engine_meta(engine),
        "support": {"verdict": loads.verdict, "basis": loads.basis, "detail": loads.detail},
        "weights_format": weights, "serve_env": rendered.env,
        "served_model_dir": served_dir,
        "backend": profile.backend, "model_path": model_path, "model_on_target": on_target,
        "served_model_name": profile.served_model_name, "built_by": f"hunyuan-trt {__version__}",
        "tools_missing_here": engine.tools_missing(profile),
        "notes": [], **rendered.meta,
    }
    return {**rendered.files, "argv.json": json.dumps(rendered.lines, indent=2) + "\n",
            "serve.sh": serve_script(Path(name).stem, engine, rendered.lines, rendered.env),
            "bundle.json": json.dumps(meta, indent=2) + "\n", **derived}


def write_bundle(files: dict[str, str | Link], out: Path, force: bool = False, model_dir: str | None = None) -> Path:
    """Write the bundle directory (replacing an existing `out` only with force, never the model directory)."""
    inputs = [Path(model_dir)] if model_dir else []
    with replaced_directory(out, BUNDLE, force, inputs) as staging:
        write_entries(files, staging)
        os.chmod(staging / "serve.sh", 0o755)
    return Path(out)


def read_bundle(directory: Path) -> tuple[dict, dict]:
    """(bundle.json, argv.json) of a bundle directory, with one-line errors for missing or broken files."""
    directory = Path(directory)
    loaded = []
    for name in ("bundle.json", "argv.json"):
        path = directory / name
        try:
            loaded.append(json.loads(path.read_text()))
        except FileNotFoundError:
            raise PipelineError(f"{path}: missing; is {directory} a bundle written by `hunyuan-trt build`?") from None
        except ValueError as error:
            raise PipelineError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(loaded[1].get("serve"), list):
        raise PipelineError(f"{directory / 'argv.json'}: expected a 'serve' list")
    return loaded[0], loaded[1]
