"""convert → verify over every (tp, moe_tp, moe_ep) in {1,2,4} with moe_tp * moe_ep = tp, plus the
properties of the written checkpoint: exact reassembly, config.json fields, determinism, no-op re-runs."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from pipeline.checkpoint.layout import Layout
from pipeline.checkpoint.reassemble import reassemble
from pipeline.checkpoint.source import SourceCheckpoint
from pipeline.checkpoint.tensor_plan import build_plan
from pipeline.model import load_spec
from pipeline.profiles import profiles_dir
from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

pytestmark = pytest.mark.slow

LAYOUTS = [(1, 1, 1), (2, 1, 2), (2, 2, 1), (4, 1, 4), (4, 2, 2), (4, 4, 1)]  # tp=4 > 2 kv heads


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf")
    write_checkpoint(tiny_config(), directory, seed=1, shards=3)
    return directory


def convert(run_cli, hf_dir, out, tp, moe_tp, ep, *extra):
    result = run_cli("convert", "--model-dir", hf_dir, "--profile", "cpu-tiny", "--tp", tp, "--moe-tp", moe_tp,
                     "--ep", ep, "--out", out, *extra)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize(("tp", "moe_tp", "ep"), LAYOUTS)
def test_verify_passes_for_every_layout(run_cli, hf_dir, tmp_path, tp, moe_tp, ep):
    out = tmp_path / "ckpt"
    convert(run_cli, hf_dir, out, tp, moe_tp, ep)
    result = run_cli("verify", "--checkpoint", out, "--hf-dir", hf_dir, "--json", tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    assert result.exit_code == 0, result.output
    assert report["passed"] and report["max_abs_diff"] <= 1e-4 and report["top1_agreement"] == 1.0
    assert report["mapping"]["tp_size"] == tp and report["mapping"]["moe_ep_size"] == ep
    assert report["reassembled_tensors"] == 2 * (12 + 3 * 8) + 2 and not report["reassembly_problems"]


def test_untied_lm_head_verifies(run_cli, tmp_path):
    hf = tmp_path / "hf"
    assert run_cli("make-tiny", "--out", hf, "--untied", "--seed", 5).exit_code == 0
    convert(run_cli, hf, tmp_path / "ckpt", 2, 1, 2)
    ranks = [load_file(tmp_path / "ckpt" / f"rank{r}.safetensors") for r in range(2)]
    assert not torch.equal(ranks[0]["lm_head.weight"], ranks[0]["transformer.vocab_embedding.weight"][:66])
    assert run_cli("verify", "--checkpoint", tmp_path / "ckpt", "--hf-dir", hf).exit_code == 0


@pytest.mark.parametrize(("tp", "moe_tp", "ep"), [(4, 2, 2), (2, 1, 2)])
def test_reassembling_the_shards_reproduces_every_hf_tensor(run_cli, hf_dir, tmp_path, tp, moe_tp, ep):
    convert(run_cli, hf_dir, tmp_path / "ckpt", tp, moe_tp, ep)
    source = SourceCheckpoint(hf_dir)
    plan = build_plan(load_spec(hf_dir), Layout(tp, moe_tp, ep), source)
    ranks = [load_file(tmp_path / "ckpt" / f"rank{r}.safetensors") for r in range(tp)]
    rebuilt, problems = reassemble(plan, ranks, source)
    originals = {}
    for path in hf_dir.glob("*.safetensors"):
        originals.update(load_file(path))
    assert not problems
    assert rebuilt.keys() == originals.keys()
    assert all(torch.equal(rebuilt[name], originals[name]) for name in originals)


def test_checkpoint_config_and_manifest(run_cli, hf_dir, tmp_path):
    out = tmp_path / "ckpt"
    convert(run_cli, hf_dir, out, 4, 2, 2)
    config = json.loads((out / "config.json").read_text())
    spec = load_spec(hf_dir)
    assert config["mapping"]["world_size"] == 4 and config["mapping"]["tp_size"] == 4
    assert (config["mapping"]["moe_tp_size"], config["mapping"]["moe_ep_size"]) == (2, 2)
    assert config["moe"]["normalization_mode"] == 1 and config["moe"]["num_experts"] == 8
    assert config["rotary_base"] == pytest.approx(10000.0 * 1000.0 ** (16 / 14))
    assert config["qk_layernorm"] is True and config["moe_topk"] == [2, 2] and config["moe"]["top_k"] == 2
    assert config["hidden_act"] == "swiglu"  # the engine's MoE reads the fused [E, 2I, H] fc as gated only so
    assert config["moe"]["shared_expert_intermediate_size"] == spec.shared_intermediate
    assert "quant_algo" in config["quantization"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["config.json"] + [f"rank{r}.safetensors" for r in range(4)]
    for name, record in manifest["files"].items():
        assert (out / name).stat().st_size == record["bytes"]
    assert len(manifest["files"]["config.json"]["sha256"]) == 64
    assert manifest["mapping"] == config["mapping"] and len(manifest["source"]["fingerprint"]) == 64


def test_output_is_deterministic_and_rerun_is_a_noop(run_cli, hf_dir, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    convert(run_cli, hf_dir, first, 2, 1, 2, "--workers", 2)
    convert(run_cli, hf_dir, second, 2, 1, 2, "--workers", 1)
    for path in first.iterdir():
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name
    stamp = (first / "rank0.safetensors").stat().st_mtime_ns
    again = convert(run_cli, hf_dir, first, 2, 1, 2)
    assert "up to date" in again.output and (first / "rank0.safetensors").stat().st_mtime_ns == stamp
    forced = convert(run_cli, hf_dir, first, 2, 1, 2, "--force")
    assert "wrote" in forced.output and (first / "rank0.safetensors").stat().st_mtime_ns != stamp
    other_layout = convert(run_cli, hf_dir, first, 2, 2, 1)
    assert "wrote" in other_layout.output


def test_same_layout_with_another_kv_cache_dtype_is_rewritten(run_cli, hf_dir, tmp_path):
    out = tmp_path / "ckpt"
    convert(run_cli, hf_dir, out, 2, 1, 2)
    fp8 = tmp_path / "h200-fp8kv-small.yaml"  # h200x2 (kv_cache_dtype fp8) shrunk to the tiny model's context
    fp8.write_text(f"extends: {profiles_dir() / 'h200x2.yaml'}\nmax_seq_len: 1024\nmax_batch_size: 8\n"
                   "cuda_graph_batch_sizes: [1, 2, 4, 8]\n")
    result = run_cli("convert", "--model-dir", hf_dir, "--profile", fp8, "--tp", 2, "--ep", 2, "--out", out)
    assert result.exit_code == 0 and "wrote" in result.output, result.output
    assert json.loads((out / "config.json").read_text())["quantization"]["kv_cache_quant_algo"] == "FP8"


def test_progress_and_dry_run(run_cli, hf_dir, tmp_path):
    result = convert(run_cli, hf_dir, tmp_path / "ckpt", 2, 1, 2)
    assert "convert: " in result.stderr and "GB" in result.stderr and "ETA" in result.stderr
    dry = convert(run_cli, hf_dir, tmp_path / "dry", 2, 1, 2, "--dry-run")
    assert "rank1 transformer.layers.0.mlp.fc.weight F32 [4, 64, 64]" in dry.output
    assert not (tmp_path / "dry").exists()


def test_help_names_the_yaml_keys(run_cli):
    text = run_cli("convert", "--help").output
    assert all(key in text for key in ("tp_size", "moe_ep_size", "moe_tp_size"))


def test_checkpoint_saved_by_transformers_converts_and_verifies(run_cli, tmp_path):
    """A single model.safetensors as transformers' save_pretrained writes it (fp32 router, per-expert keys),
    next to a hand-written A13B-style config.json — the shape of the embedded tiny model's weights."""
    from transformers import HunYuanMoEV1Config, HunYuanMoEV1ForCausalLM

    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps(tiny_config(vocab_size=128)))
    torch.manual_seed(0)
    HunYuanMoEV1ForCausalLM(HunYuanMoEV1Config.from_pretrained(hf)).save_pretrained(tmp_path / "saved")
    (tmp_path / "saved" / "model.safetensors").rename(hf / "model.safetensors")
    convert(run_cli, hf, tmp_path / "ckpt", 2, 1, 2)
    result = run_cli("verify", "--checkpoint", tmp_path / "ckpt", "--hf-dir", hf)
    assert result.exit_code == 0, result.output


def test_bf16_checkpoint_keeps_bf16_and_widens_the_router_exactly(run_cli, tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    write_checkpoint(tiny_config(torch_dtype="bfloat16"), hf, seed=6)
    convert(run_cli, hf, tmp_path / "ckpt", 2, 1, 2)
    rank = load_file(tmp_path / "ckpt" / "rank0.safetensors")
    source = {}
    for path in hf.glob("*.safetensors"):
        source.update(load_file(path))
    assert rank["transformer.layers.0.attention.qkv.weight"].dtype == torch.bfloat16
    router = rank["transformer.layers.1.mlp.router.weight"]
    assert router.dtype == torch.float32 and torch.equal(router, source["model.layers.1.mlp.gate.wg.weight"].float())
    assert run_cli("verify", "--checkpoint", tmp_path / "ckpt", "--hf-dir", hf).exit_code == 0


def test_embedded_tiny_model_converts_and_verifies_at_tp2_ep2(run_cli, tmp_path):
    """The demo's path: the shipped hunyuan-tiny (trained weights, single model.safetensors)."""
    from pipeline.model import TINY_MODEL_DIR

    convert(run_cli, TINY_MODEL_DIR, tmp_path / "ckpt", 2, 1, 2)
    result = run_cli("verify", "--checkpoint", tmp_path / "ckpt", "--hf-dir", TINY_MODEL_DIR)
    assert result.exit_code == 0 and "PASS" in result.output, result.output
