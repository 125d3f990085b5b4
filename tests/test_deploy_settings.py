"""Deployment numbers and checks that come from profile keys: the pinned revision, the storage speed behind
the startup budget, the one place images are named, and `bundle-status` (the prep Job's skip)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from pipeline import __version__
from pipeline.deploy.settings import IMAGES, IMAGES_COMPONENT, SMG_VERSION, TRTLLM_VERSION, deployment_for
from pipeline.engines.facts import load_facts
from pipeline.errors import PipelineError
from pipeline.model import TINY_MODEL_DIR
from pipeline.profiles import load_profile


def test_revision_must_be_a_full_commit():
    with pytest.raises(PipelineError, match="revision"):
        load_profile("h200x2", {"revision": "main"})
    pinned = deployment_for("h200x2").revision  # the profile's key, else pipeline/data/hf_revisions.json
    assert pinned and re.fullmatch(r"[0-9a-f]{40}", pinned)


def test_slower_storage_gives_a_longer_startup_budget_and_ready_timeout_stays_below_it(monkeypatch):
    import pipeline.deploy.settings as settings

    fast = deployment_for("h200x2")
    real = settings.load_profile
    monkeypatch.setattr(settings, "load_profile", lambda name, overrides=None: real(name, {**(overrides or {}), "storage_mb_per_s": 100}))
    slow = deployment_for("h200x2")
    assert fast.storage_mb_per_s == 200 and slow.storage_mb_per_s == 100
    assert slow.startup_estimate_s - fast.startup_estimate_s == pytest.approx(fast.checkpoint_gb * 1000 / 200, abs=1)
    assert slow.startup_budget_s > fast.startup_budget_s
    assert fast.ready_timeout_s < fast.startup_budget_s and slow.ready_timeout_s < slow.startup_budget_s


def test_images_component_is_the_one_place_for_names_and_tags():
    assert IMAGES["gpu"][1] == f"{__version__}-trtllm{TRTLLM_VERSION}"
    assert IMAGES["cpu"][1] == __version__
    assert IMAGES["gateway"][1] == f"{__version__}-smg{SMG_VERSION}"
    for engine in ("vllm", "sglang"):
        assert IMAGES[engine][1] == f"{__version__}-{engine}{load_facts(engine)['version']}"
    assert [e["name"] for e in yaml.safe_load(IMAGES_COMPONENT.read_text())["images"]] == [
        "hunyuan-trt-gpu", "hunyuan-trt-vllm", "hunyuan-trt-sglang", "hunyuan-trt-cpu", "hunyuan-trt-gateway"]


def test_bundle_status_is_current_only_for_the_same_profile(run_cli, tmp_path):
    bundle = tmp_path / "bundle"
    assert run_cli("build", "--profile", "cpu-tiny", "--model-dir", TINY_MODEL_DIR, "--out", bundle).exit_code == 0
    current = run_cli("bundle-status", "--profile", "cpu-tiny", "--bundle", bundle)
    assert current.exit_code == 0 and "up to date" in current.output
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["resolved_profile"]["max_batch_size"] += 1  # built from another version of the profile
    (bundle / "bundle.json").write_text(json.dumps(meta))
    stale = run_cli("bundle-status", "--profile", "cpu-tiny", "--bundle", bundle)
    assert stale.exit_code == 1 and "resolved_profile changed" in stale.output
    shutil.rmtree(bundle)
    assert run_cli("bundle-status", "--profile", "cpu-tiny", "--bundle", bundle).exit_code == 1


def test_the_quantize_step_comes_from_the_weights_formats_table():
    from pipeline.weights_formats import FORMATS, producer, published_format

    assert deployment_for("h100x2").quantize_args == ("--from-published",)  # Tencent's FP8 repo, relabelled
    assert deployment_for("a100x2").quantize_args == ("--format", "int8-wo", "--method", "stream")
    assert deployment_for("h200x2").quantize_args == ()
    for name in ("h100x2", "h200x1", "l40sx4", "rtx4090x8", "a100x2"):
        profile, _ = load_profile(name)
        made = producer(published_format(profile.model_repo).name, profile.weights)
        assert made in FORMATS[profile.weights].produced_from and not made.needs_gpu
    with pytest.raises(PipelineError, match="model_repo: int8-wo weights cannot be made from a int4-gptq"):
        producer("int4-gptq", "int8-wo")


def test_a_quantized_profile_caches_the_download_and_the_quantized_copy():
    bf16, int8 = deployment_for("h200x2"), deployment_for("a100x2")
    assert int8.cache_gib > bf16.cache_gib  # the 161 GB BF16 download plus the 80 GB INT8 output
    assert int8.cache_gib * 2**30 / 1e9 > bf16.checkpoint_gb + int8.checkpoint_gb


def test_calibrating_from_bf16_is_refused_for_the_gpu_less_prep_job(profiles_copy):
    path = profiles_copy / "h100x2.yaml"
    path.write_text(path.read_text().replace("model_repo: tencent/Hunyuan-A13B-Instruct-FP8",
                                             "model_repo: tencent/Hunyuan-A13B-Instruct"))
    with pytest.raises(PipelineError, match="calibrates on GPUs; the model-prep Job has none"):
        deployment_for("h100x2")


def test_prep_runs_the_jobs_steps_with_quantize_before_build(run_cli):
    result = run_cli("prep", "--profile", "a100x2", "--dry-run")
    assert result.exit_code == 0, result.output
    steps = [line.split("] ")[1].split()[1] for line in result.output.splitlines() if line.startswith("[")]
    assert steps == ["bundle-status", "download", "inspect", "quantize", "build"]
    assert "build --profile a100x2 --engine trtllm --model-dir /models/quantized/a100x2" in result.output


def test_prep_stops_at_a_current_bundle_and_at_the_first_failing_step(run_cli, monkeypatch):
    import subprocess

    ran, codes = [], {}
    monkeypatch.setattr(subprocess, "call", lambda argv: ran.append(argv[1]) or codes.get(argv[1], 0))
    assert run_cli("prep", "--profile", "h100x2").exit_code == 0
    assert ran == ["bundle-status"]  # current: nothing else runs
    ran.clear()
    codes.update({"bundle-status": 1, "quantize": 3})
    failed = run_cli("prep", "--profile", "h100x2")
    assert ran == ["bundle-status", "download", "inspect", "quantize"]
    assert failed.exit_code == 2 and "prep step quantize: `hunyuan-trt quantize" in failed.output
    assert "exited with 3" in failed.output


def test_bundle_status_compares_the_engine_the_prep_job_names(run_cli, tmp_path):
    """An engine overlay's prep Job skips only a bundle built for that engine (in its checkpoint terms)."""
    bundle = tmp_path / "bundle"
    built = run_cli("build", "--profile", "a100x2", "--engine", "vllm", "--model-dir", "/models/gptq",
                    "--model-on-target", "--out", bundle)
    assert built.exit_code == 0, built.output
    assert run_cli("bundle-status", "--profile", "a100x2", "--engine", "vllm", "--bundle", bundle).exit_code == 0
    for other in (["--engine", "sglang"], []):
        stale = run_cli("bundle-status", "--profile", "a100x2", *other, "--bundle", bundle)
        assert stale.exit_code == 1 and "engine changed" in stale.output
