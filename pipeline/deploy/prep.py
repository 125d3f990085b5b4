"""The model-prep Job's steps per backend: fill the model cache once, so serving pods never download.

Each step is one container; all but the last run as init containers, in order. Steps that run
`hunyuan-trt` pass only `args` (the image's entrypoint is the CLI, behind NVIDIA's environment setup);
the others replace `command`.
"""

from __future__ import annotations

from pipeline.deploy.settings import Deployment

EMBEDDED_TINY_DIR = "/opt/hunyuan-trt/models/hunyuan-tiny"  # where docker/Dockerfile.cpu puts the tiny model
HF_TOKEN_SECRET = "hunyuan-trt-hf-token"  # optional; only needed for gated or rate-limited downloads

STEPS = {
    "pytorch": ("fetch", "inspect", "build"),
    "tensorrt": ("fetch", "inspect", "convert", "build"),
    "cpu": ("copy-embedded", "inspect", "build"),
}


def _fetch(d: Deployment) -> dict:
    return {"command": ["hf", "download", d.model_repo, "--local-dir", d.model_dir],
            "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
                "name": HF_TOKEN_SECRET, "key": "token", "optional": True}}}]}


def _copy_embedded(d: Deployment) -> dict:
    return {"command": ["/bin/sh", "-c", f"mkdir -p {d.model_dir} && cp -a {EMBEDDED_TINY_DIR}/. {d.model_dir}/"]}


def _inspect(d: Deployment) -> dict:
    return {"args": ["inspect", "--model-dir", d.model_dir]}


def _convert(d: Deployment) -> dict:
    return {"args": ["convert", "--profile", d.profile, "--model-dir", d.model_dir, "--out", d.checkpoint_dir]}


def _build(d: Deployment) -> dict:
    """--force: a rerun of the Job replaces the bundle (written to a temp dir, then renamed)."""
    source = d.checkpoint_dir if d.backend == "tensorrt" else d.model_dir
    return {"args": ["build", "--profile", d.profile, "--model-dir", source, "--out", d.bundle_dir, "--force"]}


STEP_SPECS = {"fetch": _fetch, "copy-embedded": _copy_embedded, "inspect": _inspect, "convert": _convert,
              "build": _build}


def prep_containers(d: Deployment) -> list[dict]:
    """Containers (name + command/args/env) for every step of this deployment's backend, in order."""
    return [{"name": step, **STEP_SPECS[step](d)} for step in STEPS[d.backend]]
