"""The engines behind one interface: every profile x engine that loads and fits builds a bundle that passes the
pinned facts, the others are refused in one line, the memory fraction is converted so the KV budget is the
planner's, and what each engine's bundle says (checkpoint, quantization, KV dtype, parsers, key, metrics)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import get_args

import pytest
import yaml

from pipeline.engines import sglang, vllm
from pipeline.engines.facts import check_argv
from pipeline.engines.registry import ENGINES, engine_profile, engine_verdicts
from pipeline.errors import PipelineError
from pipeline.memory_plan import make_plan
from pipeline.profiles import ENGINE_NAMES, Profile, load_profile, profile_names
from tests.test_build_bundle import fake_model_dir

OTHER_ENGINES = ("vllm", "sglang")
CONFIG_FILES = {"vllm": vllm.CONFIG_NAME, "sglang": sglang.CONFIG_NAME}
GPU_PROFILES = [name for name in profile_names() if load_profile(name)[0].backend != "cpu"]


def build(run_cli, tmp_path: Path, name: str, engine: str, *extra, weights: str | None = None):
    """`hunyuan-trt build --engine ENGINE` with a local directory in the format the engine serves."""
    served = engine_profile(name, {"engine": engine})[1]
    model = fake_model_dir(tmp_path / "models", weights or served.weights)
    out = tmp_path / f"bundle-{name}-{engine}"
    return run_cli("build", "--profile", name, "--engine", engine, "--model-dir", model, "--out", out, *extra), out


def test_the_profile_key_and_the_registry_name_the_same_engines():
    assert tuple(ENGINES) == ENGINE_NAMES == get_args(Profile.model_fields["engine"].annotation)
    assert load_profile("a100x2")[0].engine == "trtllm"


@pytest.mark.parametrize("engine", OTHER_ENGINES)
@pytest.mark.parametrize("name", GPU_PROFILES)
def test_every_profile_builds_a_facts_checked_bundle_or_refuses(run_cli, tmp_path, name, engine):
    profile, spec = load_profile(name)
    verdict = engine_verdicts(name, profile, spec)[engine]
    result, out = build(run_cli, tmp_path, name, engine)
    if not verdict.startswith("fits"):
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert not out.exists()
        return
    assert result.exit_code == 0, result.output
    derived = ["model"] if profile.max_position_embeddings else []
    files = ["argv.json", "bundle.json", CONFIG_FILES[engine], "serve.sh", *derived]
    assert sorted(p.name for p in out.iterdir()) == sorted(files)
    config = yaml.safe_load((out / CONFIG_FILES[engine]).read_text())
    lines = json.loads((out / "argv.json").read_text())
    for argv in lines.values():
        check_argv(engine, argv, config)  # raises on anything the pinned release would reject
    assert f"{{bundle}}/{CONFIG_FILES[engine]}" in lines["serve"]
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["engine"]["name"] == engine and meta["engine"]["needs_adapter"] is True
    assert meta["resolved_profile"]["engine"] == engine and meta["support"]["verdict"] == "loads"
    assert subprocess.run(["bash", "-n", out / "serve.sh"]).returncode == 0
    assert 'HOST="${HOST:-127.0.0.1}"' in (out / "serve.sh").read_text()  # no key on the engine: loopback only


def test_a100x2_on_vllm_serves_the_published_int4_with_the_hunyuan_parsers(run_cli, tmp_path):
    result, out = build(run_cli, tmp_path, "a100x2", "vllm")
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((out / "vllm_config.yaml").read_text())
    assert config["quantization"] == "gptq_marlin" and config["tensor-parallel-size"] == 2
    assert config["enable-expert-parallel"] is False and config["trust-remote-code"] is True
    assert (config["max-num-seqs"], config["max-num-batched-tokens"], config["max-model-len"]) == (128, 16384, 32768)
    lines = json.loads((out / "argv.json").read_text())
    assert lines["serve"][:2] == ["vllm", "serve"] and "--reasoning-parser" not in lines["serve"]
    assert lines["standalone"][-5:] == ["--reasoning-parser", "hunyuan_a13b", "--tool-call-parser", "hunyuan_a13b",
                                        "--enable-auto-tool-choice"]
    assert not any("api-key" in token for argv in lines.values() for token in argv)
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["resolved_profile"]["model_repo"] == "tencent/Hunyuan-A13B-Instruct-GPTQ-Int4"
    assert meta["weights_format"]["name"] == "int4-gptq" and meta["engine"]["queue_metric"] == "vllm:num_requests_waiting"
    assert "VLLM_API_KEY" in meta["standalone"]


def test_sglang_bundle_has_no_parsers_fp8_e4m3_kv_and_metrics(run_cli, tmp_path):
    result, out = build(run_cli, tmp_path, "h100x2", "sglang")
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((out / "sglang_config.yaml").read_text())
    assert config["kv-cache-dtype"] == "fp8_e4m3" and config["quantization"] == "fp8"
    assert (config["tp-size"], config["ep-size"]) == (2, 2) and config["enable-metrics"] is True
    assert all("_" not in key for key in config)  # SGLang's --config takes the dashed names only
    argv = json.loads((out / "argv.json").read_text())["serve"]
    assert not {"--reasoning-parser", "--tool-call-parser", "--api-key"} & set(argv)
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["weights_format"]["name"] == "fp8-angelslim"
    assert meta["resolved_profile"]["model_repo"] == "tencent/Hunyuan-A13B-Instruct-FP8"
    assert meta["engine"]["queue_metric"] == "sglang:num_queue_reqs"


@pytest.mark.parametrize("name", GPU_PROFILES)
def test_memory_fractions_give_the_planners_kv_budget(name):
    """vLLM: KV = u x total - weights - reserve; SGLang: KV = f x total - weights (docs/engines.md)."""
    for engine, kv_from in (("vllm", lambda p, u: u * p.memory_gib_per_gpu - p.weights_gib_per_gpu
                             - p.reserve_gib_per_gpu),
                            ("sglang", lambda p, f: f * p.memory_gib_per_gpu - p.weights_gib_per_gpu)):
        _, profile, spec = engine_profile(name, {"engine": engine})
        plan = make_plan(name, profile, spec)
        setting = {"vllm": vllm.config, "sglang": sglang.config}[engine](profile, plan)
        fraction = setting.get("gpu-memory-utilization", setting.get("mem-fraction-static"))
        assert 0 < fraction <= 1
        assert kv_from(plan, fraction) == pytest.approx(plan.kv_budget_gib_per_gpu, abs=0.01)
        if engine == "sglang":  # what stays outside the fraction holds the activations and graphs
            assert plan.memory_gib_per_gpu * (1 - fraction) >= plan.reserve_gib_per_gpu - 0.01


@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_an_unknown_flag_in_the_engine_options_fails_the_build(run_cli, tmp_path, monkeypatch, engine):
    module = {"vllm": vllm, "sglang": sglang}[engine]
    original = module.config
    monkeypatch.setattr(module, "config", lambda profile, plan: original(profile, plan) | {"max-num-seqz": 8})
    result, out = build(run_cli, tmp_path, "h200x1", engine)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "--config YAML --max-num-seqz: unknown flag" in result.output and not out.exists()


@pytest.mark.parametrize("args, expected", [
    (("--profile", "h100x2", "--engine", "vllm", "--weights", "w4a8-awq"),
     "profile 'h100x2' is refused on vLLM 0.34.0: weights w4a8-awq does not load"),
    (("--profile", "h100x2", "--engine", "sglang", "--weights", "w4a8-awq"),
     "profile 'h100x2' is refused on SGLang 0.5.23: weights w4a8-awq does not load"),
    (("--profile", "h100x4", "--engine", "vllm", "--moe-tp", "2", "--ep", "2"),
     "vLLM's --enable-expert-parallel is a switch"),
    (("--profile", "cpu-tiny", "--engine", "sglang"), "engine=sglang needs backend pytorch"),
    (("--profile", "a100x2", "--engine", "vllm", "--weights", "bf16"), "does not fit"),
])
def test_combinations_that_do_not_load_are_refused_in_one_line(run_cli, args, expected):
    result = run_cli("plan", *args)
    assert result.exit_code == 2 and expected in result.output, result.output
    assert "Traceback" not in result.output and result.output.count("Error:") == 1


def test_build_refuses_a_model_dir_not_in_the_engines_format(run_cli, tmp_path):
    result, out = build(run_cli, tmp_path, "a100x2", "vllm", weights="int8-wo")
    assert result.exit_code == 2 and "holds int8-wo weights" in result.output and "serves int4-gptq" in result.output
    assert not out.exists()


def test_plan_engine_vllm_prints_the_checkpoint_and_memory_setting(run_cli):
    result = run_cli("plan", "--profile", "a100x2", "--engine", "vllm")
    assert result.exit_code == 0, result.output
    rows = {line[:32].strip(): line[32:].strip() for line in result.output.splitlines() if line[:1] != " "}
    assert rows["engine"] == "vLLM 0.34.0"
    assert rows["checkpoint served"] == "int4-gptq (tencent/Hunyuan-A13B-Instruct-GPTQ-Int4)"
    assert rows["engine memory setting"].startswith("--gpu-memory-utilization 0.9323 ")
    assert rows["verdict"].startswith("fits: ")
    as_json = json.loads(run_cli("plan", "--profile", "a100x2", "--engine", "vllm", "--json").output)
    assert as_json["support"].startswith("loads: vLLM 0.34.0: int4-gptq") and as_json["weights_gib_per_gpu"] == 20.31


def test_profiles_list_shows_each_engine(run_cli):
    rows = {row["name"]: row for row in json.loads(run_cli("profiles", "list", "--json").output)}
    assert rows["a100x2"]["engines"] == {"trtllm": "fits (int8-wo)", "vllm": "fits (int4-gptq)",
                                         "sglang": "fits (int4-gptq)"}
    assert rows["cpu-tiny"]["engines"]["vllm"].startswith("refused")


def test_trtllm_bundle_records_its_engine(run_cli, tmp_path):
    result, out = build(run_cli, tmp_path, "h200x1", "trtllm")
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["engine"] == {"name": "trtllm", "label": "TensorRT-LLM 1.2.1", "health_path": "/health",
                              "metrics_path": "/prometheus/metrics", "queue_metric": None,
                              "needs_adapter": True, "api_key": ENGINES["trtllm"].api_key}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_queue_gauge_is_one_the_pinned_release_exports_or_none(name):
    """The autoscaling gauge an engine names (bundle.json, the KEDA query) exists at its pin."""
    from pipeline.engines.facts import load_facts as engine_facts
    from pipeline.trtllm import load_facts as trtllm_facts

    exported = set(trtllm_facts()["prometheus_metrics"]["value"] if name == "trtllm" else engine_facts(name)["metrics"])
    gauge = ENGINES[name].queue_metric
    assert gauge is None or gauge in exported, f"{name}: {gauge} is not exported by the pinned release"
    assert gauge is not None or name == "trtllm"  # vLLM and SGLang export one


def test_engine_verdict_table_covers_every_weights_format():
    from pipeline.weights_formats import FORMATS

    for module in (vllm, sglang):
        assert set(module.CHECKPOINTS) == set(FORMATS)
        with pytest.raises(PipelineError):
            module.ENGINE.require_loads("x", load_profile("h100x2", {"engine": module.ENGINE.name,
                                                                     "weights": "w4a8-awq"})[0])


def test_serve_names_the_bundles_engine_when_it_is_not_installed(run_cli, tmp_path, monkeypatch):
    result, out = build(run_cli, tmp_path, "h200x1", "vllm")
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("PATH", str(tmp_path))
    served = run_cli("serve", "--bundle", out)
    assert served.exit_code == 2, served.output
    assert f"vllm: not installed here; run {out / 'serve.sh'} where vLLM 0.34.0 is installed" in served.output


def test_chunked_prefill_off_is_spelled_each_engines_way():
    for engine, key, off in (("vllm", "enable-chunked-prefill", False), ("sglang", "chunked-prefill-size", -1)):
        _, profile, spec = engine_profile("h200x1", {"engine": engine})
        profile = profile.model_copy(update={"enable_chunked_prefill": False})
        rendered = ENGINES[engine].render(profile, make_plan("h200x1", profile, spec), "/models/x")
        config = yaml.safe_load(next(iter(rendered.files.values())))
        assert config[key] == off
