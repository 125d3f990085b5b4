"""`make download PROFILE=X && make build-engine PROFILE=X`, as typed: each `hunyuan-trt` line the two recipes run
(read with `make -n`) is run here in-process, against a loopback fake hub (HF_ENDPOINT) that serves a tiny
stand-in of the profile's repo. a100x2 serves INT8 weight-only made from the BF16 download, h100x2 ModelOpt FP8
relabelled from Tencent's AngelSlim FP8: build-engine runs the model-prep Job's quantize step into the directory
beside the download, builds from it a bundle that `bundle-status` accepts, and a second run keeps that output.
An engine that serves the download as it is (vLLM: the published GPTQ-Int4 on a100x2) builds from the download."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from fake_hub import FakeHub, tiny_repo

from pipeline.download import pinned_revision
from pipeline.model import TINY_MODEL_DIR
from pipeline.profiles import REPO_ROOT, load_profile
from pipeline.weights_formats import FORMATS

FP8_SHA = "0123456789abcdef0123456789abcdef01234567"  # Tencent's FP8 repo has no pinned commit: REVISION= it


def recipe_lines(tmp_path: Path, *goals: str, **variables: str) -> list[list[str]]:
    """The `hunyuan-trt` command lines `make GOALS VARIABLES` runs, in order (`setup` taken as done)."""
    venv = tmp_path / "venv"
    venv.mkdir(exist_ok=True)
    (venv / ".installed").touch()  # newer than pyproject.toml: make skips `setup`
    assignments = [f"{key}={value}" for key, value in
                   {"VENV": venv, "CLI": "hunyuan-trt", "BUNDLE": tmp_path / "bundle", **variables}.items()]
    listing = subprocess.run(["make", "-n", "-s", "-C", str(REPO_ROOT), *goals, *assignments],
                             capture_output=True, text=True, check=True).stdout
    return [shlex.split(line)[1:] for line in listing.splitlines() if line.startswith("hunyuan-trt ")]


@pytest.fixture
def models(tmp_path, monkeypatch):
    for key, value in {"HUNYUAN_TRT_MODELS": tmp_path / "models", "HF_HOME": tmp_path / "hf-home",
                       "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_ENABLE_HF_TRANSFER": "0"}.items():
        monkeypatch.setenv(key, str(value))
    return tmp_path / "models"


def published_fp8(run_cli, target: Path) -> Path:
    result = run_cli("make-tiny", "--published-fp8", "--out", target)
    assert result.exit_code == 0, result.output
    return target


CASES = {  # profile: (the repo it downloads, its commit, REVISION= given to make, the tiny stand-in of that repo)
    "a100x2": (FORMATS["bf16"].published_repo, None, lambda run_cli, tmp: TINY_MODEL_DIR),
    "h100x2": (FORMATS["fp8-angelslim"].published_repo, FP8_SHA, lambda run_cli, tmp: published_fp8(run_cli, tmp / "fp8")),
}


def run_lines(run_cli, lines: list[list[str]]) -> list:
    results = []
    for argv in lines:
        result = run_cli(*argv)
        assert result.exit_code == 0, f"hunyuan-trt {shlex.join(argv)}: {result.output[-1500:]}"
        results.append(result)
    return results


@pytest.mark.parametrize("name", sorted(CASES))
def test_download_then_build_engine_quantizes_once_as_the_prep_job_does(name, run_cli, models, tmp_path, monkeypatch):
    pytest.importorskip("torch")  # the quantizer (and make-tiny) run torch
    from pipeline.deploy.settings import deployment_for

    repo, revision, stand_in = CASES[name]
    sha = revision or pinned_revision(load_profile(name)[0])
    make_vars = {"PROFILE": name, **({"REVISION": revision} if revision else {})}
    download_lines = recipe_lines(tmp_path, "download", **make_vars)
    build_lines = recipe_lines(tmp_path, "build-engine", **make_vars)
    assert [argv[0] for argv in build_lines] == ["plan", "quantize", "build"]

    with FakeHub(tiny_repo(stand_in(run_cli, tmp_path), repo, sha)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        (fetched,) = run_lines(run_cli, download_lines)
        download = models / f"{repo.split('/')[-1]}@{sha}"
        assert f"-> {download}" in fetched.stdout
        plan, quantized, built = run_lines(run_cli, build_lines)

        weights = load_profile(name)[0].weights
        out = models / f"{download.name}-{weights}"
        job_flags = shlex.join(deployment_for(name).quantize_args)  # the model-prep Job's step
        assert f"hunyuan-trt quantize --model-dir {download} {job_flags} --out {out} --keep-current" in quantized.stderr
        assert f"wrote {out}" in quantized.stdout
        bundle = tmp_path / "bundle"
        meta = json.loads((bundle / "bundle.json").read_text())
        assert meta["model_path"] == str(out) and meta["weights_format"]["name"] == weights
        assert f"hf_quant_config.json quantization.quant_algo {FORMATS[weights].quant_algo}" in built.stdout
        assert run_cli("bundle-status", "--profile", name, "--bundle", bundle).exit_code == 0

        manifest = (out / "quantization_manifest.json").stat().st_mtime_ns
        _, again, _ = run_lines(run_cli, download_lines + build_lines)[1:]
    assert f"up to date: {out}" in again.stdout and (out / "quantization_manifest.json").stat().st_mtime_ns == manifest
    assert run_cli("quantize", "--profile", name, *(["--revision", revision] if revision else []),
                   "--where").stdout.strip() == str(out)


def test_build_engine_names_the_missing_step(run_cli, models, tmp_path):
    """No download: the quantize step names the download; a download but no quantized output: build names the
    quantize step; MODEL_DIR= skips the step and builds from the directory given; `quantize --profile` takes no
    flag it derives, and without it --model-dir and --out stay required."""
    quantize, build = recipe_lines(tmp_path, "build-engine", PROFILE="a100x2")[1:]
    missing = run_cli(*quantize)
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    assert "`make download PROFILE=a100x2`" in missing.stderr and "GB of tencent/Hunyuan-A13B-Instruct" in missing.stderr

    sha = pinned_revision(load_profile("a100x2")[0])
    download = models / f"Hunyuan-A13B-Instruct@{sha}"
    shutil.copytree(TINY_MODEL_DIR, download)
    (download / "download.json").write_text(json.dumps({"downloaded_by": "hunyuan-trt download"}))
    unquantized = run_cli(*build)
    assert unquantized.exit_code == 2 and "Traceback" not in unquantized.output
    assert f"{download}-int8-wo holds no int8-wo checkpoint" in unquantized.stderr
    assert "`hunyuan-trt quantize --profile a100x2`" in unquantized.stderr

    given = recipe_lines(tmp_path, "build-engine", PROFILE="a100x2", MODEL_DIR="/data/int8")
    assert [argv[0] for argv in given] == ["plan", "build"] and given[1][given[1].index("--model-dir") + 1] == "/data/int8"

    for argv, wanted in ((["--profile", "a100x2", "--format", "fp8"], "--profile a100x2: takes no --format"),
                         (["--format", "int8-wo"], "--model-dir and --out: required (or --profile NAME"),
                         (["--model-dir", download, "--out", "o", "--where"], "--where: only with --profile")):
        refused = run_cli("quantize", *argv)
        assert refused.exit_code == 2 and wanted in refused.stderr, refused.output


def test_an_engine_that_serves_the_download_as_is_builds_from_it(run_cli, models, tmp_path):
    """vLLM on a100x2 serves Tencent's published GPTQ-Int4 as downloaded: no quantize step runs."""
    download = models / f"Hunyuan-A13B-Instruct-GPTQ-Int4@{FP8_SHA}"
    shutil.copytree(TINY_MODEL_DIR, download)
    config = json.loads((download / "config.json").read_text())
    (download / "config.json").write_text(json.dumps({**config, "quantization_config": {"quant_method": "gptq"}}))
    (download / "download.json").write_text(json.dumps({"downloaded_by": "hunyuan-trt download"}))
    lines = recipe_lines(tmp_path, "build-engine", PROFILE="a100x2", ENGINE="vllm", REVISION=FP8_SHA)
    _, quantized, built = run_lines(run_cli, lines)
    assert f"nothing to quantize: a100x2 serves int4-gptq weights as downloaded ({download})" in quantized.stdout
    meta = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert meta["model_path"] == str(download) and meta["weights_format"]["name"] == "int4-gptq"
    assert run_cli("bundle-status", "--profile", "a100x2", "--engine", "vllm", "--bundle", tmp_path / "bundle").exit_code == 0
