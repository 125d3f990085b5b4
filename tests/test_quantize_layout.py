"""The quantize stage without ModelOpt: the streamed INT8 weight-only quantizer, --from-published on the
synthetic AngelSlim layout, the layout check against the pinned loader facts (and that it fails on what the
loader would not load), the weight bytes for the planner, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from pipeline.model import read_config, spec_from_config
from pipeline.quantize import facts
from pipeline.quantize.formats import FORMATS
from pipeline.quantize.layout import check_directory
from pipeline.quantize.sizes import checkpoint_bytes, layout_bytes
from tests.conftest import REPO

TINY = REPO / "pipeline" / "data" / "hunyuan-tiny"
SHARD = "model-00001-of-00001.safetensors"


@pytest.fixture(scope="module")
def int8_dir(tmp_path_factory):
    from click.testing import CliRunner

    from pipeline.cli import main

    out = tmp_path_factory.mktemp("int8") / "q"
    result = CliRunner().invoke(main, ["quantize", "--model-dir", str(TINY), "--format", "int8-wo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def published_out(tmp_path_factory):
    """make-tiny --published-fp8 (random weights, 2 layers) relabelled by quantize --from-published."""
    from click.testing import CliRunner

    from pipeline.cli import main

    base = tmp_path_factory.mktemp("published")
    runner = CliRunner()
    made = runner.invoke(main, ["make-tiny", "--published-fp8", "--out", str(base / "pub")])
    assert made.exit_code == 0, made.output
    result = runner.invoke(main, ["quantize", "--from-published", "--model-dir", str(base / "pub"),
                                  "--out", str(base / "q")])
    assert result.exit_code == 0, result.output
    return base


def broken_copy(source, target, change):
    """A copy of a quantized checkpoint with `change(tensors)` applied to its single shard."""
    shutil.copytree(source, target)
    tensors = load_file(target / SHARD)
    change(tensors)
    save_file(tensors, target / SHARD)
    index = json.loads((target / "model.safetensors.index.json").read_text())
    index["weight_map"] = {name: SHARD for name in tensors}
    (target / "model.safetensors.index.json").write_text(json.dumps(index))
    return target


def test_int8_stream_layout_matches_the_facts(int8_dir):
    report = check_directory(int8_dir, TINY)
    assert report.format.quant_algo == "W8A16" and report.problems == []
    tensors = load_file(int8_dir / SHARD)
    weight = tensors["model.layers.1.mlp.experts.3.down_proj.weight"]
    scale = tensors["model.layers.1.mlp.experts.3.down_proj.weight_scale"]
    assert weight.dtype == torch.int8 and scale.dtype == torch.float32 and scale.shape == (weight.shape[0],)
    source = load_file(TINY / "model.safetensors")["model.layers.1.mlp.experts.3.down_proj.weight"]
    error = (weight.float() * scale[:, None] - source.float()).norm() / source.float().norm()
    assert 0 < error < FORMATS["int8-wo"].weight_error
    assert tensors["model.layers.0.mlp.gate.wg.weight"].dtype == torch.float32  # router stays high precision
    assert "model.layers.0.mlp.gate.wg.weight_scale" not in tensors


def test_config_is_a13b_style_with_quantization_config(int8_dir):
    config = json.loads((int8_dir / "config.json").read_text())
    source = json.loads((TINY / "config.json").read_text())
    assert "rope_parameters" not in config and config["rope_scaling"] == source["rope_scaling"]
    assert config["rope_theta"] == source["rope_theta"] and config["torch_dtype"] == "bfloat16"
    hf_quant = json.loads((int8_dir / "hf_quant_config.json").read_text())["quantization"]
    assert config["quantization_config"]["quant_algo"] == hf_quant["quant_algo"] == "W8A16"
    for module in ["lm_head", *(f"model.layers.{n}.mlp.gate" for n in range(3))]:
        assert facts.excluded(module, hf_quant["exclude_modules"])
    assert not facts.excluded("model.layers.0.mlp.experts", hf_quant["exclude_modules"])
    assert (int8_dir / "tokenizer.json").is_file() and (int8_dir / "chat_template.jinja").is_file()


def test_quantize_is_deterministic(int8_dir, run_cli, tmp_path):
    again = tmp_path / "again"
    assert run_cli("quantize", "--model-dir", TINY, "--format", "int8-wo", "--out", again).exit_code == 0
    for path in sorted(int8_dir.iterdir()):
        if path.name != "quantization_manifest.json":
            assert (again / path.name).read_bytes() == path.read_bytes(), path.name


def test_from_published_copies_the_fp8_bytes(published_out):
    source, out = load_file(published_out / "pub" / SHARD), load_file(published_out / "q" / SHARD)
    assert set(source) == set(out)
    for name, tensor in source.items():
        assert out[name].dtype == tensor.dtype and torch.equal(out[name].view(torch.uint8), tensor.view(torch.uint8))
    assert check_directory(published_out / "q").problems == []
    config = json.loads((published_out / "q" / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "modelopt"


@pytest.mark.parametrize("what, change, needle", [
    ("missing input_scale", lambda t: t.pop("model.layers.1.mlp.experts.2.up_proj.input_scale"), "missing"),
    ("scale of the wrong dtype", lambda t: t.update({"model.layers.0.self_attn.q_proj.weight_scale":
                                                     t["model.layers.0.self_attn.q_proj.weight_scale"].bfloat16()}),
     "expected F32"),
    ("per-channel scale where per-tensor is read", lambda t: t.update(
        {"model.layers.0.self_attn.o_proj.weight_scale": torch.ones(64)}), "expected F32 [] or [1]"),
    ("weight left in bf16", lambda t: t.update({"model.layers.1.mlp.experts.0.gate_proj.weight":
                                                t["model.layers.1.mlp.experts.0.gate_proj.weight"].bfloat16()}),
     "expected F8_E4M3"),
    ("router quantized", lambda t: t.update({"model.layers.0.mlp.gate.wg.weight_scale": torch.ones(1)}),
     "unexpected tensor"),
])
def test_layout_check_fails_on_what_the_loader_would_not_load(published_out, tmp_path, what, change, needle):
    broken = broken_copy(published_out / "q", tmp_path / "broken", change)
    problems = check_directory(broken).problems
    assert problems and any(needle in problem for problem in problems), (what, problems)


def test_layout_check_fails_when_a_router_is_not_excluded(published_out, tmp_path):
    broken = shutil.copytree(published_out / "q", tmp_path / "broken")
    path = broken / "hf_quant_config.json"
    data = json.loads(path.read_text())
    data["quantization"]["exclude_modules"].remove("model.layers.1.mlp.gate")
    path.write_text(json.dumps(data))
    assert any("model.layers.1.mlp.gate' is not excluded" in p for p in check_directory(broken).problems)
    data["quantization"]["exclude_modules"] = ["lm_head", "model.layers.*"]  # would also keep experts unquantized
    path.write_text(json.dumps(data))
    assert any("quantized module 'model.layers.0.mlp.experts' matches" in p for p in check_directory(broken).problems)


def test_layout_bytes_equal_the_written_checkpoint(int8_dir, published_out):
    for directory, fmt in ((int8_dir, "int8-wo"), (published_out / "q", "fp8")):
        spec = spec_from_config(read_config(directory / "config.json"))
        assert layout_bytes(spec, FORMATS[fmt]) == checkpoint_bytes(directory)
    # 3 layers x 8 experts: int8 gate/up [128, 64] and down [64, 128], fp32 scales [128], [128], [64]
    assert checkpoint_bytes(int8_dir)["routed_experts"] == 3 * 8 * (3 * 128 * 64 + 4 * (128 + 128 + 64))


@pytest.mark.parametrize("args, needles", [
    (["--format", "fp4"], ["--format", "fp4"]),
    (["--format", "w4a8-awq"], ["--format w4a8-awq: not supported", "fused experts"]),
    (["--format", "fp8", "--method", "stream"], ["--method", "stream"]),
    (["--from-published"], ["quantization_config", "quant_method 'fp8'"]),
    (["--format", "int8-wo", "--from-published", "--calib-size", "2"], ["--from-published"]),
])
def test_bad_input_is_one_line_exit_2(run_cli, tmp_path, args, needles):
    out = tmp_path / "q"
    result = run_cli("quantize", "--model-dir", TINY, *args, "--out", out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert all(needle in result.output for needle in needles), result.output
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".q")]


def test_bad_calibration_file_is_one_line_exit_2(run_cli, tmp_path):
    calib = tmp_path / "calib.jsonl"
    calib.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": "nope"}\n')
    out = tmp_path / "q"
    result = run_cli("quantize", "--model-dir", TINY, "--format", "fp8", "--calib-file", calib, "--out", out)
    assert result.exit_code == 2 and f"{calib}:2:" in result.output and "Traceback" not in result.output
    result = run_cli("quantize", "--model-dir", TINY, "--format", "fp8", "--calib-size", "99", "--out", out)
    assert result.exit_code == 2 and "--calib-size: expected 1..18" in result.output
    assert not out.exists()


def test_verify_quantized_bad_input_is_one_line_exit_2(run_cli, tmp_path):
    result = run_cli("verify", "--quantized", tmp_path / "missing", "--hf-dir", TINY)
    assert result.exit_code == 2 and "missing/hf_quant_config.json: ModelOpt quantization file (hf_quant_config.json) not found" in result.output
    result = run_cli("verify", "--hf-dir", TINY)
    assert result.exit_code == 2 and "exactly one of --checkpoint" in result.output
    assert "Traceback" not in result.output


def test_verify_against_the_wrong_source_fails_the_accounting(published_out, run_cli):
    result = run_cli("verify", "--quantized", published_out / "q", "--hf-dir", TINY)  # 2-layer vs 3-layer model
    assert result.exit_code == 1 and "has no counterpart in the quantized checkpoint" in result.output


def test_keep_current_leaves_the_same_conversion_alone_and_redoes_a_changed_one(run_cli, tmp_path):
    source, out = tmp_path / "bf16", tmp_path / "q"
    shutil.copytree(TINY, source)
    args = ("quantize", "--model-dir", source, "--format", "int8-wo", "--method", "stream", "--out", out,
            "--keep-current")
    assert run_cli(*args).exit_code == 0
    written = (out / SHARD).stat().st_mtime_ns
    again = run_cli(*args)
    assert again.exit_code == 0 and "up to date" in again.output
    assert (out / SHARD).stat().st_mtime_ns == written
    (out / SHARD).write_bytes((out / SHARD).read_bytes()[:-1])  # a cut file is not current
    assert "up to date" not in run_cli(*args).output
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "rope_theta": config["rope_theta"] * 2}))
    redone = run_cli(*args)  # another source checkpoint: converted anew
    assert redone.exit_code == 0 and "up to date" not in redone.output
    assert read_config(out / "config.json")["rope_theta"] == config["rope_theta"] * 2
