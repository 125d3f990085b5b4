"""`hunyuan-trt download` against a loopback fake hub (HF_ENDPOINT): pinned commit, resume after a kill,
disk-space check before starting, sizes checked against the hub's metadata, and the default model directory
that build-engine picks up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_hub import FakeHub, tiny_repo

from pipeline import download as download_module
from pipeline.model import TINY_MODEL_DIR
from pipeline.procs import wait_until

REPO_ID, SHA = "tencent/Hunyuan-Tiny-Test", "0123456789abcdef0123456789abcdef01234567"
WEIGHTS = "model.safetensors"
BIG = "model-00002-of-00002.safetensors"


@pytest.fixture
def hub_env(tmp_path, monkeypatch, profiles_copy):
    """A profile 'hub-tiny' for REPO_ID pinned at SHA, a models root in tmp, and a private HF_HOME."""
    (profiles_copy / "hub-tiny.yaml").write_text(
        f"extends: cpu-tiny\ndescription: the tiny model served from a fake hub\nmodel_repo: {REPO_ID}\n"
        f"revision: {SHA}\n")
    env = {"HUNYUAN_TRT_MODELS": str(tmp_path / "models"), "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_ENABLE_HF_TRANSFER": "0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return tmp_path / "models" / f"Hunyuan-Tiny-Test@{SHA}"


@pytest.fixture
def hub(monkeypatch):
    with FakeHub(tiny_repo(TINY_MODEL_DIR, REPO_ID, SHA)) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def file_gets(hub, name):
    return [request for request in hub.repo.requests if request[0] == "GET" and request[1].endswith("/" + name)]


def test_download_checks_sizes_and_is_picked_up_by_where(run_cli, hub_env, hub):
    result = run_cli("download", "--profile", "hub-tiny")
    assert result.exit_code == 0, result.output
    assert f"downloaded: {REPO_ID}@{SHA} -> {hub_env}" in result.stdout
    for name, data in hub.repo.files.items():
        assert (hub_env / name).read_bytes() == data
    marker = json.loads((hub_env / "download.json").read_text())
    assert marker["revision"] == SHA and marker["files"][WEIGHTS] == len(hub.repo.files[WEIGHTS])
    assert run_cli("download", "--profile", "hub-tiny", "--where").stdout.strip() == str(hub_env)

    gets = len(file_gets(hub, WEIGHTS))
    again = run_cli("download", "--profile", "hub-tiny")
    assert again.exit_code == 0 and again.stdout.startswith("up-to-date:") and len(file_gets(hub, WEIGHTS)) == gets


def test_where_names_the_command_and_size_when_weights_are_missing(run_cli, hub_env):
    result = run_cli("download", "--profile", "hub-tiny", "--where")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "make download PROFILE=hub-tiny" in result.stderr and " GB of " + REPO_ID in result.stderr


def test_size_mismatch_with_the_hub_metadata_is_refused(run_cli, hub_env, hub, monkeypatch):
    real_info = hub.repo.info

    def lying_info():
        info = real_info()
        next(s for s in info["siblings"] if s["rfilename"] == "config.json")["size"] += 1
        return info

    monkeypatch.setattr(hub.repo, "info", lying_info)
    result = run_cli("download", "--profile", "hub-tiny")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "config.json differs from the hub's metadata: 1227 bytes, the hub says 1228" in result.stderr
    assert not hub_env.exists()


def test_a_file_name_outside_the_repo_is_refused(run_cli, hub_env, hub, tmp_path):
    hub.repo.files["../../escape.txt"] = b"owned"
    result = run_cli("download", "--profile", "hub-tiny")
    assert result.exit_code == 2 and "a file outside the repo ('../../escape.txt')" in result.stderr
    assert not list(tmp_path.rglob("escape.txt"))


def test_disk_space_is_checked_before_starting(run_cli, hub_env, hub, monkeypatch):
    monkeypatch.setattr(download_module.shutil, "disk_usage", lambda path: SimpleNamespace(free=1000))
    result = run_cli("download", "--profile", "hub-tiny")
    assert result.exit_code == 2 and "GB free, the download needs" in result.stderr
    assert not file_gets(hub, WEIGHTS)


def test_unpinned_and_unknown_revisions(run_cli, hub_env, hub, profiles_copy):
    (profiles_copy / "hub-unpinned.yaml").write_text(
        f"extends: cpu-tiny\ndescription: unpinned\nmodel_repo: {REPO_ID}x\n")
    unpinned = run_cli("download", "--profile", "hub-unpinned")
    assert unpinned.exit_code == 2 and "no commit of" in unpinned.stderr and "--revision main" in unpinned.stderr
    unknown = run_cli("download", "--profile", "hub-tiny", "--revision", "f" * 40)
    assert unknown.exit_code == 2 and "Traceback" not in unknown.output and "f" * 40 in unknown.stderr
    main = run_cli("download", "--profile", "hub-tiny", "--revision", "main")
    assert main.exit_code == 0 and "not reproducible" in main.stderr and f"@{SHA}" in main.stdout


@pytest.mark.integration
@pytest.mark.slow
def test_a_killed_download_resumes_mid_file(hub_env, hub, tmp_path):
    # huggingface_hub writes in chunks of up to 10 MiB: a 24 MiB file, sent at 4 MiB/s, killed after 16 MiB
    hub.repo.files[BIG] = bytes(range(256)) * (24 * 4096)
    hub.repo.slow_bytes_per_s = 4 << 20
    command = [sys.executable, "-m", "pipeline", "download", "--profile", "hub-tiny"]
    log = tmp_path / "first.log"
    with open(log, "wb") as out:
        first = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        assert wait_until(lambda: hub.repo.sent.get(BIG, 0) >= 16 << 20, timeout=60,
                          give_up=lambda: first.poll() is not None), log.read_text()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not hub_env.exists()
    partial = hub_env.with_name(f".{hub_env.name}.download")
    cut = partial / (BIG + download_module.PART_SUFFIX)
    assert 0 < cut.stat().st_size < len(hub.repo.files[BIG])

    hub.repo.slow_bytes_per_s = None
    second = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    ranges = [request[2] for request in file_gets(hub, BIG)]
    assert ranges[0] is None and ranges[-1] and int(ranges[-1].split("=")[1].split("-")[0]) >= 10 << 20, ranges
    assert all((hub_env / name).read_bytes() == data for name, data in hub.repo.files.items())
    assert not partial.exists() and Path(hub_env / "download.json").is_file()
