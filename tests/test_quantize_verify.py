"""`quantize` with NVIDIA ModelOpt on the embedded hunyuan-tiny and `verify --quantized` against transformers'
BF16 reference: FP8 reaches the format's top-1 and |Δlogit| bounds, so do INT8 weight-only and the
--from-published relabelling, and a broken scale (another expert's, a missing input_scale) makes verify fail.
ModelOpt's INT8 export and our streamed INT8 quantizer write the same bytes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO
from tests.test_quantize_layout import SHARD, broken_copy

TINY = REPO / "pipeline" / "data" / "hunyuan-tiny"
pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def runner():
    from click.testing import CliRunner

    from pipeline.cli import main

    def invoke(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    return invoke


@pytest.fixture(scope="module")
def fp8_dir(tmp_path_factory, runner):
    out = tmp_path_factory.mktemp("fp8") / "q"
    result = runner("quantize", "--model-dir", TINY, "--format", "fp8", "--calib-size", "8", "--out", out)
    assert result.exit_code == 0, result.output
    assert "calibrate: 8/8 samples" in result.output  # progress
    return out


def verify(runner, directory, tmp_path):
    report = tmp_path / f"{directory.name}.json"
    result = runner("verify", "--quantized", directory, "--hf-dir", TINY, "--json", report)
    return result, json.loads(report.read_text())


def test_fp8_modelopt_checkpoint_passes_verify(fp8_dir, runner, tmp_path):
    manifest = json.loads((fp8_dir / "quantization_manifest.json").read_text())
    assert manifest["quantizer"].startswith("nvidia-modelopt") and manifest["calibration"]["samples"] == 8
    result, report = verify(runner, fp8_dir, tmp_path)
    assert result.exit_code == 0, result.output
    assert report["problems"] == [] and report["tokens"] >= 400
    assert report["quantized"]["top1"] >= 0.99 and report["quantized"]["max_abs_diff"] <= report["tolerance"]
    assert report["quantized"]["max_abs_diff"] > report["baseline"]["max_abs_diff"]  # quantization is visible


def test_another_experts_weight_scale_makes_verify_fail(fp8_dir, runner, tmp_path):
    def swap(tensors):
        a, b = (f"model.layers.1.mlp.experts.{e}.down_proj.weight_scale" for e in (2, 5))
        tensors[a], tensors[b] = tensors[b] * 4, tensors[a]  # 2 gets 5's (scaled, as tiny experts are alike)
    broken = broken_copy(fp8_dir, tmp_path / "swapped", swap)
    result, report = verify(runner, broken, tmp_path)
    assert result.exit_code == 1 and "FAIL" in result.output
    assert report["problems"] == [] and report["worst_weight"] == "model.layers.1.mlp.experts.2.down_proj"
    assert report["weight_error"] > report["max_weight_error"]


def test_missing_input_scale_makes_verify_fail(fp8_dir, runner, tmp_path):
    broken = broken_copy(fp8_dir, tmp_path / "no-input-scale",
                         lambda t: t.pop("model.layers.0.mlp.experts.6.gate_proj.input_scale"))
    result, report = verify(runner, broken, tmp_path)
    assert result.exit_code == 1 and "experts.6.gate_proj.input_scale: missing" in result.output


def test_int8_modelopt_export_equals_the_streamed_quantizer(runner, tmp_path):
    paths = {}
    for method in ("modelopt", "stream"):
        paths[method] = tmp_path / method
        result = runner("quantize", "--model-dir", TINY, "--format", "int8-wo", "--method", method,
                        "--calib-size", "1", "--out", paths[method])
        assert result.exit_code == 0, result.output
    ours, theirs = load_file(paths["stream"] / SHARD), load_file(paths["modelopt"] / SHARD)
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)
    result, report = verify(runner, paths["stream"], tmp_path)
    assert result.exit_code == 0 and report["quantized"]["top1"] >= 0.99, result.output


def test_from_published_of_the_tiny_model_passes_verify(runner, tmp_path):
    made = runner("make-tiny", "--published-fp8", "--source", TINY, "--out", tmp_path / "published")
    assert made.exit_code == 0, made.output
    result = runner("quantize", "--from-published", "--model-dir", tmp_path / "published", "--out", tmp_path / "q")
    assert result.exit_code == 0, result.output
    result, report = verify(runner, tmp_path / "q", tmp_path)
    assert result.exit_code == 0, result.output
    assert report["quantized"]["top1"] >= 0.99
