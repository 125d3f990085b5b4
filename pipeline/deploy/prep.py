"""The model-prep Job's steps per backend: fill the model cache once, so serving pods never download.

Each step is one container; all but the last run as init containers, in order. The first, `check-bundle`,
asks `hunyuan-trt bundle-status` whether the bundle on the cache was built from this very profile (revision
included) by this TensorRT-LLM pin; if so it leaves a marker and every later step exits at once, so a rerun
of the Job under live model pods touches nothing. Each step runs through a shell (for that check) behind the
image's own entrypoint.

`quantize` runs only when the profile serves another weights format than its model_repo is published in; the
step's flags come from `pipeline.weights_formats.FORMATS` (`produced_from`, via `Deployment.quantize_args`):
Tencent's FP8 repo relabelled with `--from-published` for the FP8 profiles, the BF16 repo streamed to INT8
weight-only for a100x2. Both run on the prep pod's CPUs; `--keep-current` leaves an output made from the same
download alone. `hunyuan-trt prep` runs these same steps outside Kubernetes (docker compose), and
`make build-engine` the same quantize step on the default download (`hunyuan-trt quantize --profile`).
"""

from __future__ import annotations

import shlex

from pipeline.deploy.settings import Deployment
from pipeline.download import quantize_argv

EMBEDDED_TINY_DIR = "/opt/hunyuan-trt/models/hunyuan-tiny"  # where docker/Dockerfile.cpu puts the tiny model
HF_TOKEN_SECRET = "hunyuan-trt-hf-token"  # optional; only needed for gated or rate-limited downloads
CURRENT_MARKER = "/tmp/bundle-current"  # on the Job pod's shared /tmp emptyDir
CLI = "hunyuan-trt"

STEPS = {
    "pytorch": ("check-bundle", "fetch", "inspect", "quantize", "build"),
    "tensorrt": ("check-bundle", "fetch", "inspect", "quantize", "convert", "build"),
    "cpu": ("check-bundle", "copy-embedded", "inspect", "quantize", "build"),
}


def _check_bundle(d: Deployment) -> dict:
    """A gate: exit 0 means the bundle is current and every later step is skipped."""
    return {"argv": [CLI, "bundle-status", "--profile", d.profile, "--engine", d.engine, "--bundle", d.bundle_dir],
            "gate": True}


def _fetch(d: Deployment) -> dict:
    """`hunyuan-trt download` fetches the pinned revision and checks file names and sizes against the hub."""
    revision = ["--revision", d.revision] if d.revision else []
    return {"argv": [CLI, "download", "--profile", d.profile, "--engine", d.engine, *revision, "--out", d.model_dir],
            "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
                "name": HF_TOKEN_SECRET, "key": "token", "optional": True}}}]}


def _copy_embedded(d: Deployment) -> dict:
    return {"argv": ["sh", "-c", f"mkdir -p {d.model_dir} && cp -a {EMBEDDED_TINY_DIR}/. {d.model_dir}/"]}


def _inspect(d: Deployment) -> dict:
    return {"argv": [CLI, "inspect", "--model-dir", d.model_dir]}


def _quantize(d: Deployment) -> dict | None:
    """None (no step) when the download is served as it is."""
    if not d.quantize_args:
        return None
    return {"argv": [CLI, "quantize", *quantize_argv(d.model_dir, d.quantize_args, d.quantized_dir)]}


def _convert(d: Deployment) -> dict:
    return {"argv": [CLI, "convert", "--profile", d.profile, "--model-dir", d.served_model_dir,
                     "--out", d.checkpoint_dir]}


def _build(d: Deployment) -> dict:
    """--force: a stale bundle is replaced (written to a temp dir, then renamed)."""
    source = d.checkpoint_dir if d.backend == "tensorrt" else d.served_model_dir
    return {"argv": [CLI, "build", "--profile", d.profile, "--engine", d.engine, "--model-dir", source,
                     "--out", d.bundle_dir, "--force"]}


STEP_SPECS = {"check-bundle": _check_bundle, "fetch": _fetch, "copy-embedded": _copy_embedded,
              "inspect": _inspect, "quantize": _quantize, "convert": _convert, "build": _build}
UNLESS_CURRENT = (f'if [ -e {CURRENT_MARKER} ]; then echo "bundle up to date: $0 skipped"; exit 0; fi; '
                  'exec "$@"')


def _command(d: Deployment, spec: dict) -> list[str]:
    """The container command: the image's entrypoint, then a shell that runs the check or skips the step."""
    shell = [*d.sizing.entrypoint, "/bin/sh", "-c"]
    if spec.get("gate"):
        return [*shell, f"if {shlex.join(spec['argv'])}; then touch {CURRENT_MARKER}; fi"]
    return [*shell, UNLESS_CURRENT, spec["argv"][0], *spec["argv"]]


def prep_steps(d: Deployment) -> list[tuple[str, dict]]:
    """(name, spec) of every step this deployment's backend runs, in order: spec has `argv`, and `env` (extra
    container environment) or `gate` (the up-to-date check) where they apply."""
    specs = ((step, STEP_SPECS[step](d)) for step in STEPS[d.backend])
    return [(step, spec) for step, spec in specs if spec is not None]


def prep_containers(d: Deployment) -> list[dict]:
    """Containers (name, command, env) for every step of this deployment's backend, in order."""
    return [{"name": step, "command": _command(d, spec), **({"env": spec["env"]} if "env" in spec else {})}
            for step, spec in prep_steps(d)]
