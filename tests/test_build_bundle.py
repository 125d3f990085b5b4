"""`hunyuan-trt build`: a schema-checked bundle for every profile (from a local directory in the profile's weights
format), a golden bundle, refusals and the schema."""

from __future__ import annotations

import copy
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.memory_plan import make_plan
from pipeline.model import A13B_CONFIG, TINY_MODEL_DIR
from pipeline.profiles import load_profile, profile_names
from pipeline.trtllm import load_schema, trtllm_version
from pipeline.trtllm.options import fill
from pipeline.trtllm.schema import check_build_argv, check_llm_args, check_serve_argv
from pipeline.weights_formats import FORMATS

GOLDEN = Path(__file__).parent / "data" / "build_golden" / "a100x2"
TARGET_MODEL = "/models/Hunyuan-A13B-Instruct-INT8-WO"
FILES = ("llm_api_options.yaml", "argv.json", "serve.sh", "bundle.json")


def fake_model_dir(root: Path, weights: str) -> Path:
    """An HF directory in a weights format: A13B's config.json (+ the format's quantization files), an empty
    weights file and a tokenizer file."""
    fmt = FORMATS[weights]
    directory = root / f"model-{weights}"
    directory.mkdir(parents=True, exist_ok=True)
    config = json.loads(A13B_CONFIG.read_text())
    if fmt.quant_method:
        config["quantization_config"] = {"quant_method": fmt.quant_method}
    (directory / "config.json").write_text(json.dumps(config))
    if fmt.quant_algo:
        (directory / "hf_quant_config.json").write_text(json.dumps({"quantization": {"quant_algo": fmt.quant_algo}}))
    (directory / "model.safetensors").write_bytes(b"")
    (directory / "tokenizer.json").write_text("{}")
    return directory


def build_args(name: str, out: Path, models: Path | None = None) -> list:
    """build argv: the embedded model for tiny profiles, a local fake directory in the profile's format when
    `models` is given, else a path on the serving machine."""
    profile, _ = load_profile(name)
    if profile.hf_config == "tiny":
        model = ["--model-dir", TINY_MODEL_DIR]
    elif models is not None:
        model = ["--model-dir", fake_model_dir(models, profile.weights)]
    else:
        model = ["--model-dir", TARGET_MODEL, "--model-on-target"]
    return ["build", "--profile", name, *model, "--out", out]


@pytest.mark.parametrize("name", profile_names())
@pytest.mark.integration
def test_every_profile_builds_a_checked_bundle_or_refuses(run_cli, tmp_path, name):
    profile, spec = load_profile(name)
    plan = make_plan(name, profile, spec)
    out = tmp_path / "bundle"
    result = run_cli(*build_args(name, out, tmp_path / "models"))
    assert plan.fits, f"shipped profile {name} does not fit: {plan.verdict}"
    assert result.exit_code == 0, result.output
    derived = ["model"] if profile.max_position_embeddings else []
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, *derived])
    options = yaml.safe_load((out / "llm_api_options.yaml").read_text())
    backend = "tensorrt" if profile.backend == "tensorrt" else "pytorch"
    check_llm_args(options, backend)
    assert not {"use_cuda_graph", "cuda_graph_padding_enabled", "cuda_graph_batch_sizes"} & set(options)
    assert options["return_perf_metrics"] is True
    assert options["tensor_parallel_size"] == profile.tp_size
    assert options["moe_expert_parallel_size"] == profile.moe_ep_size
    argv = json.loads((out / "argv.json").read_text())
    meta = json.loads((out / "bundle.json").read_text())
    if profile.backend != "cpu":
        check_serve_argv(argv["serve"])
        assert options["enable_iter_perf_stats"] is True and options["cuda_graph_config"]["enable_padding"]
    else:
        assert argv["serve"][:3] == ["{python}", "-m", "pipeline.cpu_backend"]
    assert meta["profile"] == name and meta["plan"]["fits"] is True and meta["support"]["verdict"] == "loads"
    assert meta["weights_format"]["name"] == profile.weights
    if profile.backend != "cpu":
        assert meta["weights_format"]["checked"].endswith(("quant_algo " + str(FORMATS[profile.weights].quant_algo),
                                                           "no hf_quant_config.json)"))
        assert meta["serve_env"] == {"ENABLE_CONFIGURABLE_MOE": "0"}
        assert "export ENABLE_CONFIGURABLE_MOE=0\n" in (out / "serve.sh").read_text()
    assert meta["trtllm_version"] == trtllm_version() == load_schema()["trtllm_version"]
    assert meta["resolved_profile"]["tp_size"] == profile.tp_size
    assert meta["verdict"] == plan.verdict and meta["served_model_name"] == profile.served_model_name
    assert os.stat(out / "serve.sh").st_mode & stat.S_IXUSR
    assert subprocess.run(["bash", "-n", out / "serve.sh"]).returncode == 0


def test_golden_a100x2(run_cli, tmp_path):
    out = tmp_path / "bundle"
    assert run_cli(*build_args("a100x2", out)).exit_code == 0
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in FILES[:3]:
            (GOLDEN / name).write_text((out / name).read_text())
    for name in FILES[:3]:
        assert (out / name).read_text() == (GOLDEN / name).read_text(), f"{name} differs from {GOLDEN / name}"


@pytest.mark.integration
def test_serve_sh_runs_exactly_the_argv(run_cli, tmp_path):
    """serve.sh and argv.json are the same command: run serve.sh with a recording trtllm-serve on PATH."""
    out = tmp_path / "bundle"
    assert run_cli(*build_args("a100x2", out)).exit_code == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "trtllm-serve"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$0" "$@" > "$RECORD"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(tmp_path / "argv.txt"),
           "HOST": "127.0.0.1", "PORT": "8123"}
    assert subprocess.run([out / "serve.sh"], env=env, timeout=30).returncode == 0
    recorded = (tmp_path / "argv.txt").read_text().splitlines()
    expected = fill(json.loads((out / "argv.json").read_text())["serve"],
                    {"host": "127.0.0.1", "port": "8123", "bundle": str(out.resolve())})
    assert [Path(recorded[0]).name, *recorded[1:]] == expected


def test_missing_trtllm_serve_is_reported_not_fatal(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run_cli(*build_args("h200x1", tmp_path / "bundle"))
    assert result.exit_code == 0 and "trtllm-serve is not installed here" in result.output
    assert json.loads((tmp_path / "bundle" / "bundle.json").read_text())["tools_missing_here"] == ["trtllm-serve"]


def test_refuses_with_planner_reason_and_writes_nothing(run_cli, tmp_path):
    out = tmp_path / "bundle"
    result = run_cli(*build_args("a100x2", out), "--weights", "bf16")
    assert result.exit_code == 2
    assert "profile 'a100x2' does not fit" in result.output and "GiB more" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_model_dir_checks(run_cli, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("build", "--profile", "a100x2", "--model-dir", empty, "--out", tmp_path / "b")
    assert result.exit_code == 2 and "config.json" in result.output and not (tmp_path / "b").exists()
    monkeypatch.setenv("HUNYUAN_TRT_MODELS", str(tmp_path / "models"))
    result = run_cli("build", "--profile", "a100x2", "--out", tmp_path / "b")  # the default: nothing downloaded
    assert result.exit_code == 2 and "`make download PROFILE=a100x2`" in result.output
    result = run_cli("build", "--profile", "a100x2", "--model-dir", "relative/path", "--model-on-target",
                     "--out", tmp_path / "b")
    assert result.exit_code == 2 and "must be absolute" in result.output


def test_existing_out_needs_force(run_cli, tmp_path):
    out = tmp_path / "bundle"
    assert run_cli(*build_args("cpu-tiny", out)).exit_code == 0
    result = run_cli(*build_args("cpu-tiny", out))
    assert result.exit_code == 2 and "--force" in result.output
    assert run_cli(*build_args("cpu-tiny", out), "--force").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no staging directories left


def test_tensorrt_backend_adds_trtllm_build(run_cli, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "rank0.safetensors").write_bytes(b"")
    out = tmp_path / "bundle"
    args = ["build", "--profile", "h200x1", "--backend", "tensorrt", "--model-dir", ckpt, "--out", out]
    result = run_cli(*args)
    assert result.exit_code == 2 and not out.exists()
    assert "backend tensorrt needs --model-cls-file and --model-cls-name" in result.output
    assert "no Hunyuan architecture in MODEL_MAP" in result.output and len(result.output.splitlines()) == 1
    missing = run_cli(*args, "--model-cls-file", tmp_path / "absent.py", "--model-cls-name", "HunyuanForCausalLM")
    assert missing.exit_code == 2 and "absent.py: not a file" in missing.output and not out.exists()
    model_cls = tmp_path / "hunyuan_trt_model.py"
    model_cls.write_text("# a TensorRT-LLM model class for Hunyuan\n")
    result = run_cli(*args, "--model-cls-file", model_cls, "--model-cls-name", "HunyuanForCausalLM")
    assert result.exit_code == 0, result.output
    argv = json.loads((out / "argv.json").read_text())
    check_build_argv(argv["build"])
    assert argv["build"][argv["build"].index("--model_cls_file") + 1] == str(model_cls.resolve())
    assert argv["build"][argv["build"].index("--model_cls_name") + 1] == "HunyuanForCausalLM"
    assert json.loads((out / "bundle.json").read_text())["support"]["verdict"] == "unknown"
    check_serve_argv(argv["serve"])
    assert argv["build"][:3] == ["trtllm-build", "--checkpoint_dir", str(ckpt.resolve())]
    assert argv["serve"][1] == "{bundle}/engine" and "--backend" in argv["serve"]
    check_llm_args(yaml.safe_load((out / "llm_api_options.yaml").read_text()), "tensorrt")
    assert 'trtllm-build' in (out / "serve.sh").read_text()


@pytest.mark.parametrize("options,message", [
    ({"kv_cache_config": {"free_gpu_memory_fractoin": 0.9}},
     "kv_cache_config.free_gpu_memory_fractoin: unknown LLM-API argument (did you mean 'free_gpu_memory_fraction'?)"),
    ({"max_batch_sise": 8}, "max_batch_sise: unknown LLM-API argument (did you mean 'max_batch_size'?)"),
    ({"use_cuda_graph": True}, "use_cuda_graph: removed from TensorRT-LLM; use cuda_graph_config"),
    ({"cuda_graph_padding_enabled": True}, "use cuda_graph_config.enable_padding"),
    ({"max_batch_size": "128"}, "max_batch_size: expected int?, got '128'"),
    ({"enable_attention_dp": 1}, "enable_attention_dp: expected bool"),
    # DENSEGEMM is a MoE backend of releases after the pin
    ({"moe_config": {"backend": "DENSEGEMM"}}, "moe_config.backend: expected one of CUTLASS, CUTEDSL, WIDEEP"),
    ({"kv_cache_config": {"free_gpu_memory_fraction": 1.5}}, "expected 0 <= value <= 1; got 1.5"),
    ({"cuda_graph_config": {"batch_sizes": [1, "2"]}}, "cuda_graph_config.batch_sizes: expected list[int]?"),
])
def test_schema_rejects_unknown_keys_and_bad_types(options, message):
    with pytest.raises(PipelineError) as caught:
        check_llm_args(options, "pytorch")
    assert message in str(caught.value)


def test_schema_backends_differ():
    check_llm_args({"cuda_graph_config": None}, "pytorch")
    with pytest.raises(PipelineError, match="cuda_graph_config: unknown"):
        check_llm_args({"cuda_graph_config": None}, "tensorrt")


@pytest.mark.parametrize("argv,message", [
    (["trtllm-serve", "/m", "--served_model_name", "x"], "--served_model_name: unknown flag"),
    (["trtllm-serve", "/m", "--tp-size", "2"], "(did you mean '--tp_size'?)"),
    (["trtllm-serve", "/m", "--tp_size", "two"], "--tp_size: expected int, got 'two'"),
    (["trtllm-serve", "/m", "--backend", "onnx"], "--backend: expected one of pytorch"),
    (["trtllm-serve", "/m", "--port"], "--port: missing value"),
])
def test_serve_flags_are_checked(argv, message):
    with pytest.raises(PipelineError) as caught:
        check_serve_argv(argv)
    assert message in str(caught.value)


def test_build_refuses_a_profile_the_schema_rejects(run_cli, tmp_path, monkeypatch):
    """Every shipped profile passes the schema, so narrow the schema to one without CUTLASS."""
    narrowed = copy.deepcopy(load_schema())
    backend = narrowed["llm_args"]["pytorch"]["moe_config"]["fields"]["backend"]
    backend["values"] = [value for value in backend["values"] if value != "CUTLASS"]
    monkeypatch.setattr("pipeline.trtllm.schema.load_schema", lambda: narrowed)
    out = tmp_path / "bundle"
    result = run_cli(*build_args("h200x1", out))
    assert result.exit_code == 2 and "moe_config.backend: expected one of" in result.output and not out.exists()
