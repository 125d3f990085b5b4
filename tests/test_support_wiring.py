"""The support matrix applied to profiles: `profiles list` verdicts, plan/build refusals (exit 2, one line, with
the evidence and the nearest shipped profile that works), and the weights format a model directory holds."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import PipelineError
from pipeline.profiles import load_profile, profile_names
from pipeline.support import LOADS, REFUSED, nearest_working_profile, support
from pipeline.trtllm.support_matrix import lookup
from pipeline.weights_formats import FORMATS, detect_format
from tests.test_build_bundle import fake_model_dir


@pytest.mark.parametrize("name", profile_names())
def test_every_shipped_profile_loads_per_the_matrix(name):
    profile, _ = load_profile(name)
    verdict = support(profile)
    assert verdict.verdict == LOADS, f"{name}: {verdict.detail}"
    if profile.backend != "cpu":
        assert lookup(FORMATS[profile.weights].matrix_row, profile.gpu.sm).loads
        assert profile.moe_backend == "CUTLASS"


def test_profiles_list_shows_each_verdict_with_its_basis(run_cli, profiles_copy):
    (profiles_copy / "a100x2-gptq.yaml").write_text("extends: a100x2\ndescription: t\nweights: int4-gptq\n")
    rows = {row["name"]: row for row in json.loads(run_cli("profiles", "list", "--json").output)}
    assert rows["a100x2"]["loads"] == LOADS and rows["a100x2"]["loads_basis"] == \
        "matrix int8-weight-only on sm80: yes (code)"
    assert rows["h100x2"]["loads_basis"] == "matrix fp8-per-tensor-modelopt on sm90: yes (code)"
    assert rows["cpu-tiny"]["loads_basis"] == "CPU stand-in (no TensorRT-LLM)"
    assert rows["a100x2-gptq"]["loads"] == REFUSED and "gptq" in rows["a100x2-gptq"]["loads_detail"]
    table = run_cli("profiles", "list").output
    line = next(line for line in table.splitlines() if line.startswith("a100x2-gptq "))
    assert "refused (matrix gptq on sm80: no (code))" in line
    assert "loads (matrix fp8-per-tensor-modelopt on sm89: yes (code))" in \
        next(line for line in table.splitlines() if line.startswith("rtx4090x8 "))


REFUSALS = [
    # (profile, flags, what the line must say)
    ("a100x2", ["--weights", "int4-gptq"],
     ["weights int4-gptq (gptq) on a100-sxm-80g (sm80) does not load at TensorRT-LLM 1.2.1",
      "model_config.py@1a0dc5f70054", "nearest shipped profile that loads: 'a100x2'",
      "formats that load on sm80: bf16, int8-wo"]),
    ("a100x4", ["--weights", "fp8"],
     ["fp8 (fp8-per-tensor-modelopt) on a100-sxm-80g (sm80) does not load", "Ampere has no FP8",
      "docs/source/features/quantization.md@376f7e1"]),
    ("h100x2", ["--weights", "fp8-angelslim"],
     ["fp8-angelslim (fp8-per-tensor-angelslim) on h100-sxm-80g (sm90) does not load",
      "convert to a ModelOpt hf_quant_config.json layout first", "nearest shipped profile that loads: 'h100x2'"]),
    ("rtx4090x8", ["--weights", "w4a8-awq", "--backend", "tensorrt"],
     ["backend tensorrt needs --model-cls-file and --model-cls-name", "MODEL_MAP"]),
]


@pytest.mark.parametrize("name,flags,expected", REFUSALS, ids=[f"{r[0]}-{r[1][1]}" for r in REFUSALS])
@pytest.mark.parametrize("command", ["plan", "build"])
def test_plan_and_build_refuse_what_does_not_load(run_cli, tmp_path, command, name, flags, expected):
    extra = ["--model-dir", "/models/x", "--model-on-target", "--out", tmp_path / "b"] if command == "build" else []
    result = run_cli(command, "--profile", name, *flags, *extra)
    assert result.exit_code == 2
    error = result.output.splitlines()[-1]
    assert error.startswith(f"Error: profile '{name}' is refused: ")
    for text in expected:
        assert text in error
    assert len(result.output.splitlines()) == 1 and not (tmp_path / "b").exists()


def test_moe_backends_other_than_cutlass_are_refused_citing_the_matrix(run_cli, profiles_copy):
    for backend, reason in (("TRTLLM", "falls back to CutlassFusedMoE"), ("VANILLA", "reference implementation"),
                            ("WIDEEP", "does not load Hunyuan")):
        (profiles_copy / "moe.yaml").write_text(f"extends: h200x1\ndescription: t\nmoe_backend: {backend}\n")
        result = run_cli("plan", "--profile", "moe")
        error = result.output.splitlines()[-1]
        assert result.exit_code == 2 and f"moe_backend {backend}: " in error and reason in error
        assert "use CUTLASS" in error and "modeling_hunyuan_moe.py@047098b74c51" in error


def test_nearest_working_profile_prefers_the_same_gpu_then_the_same_architecture(profiles_copy):
    (profiles_copy / "l40s-gptq.yaml").write_text("extends: l40sx4\ndescription: t\nweights: int4-gptq\n")
    profile, _ = load_profile("l40s-gptq")
    assert "'l40sx4'" in nearest_working_profile(profile)
    for name in ("l40s-gptq", "l40sx4"):
        (profiles_copy / f"{name}.yaml").unlink()
    assert "'rtx4090x8'" in nearest_working_profile(profile)  # the other sm89 profile


def test_detect_format_reads_what_the_loader_reads(tmp_path):
    for name in FORMATS:
        found, where = detect_format(fake_model_dir(tmp_path, name))
        assert found.name == name, where
    block = fake_model_dir(tmp_path / "block", "fp8-angelslim")
    config = json.loads((block / "config.json").read_text())
    config["quantization_config"]["weight_block_size"] = [128, 128]
    (block / "config.json").write_text(json.dumps(config))
    with pytest.raises(PipelineError, match="quant_method 'fp8' is not a format any profile serves"):
        detect_format(block)
    broken = fake_model_dir(tmp_path / "broken", "fp8")
    (broken / "hf_quant_config.json").write_text("{not json")
    with pytest.raises(PipelineError, match="hf_quant_config.json: not valid JSON"):
        detect_format(broken)
    (broken / "hf_quant_config.json").write_text(json.dumps({"quantization": {"quant_algo": "NVFP4"}}))
    with pytest.raises(PipelineError, match="quant_algo is 'NVFP4'; expected one of FP8, W8A16, W4A8_AWQ"):
        detect_format(broken)


@pytest.mark.parametrize("name,held", [("h100x2", "bf16"), ("a100x2", "fp8"), ("h200x2", "int8-wo"),
                                       ("rtx4090x8", "fp8-angelslim")])
def test_build_refuses_a_model_dir_in_another_format(run_cli, tmp_path, name, held):
    out = tmp_path / "bundle"
    result = run_cli("build", "--profile", name, "--model-dir", fake_model_dir(tmp_path, held), "--out", out)
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1 and not out.exists()
    profile, _ = load_profile(name)
    assert f"holds {held} weights" in result.output
    assert f"but the profile serves {profile.weights} (made by {FORMATS[profile.weights].made_by})" in result.output


def test_a100x2_bundle_serves_int8_weight_only(run_cli, tmp_path):
    out = tmp_path / "bundle"
    result = run_cli("build", "--profile", "a100x2", "--model-dir", fake_model_dir(tmp_path, "int8-wo"), "--out", out)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["weights_format"] | {"checked": ""} == {"name": "int8-wo", "support_matrix_row": "int8-weight-only",
                                                        "quant_algo": "W8A16", "checked": ""}
    assert meta["weights_format"]["checked"].endswith("hf_quant_config.json quantization.quant_algo W8A16")
    assert meta["support"]["basis"] == "matrix int8-weight-only on sm80: yes (code)"
    assert "weights: int8-wo" in result.output


def test_rtx4090x8_bundle_and_plan(run_cli, tmp_path):
    plan = run_cli("plan", "--profile", "rtx4090x8")
    assert plan.exit_code == 0
    assert "whole model, one device (GiB)   bf16 149.74, fp8 75.37" in plan.output
    assert "in each format                bf16 19.59, fp8 10.29" in plan.output
    refused = run_cli("plan", "--profile", "rtx4090x8", "--weights", "bf16")
    assert refused.exit_code == 2 and "does not fit: each rtx4090-24g needs" in refused.output.splitlines()[-1]
    out = tmp_path / "bundle"
    result = run_cli("build", "--profile", "rtx4090x8", "--model-dir", fake_model_dir(tmp_path, "fp8"), "--out", out)
    assert result.exit_code == 0, result.output
    argv = json.loads((out / "argv.json").read_text())["serve"]
    assert argv[argv.index("--tp_size") + 1] == "8" and argv[argv.index("--ep_size") + 1] == "8"
    assert json.loads((out / "bundle.json").read_text())["weights_format"]["quant_algo"] == "FP8"


def test_256k_bundle_serves_a_derived_directory_of_links(run_cli, tmp_path):
    model = fake_model_dir(tmp_path, "bf16")
    out = tmp_path / "bundle"
    result = run_cli("build", "--profile", "h200x2-256k", "--model-dir", model, "--out", out)
    assert result.exit_code == 0, result.output
    assert "6.6 sequences of 262,144 tokens" in result.output
    derived = out / "model"
    config = json.loads((derived / "config.json").read_text())
    assert config["max_position_embeddings"] == 262144
    assert config | {"max_position_embeddings": 32768} == json.loads((model / "config.json").read_text())
    for name in ("model.safetensors", "tokenizer.json"):
        assert (derived / name).is_symlink() and (derived / name).resolve() == (model / name).resolve()
    argv = json.loads((out / "argv.json").read_text())["serve"]
    assert argv[1] == "{bundle}/model" and argv[argv.index("--max_seq_len") + 1] == "262144"
    assert json.loads((out / "bundle.json").read_text())["served_model_dir"] == "{bundle}/model"
    # the derived directory is written from a readable checkpoint only
    on_target = run_cli("build", "--profile", "h200x2-256k", "--model-dir", "/models/x", "--model-on-target",
                        "--out", tmp_path / "b2")
    assert on_target.exit_code == 2 and len(on_target.output.splitlines()) == 1 and not (tmp_path / "b2").exists()
    assert "serves a derived config.json (max_position_embeddings 262144)" in on_target.output
    # without the derived config the same max_seq_len is refused
    refused = run_cli("plan", "--profile", "h200x2", "--max-seq-len", "262144")
    assert refused.exit_code == 2 and "exceeds the served max_position_embeddings=32768" in refused.output
