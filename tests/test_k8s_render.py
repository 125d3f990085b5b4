"""The overlays are rendered from the profiles: committed files equal a fresh render, numbers come from the plan."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.deploy import render as render_mod
from pipeline.deploy.overlay import overlay_files
from pipeline.deploy.settings import STARTUP_MARGIN, deployment_for
from pipeline.engines.registry import engine_profile
from pipeline.memory_plan import ENGINE_INIT_S, make_plan
from pipeline.profiles import load_profile


@pytest.fixture(scope="module")
def fresh_render(tmp_path_factory) -> Path:
    """One render of every overlay from the committed base and components, for the two tests below."""
    return render_mod.render_fresh(tmp_path_factory.mktemp("fresh"))


@pytest.mark.slow
def test_committed_overlays_and_golden_files_match_a_fresh_render(fresh_render):
    assert render_mod.stale_files(fresh_root=fresh_render) == [], "run `make k8s` and commit the result"


@pytest.mark.integration
def test_stale_files_reports_an_edited_overlay_and_an_orphan(tmp_path, fresh_render):
    for sub in ("base", "components", "overlays", "rendered"):
        subprocess.run(["cp", "-r", str(render_mod.K8S_ROOT / sub), str(tmp_path / sub)], check=True)
    patch = tmp_path / "overlays" / "h200x1" / "profile" / "model-server.yaml"
    threshold = deployment_for("h200x1").startup_failure_threshold
    patch.write_text(patch.read_text().replace(f"failureThreshold: {threshold}", "failureThreshold: 7"))
    (tmp_path / "rendered" / "gone.yaml").write_text("kind: List\n")
    assert render_mod.stale_files(tmp_path, fresh_render) == ["overlays/h200x1/profile/model-server.yaml",
                                                              "rendered/gone.yaml"]


DEPLOYMENTS = {d.name: d for d in render_mod.deployments()}


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_overlay_numbers_come_from_profile_and_plan(name):
    d = DEPLOYMENTS[name]
    engine, profile, spec = engine_profile(d.profile, {"engine": d.engine})
    plan = make_plan(d.profile, profile, spec)
    files = overlay_files(d)
    server = yaml.safe_load(files["profile/model-server.yaml"])
    scaling = yaml.safe_load(files["profile/autoscaling.yaml"])
    monitor = yaml.safe_load(files["profile/monitors.yaml"])
    prep = yaml.safe_load(files["profile/model-prep.yaml"])["spec"]["template"]["spec"]
    assert d.model_repo == profile.model_repo and d.checkpoint_gb == plan.checkpoint_gb
    assert {server["spec"]["template"]["spec"]["containers"][0][p]["httpGet"]["path"]
            for p in ("startupProbe", "livenessProbe", "readinessProbe")} == {engine.health_path}
    assert monitor["spec"]["podMetricsEndpoints"][0]["path"] == engine.metrics_path
    query = scaling["spec"]["triggers"][0]["metadata"]["query"]
    # TensorRT-LLM 1.2.1 has no queue gauge: Little's law on its queue-time histogram
    assert (engine.queue_metric or "rate(request_queue_time_seconds_sum") in query
    build = prep["containers"][0]["command"]
    assert build[build.index("--engine") + 1] == engine.name
    assert name == (d.profile if engine.name == load_profile(d.profile)[0].engine else f"{d.profile}-{engine.name}")
    pod = server["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "replicas" not in server["spec"] and scaling["spec"]["minReplicaCount"] == profile.replicas
    gpus = container["resources"]["limits"].get("nvidia.com/gpu")
    assert gpus == (str(profile.num_gpus) if profile.gpu.k8s_product else None)
    budget = container["startupProbe"]["failureThreshold"] * 10
    load_s = plan.checkpoint_gb * 1000 / profile.storage_mb_per_s  # at the profile's storage speed
    assert budget >= STARTUP_MARGIN * (load_s + ENGINE_INIT_S * bool(profile.gpu.k8s_product))
    ready = float(container["args"][container["args"].index("--ready-timeout") + 1])
    assert ready < budget
    assert container["args"][:3] == ["serve", "--bundle", f"/models/bundles/{name}"]
    assert container["image"] == f"hunyuan-trt-{ {'trtllm': 'gpu'}.get(engine.name, engine.name)}" \
        if profile.gpu.k8s_product else container["image"] == "hunyuan-trt-cpu"
    if profile.gpu.k8s_product:
        term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [profile.gpu.k8s_product]
    else:
        assert "affinity" not in pod


def test_render_k8s_writes_a_buildable_overlay_outside_the_tree(tmp_path):
    out = tmp_path / "deep" / "overlay"
    result = CliRunner().invoke(main, ["render", "k8s", "--profile", "h200x1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    built = render_mod.kustomize(out)
    assert built == (render_mod.K8S_ROOT / "rendered" / "h200x1.yaml").read_text()
    assert sorted(p.name for p in tmp_path.joinpath("deep").iterdir()) == ["overlay"]  # no staging leftovers


def test_render_k8s_replaces_its_own_overlay_whole_and_a_foreign_directory_only_with_force(tmp_path):
    out = tmp_path / "overlay"
    render = ["render", "k8s", "--profile", "cpu-tiny", "--out", str(out)]
    assert CliRunner().invoke(main, render).exit_code == 0
    (out / "stray.yaml").write_text("kind: List\n")
    assert CliRunner().invoke(main, render).exit_code == 0
    assert "stray.yaml" not in {p.name for p in out.iterdir()}
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    refused = CliRunner().invoke(main, ["render", "k8s", "--profile", "cpu-tiny", "--out", str(foreign)])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert (foreign / "todo.txt").read_text() == "mine"
    forced = CliRunner().invoke(main, ["render", "k8s", "--profile", "cpu-tiny", "--out", str(foreign), "--force"])
    assert forced.exit_code == 0 and (foreign / "kustomization.yaml").is_file()
    assert not (foreign / "todo.txt").exists()


def test_render_k8s_engine_writes_the_engine_overlay_its_golden_was_built_from(tmp_path):
    out = tmp_path / "overlay"
    result = CliRunner().invoke(main, ["render", "k8s", "--profile", "a100x2", "--engine", "vllm", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert render_mod.kustomize(out) == (render_mod.K8S_ROOT / "rendered" / "a100x2-vllm.yaml").read_text()


def test_render_k8s_engine_the_profile_does_not_load_on_is_one_line_exit_2(tmp_path):
    out = tmp_path / "overlay"
    result = CliRunner().invoke(main, ["render", "k8s", "--profile", "cpu-tiny", "--engine", "sglang", "--out", str(out)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "cpu-tiny" in result.output and not out.exists()


def test_unknown_profile_is_one_line_exit_2_and_writes_nothing(tmp_path):
    out = tmp_path / "overlay"
    result = CliRunner().invoke(main, ["render", "k8s", "--profile", "h200x3", "--out", str(out)])
    assert result.exit_code == 2
    assert "unknown profile 'h200x3' (did you mean 'h200x2'?)" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_kustomize_failure_is_one_clear_line(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(Exception, match="kubectl kustomize failed") as error:
        render_mod.kustomize(tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.integration
def test_policy_violations_name_the_profile_and_policy(tmp_path):
    subprocess.run(["cp", "-r", str(render_mod.K8S_ROOT / "rendered"), str(tmp_path / "rendered")], check=True)
    golden = tmp_path / "rendered" / "h200x1.yaml"
    threshold = deployment_for("h200x1").startup_failure_threshold
    golden.write_text(golden.read_text().replace(f"failureThreshold: {threshold}", "failureThreshold: 7"))
    found = render_mod.policy_violations(tmp_path)
    assert found and all(v.startswith("h200x1: probe-budget:") for v in found)
    assert render_mod.policy_violations() == []
