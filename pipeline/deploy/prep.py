"""The model-prep Job's steps per backend: fill the model cache once, so serving pods never download.

Each step is one container; all but the last run as init containers, in order. The first, `check-bundle`,
asks `hunyuan-trt bundle-status` whether the bundle on the cache was built from this very profile (revision
included) by this TensorRT-LLM pin; if so it leaves a marker and every later step exits at once, so a rerun
of the Job under live model pods touches nothing. Each step runs through a shell (for that check) behind the
image's own entrypoint.
"""

from __future__ import annotations

from pipeline.deploy.settings import Deployment

EMBEDDED_TINY_DIR = "/opt/hunyuan-trt/models/hunyuan-tiny"  # where docker/Dockerfile.cpu puts the tiny model
HF_TOKEN_SECRET = "hunyuan-trt-hf-token"  # optional; only needed for gated or rate-limited downloads
CURRENT_MARKER = "/tmp/bundle-current"  # on the Job pod's shared /tmp emptyDir
CLI = "hunyuan-trt"

STEPS = {
    "pytorch": ("check-bundle", "fetch", "inspect", "build"),
    "tensorrt": ("check-bundle", "fetch", "inspect", "convert", "build"),
    "cpu": ("check-bundle", "copy-embedded", "inspect", "build"),
}


def _check_bundle(d: Deployment) -> dict:
    return {"script": f"if {CLI} bundle-status --profile {d.profile} --engine {d.engine} --bundle {d.bundle_dir}; "
                      f"then touch {CURRENT_MARKER}; fi"}


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


def _convert(d: Deployment) -> dict:
    return {"argv": [CLI, "convert", "--profile", d.profile, "--model-dir", d.model_dir, "--out", d.checkpoint_dir]}


def _build(d: Deployment) -> dict:
    """--force: a stale bundle is replaced (written to a temp dir, then renamed)."""
    source = d.checkpoint_dir if d.backend == "tensorrt" else d.model_dir
    return {"argv": [CLI, "build", "--profile", d.profile, "--engine", d.engine, "--model-dir", source,
                     "--out", d.bundle_dir, "--force"]}


STEP_SPECS = {"check-bundle": _check_bundle, "fetch": _fetch, "copy-embedded": _copy_embedded,
              "inspect": _inspect, "convert": _convert, "build": _build}
UNLESS_CURRENT = (f'if [ -e {CURRENT_MARKER} ]; then echo "bundle up to date: $0 skipped"; exit 0; fi; '
                  'exec "$@"')


def _command(d: Deployment, spec: dict) -> list[str]:
    """The container command: the image's entrypoint, then a shell that runs the check or skips the step."""
    shell = [*d.sizing.entrypoint, "/bin/sh", "-c"]
    if "script" in spec:
        return [*shell, spec["script"]]
    return [*shell, UNLESS_CURRENT, spec["argv"][0], *spec["argv"]]


def prep_containers(d: Deployment) -> list[dict]:
    """Containers (name, command, env) for every step of this deployment's backend, in order."""
    containers = []
    for step in STEPS[d.backend]:
        spec = STEP_SPECS[step](d)
        containers.append({"name": step, "command": _command(d, spec),
                           **({"env": spec["env"]} if "env" in spec else {})})
    return containers
