"""Bad input: one clear line naming the file/field, exit 2, no traceback, nothing written."""

from __future__ import annotations

import errno
import json
import os
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from pipeline.checkpoint import writer
from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

SHARD = "model-00001-of-00003.safetensors"


@pytest.fixture
def hf_dir(tmp_path):
    directory = tmp_path / "hf"
    directory.mkdir()
    write_checkpoint(tiny_config(), directory, seed=4)
    return directory


def convert(run_cli, hf_dir, out, *flags):
    return run_cli("convert", "--model-dir", hf_dir, "--profile", "cpu-tiny", *flags, "--out", out)


def assert_clean_failure(result, out, *needles):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert all(needle in message for needle in needles), message
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def rewrite_shard(path, change):
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def test_missing_shard_file(run_cli, hf_dir, tmp_path):
    (hf_dir / SHARD).unlink()
    assert_clean_failure(convert(run_cli, hf_dir, tmp_path / "out"), tmp_path / "out", SHARD, "shard file missing")


def test_truncated_shard(run_cli, hf_dir, tmp_path):
    path = hf_dir / SHARD
    os.truncate(path, path.stat().st_size // 2)
    assert_clean_failure(convert(run_cli, hf_dir, tmp_path / "out"), tmp_path / "out", SHARD, "truncated")


@pytest.mark.parametrize(("garbage", "needle"), [(b"{not json at all", "not valid JSON"),
                                                 (struct.pack("<Q", 1 << 40), "corrupt or truncated")])
def test_corrupt_header(run_cli, hf_dir, tmp_path, garbage, needle):
    path = hf_dir / SHARD
    data = bytearray(path.read_bytes())
    offset = 8 if garbage.startswith(b"{") else 0
    data[offset:offset + len(garbage)] = garbage
    path.write_bytes(bytes(data))
    assert_clean_failure(convert(run_cli, hf_dir, tmp_path / "out"), tmp_path / "out", SHARD, needle)


def test_tensor_with_the_wrong_shape(run_cli, hf_dir, tmp_path):
    index = json.loads((hf_dir / "model.safetensors.index.json").read_text())["weight_map"]
    name = "model.layers.1.self_attn.k_proj.weight"

    def shrink(tensors):
        tensors[name] = tensors[name][:16].clone()

    rewrite_shard(hf_dir / index[name], shrink)
    assert_clean_failure(convert(run_cli, hf_dir, tmp_path / "out"), tmp_path / "out", index[name], name,
                         "[16, 64]", "expected [32, 64]")


def test_dtype_swap_is_refused(run_cli, hf_dir, tmp_path):
    index = json.loads((hf_dir / "model.safetensors.index.json").read_text())["weight_map"]
    name = "model.layers.0.mlp.experts.1.down_proj.weight"
    rewrite_shard(hf_dir / index[name], lambda tensors: tensors.update({name: tensors[name].view(torch.int32)}))
    assert_clean_failure(convert(run_cli, hf_dir, tmp_path / "out"), tmp_path / "out", index[name], name,
                         "is I32, expected F32", "torch_dtype=float32")


def test_missing_and_unexpected_tensors_name_the_shard(run_cli, hf_dir, tmp_path):
    index_path = hf_dir / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    name = "model.layers.0.mlp.experts.3.up_proj.weight"
    rewrite_shard(hf_dir / index["weight_map"][name], lambda tensors: tensors.pop(name))
    del index["weight_map"][name]
    index_path.write_text(json.dumps(index))
    assert_clean_failure(convert(run_cli, hf_dir, tmp_path / "out"), tmp_path / "out", name, "missing", ".safetensors")

    stray = "model.layers.0.mlp.experts.3.bias"
    write_checkpoint(tiny_config(), hf_dir, seed=4)
    rewrite_shard(hf_dir / SHARD, lambda tensors: tensors.update({stray: torch.zeros(2)}))
    assert_clean_failure(convert(run_cli, hf_dir, tmp_path / "out"), tmp_path / "out", SHARD, stray, "unexpected")


def test_ignorable_tensors_are_dropped(run_cli, hf_dir, tmp_path):
    rewrite_shard(hf_dir / SHARD, lambda t: t.update({"model.layers.0.self_attn.rotary_emb.inv_freq": torch.ones(8),
                                                      "lm_head.weight": torch.zeros(131, 64)}))
    assert convert(run_cli, hf_dir, tmp_path / "out").exit_code == 0


def test_unknown_architecture(run_cli, hf_dir, tmp_path):
    config = json.loads((hf_dir / "config.json").read_text())
    (hf_dir / "config.json").write_text(json.dumps(config | {"architectures": ["LlamaForCausalLM"]}))
    assert_clean_failure(convert(run_cli, hf_dir, tmp_path / "out"), tmp_path / "out", "config.json",
                         "LlamaForCausalLM", "HunYuanMoEV1ForCausalLM")


def test_per_layer_top_k_from_make_tiny_is_refused(run_cli, tmp_path):
    hf = tmp_path / "hf23"
    assert run_cli("make-tiny", "--out", hf, "--moe-topk", "2,3").exit_code == 0
    assert json.loads((hf / "config.json").read_text())["moe_topk"] == [2, 3]
    assert_clean_failure(convert(run_cli, hf, tmp_path / "out", "--tp", 2, "--ep", 2), tmp_path / "out",
                         "moe_topk differs between layers ([2, 3])", "one value per model")


def test_per_layer_expert_width_is_refused(run_cli, hf_dir, tmp_path):
    config = json.loads((hf_dir / "config.json").read_text())
    (hf_dir / "config.json").write_text(json.dumps(config | {"moe_intermediate_size": [32, 16]}))
    assert_clean_failure(convert(run_cli, hf_dir, tmp_path / "out"), tmp_path / "out",
                         "moe_intermediate_size differs between layers ([32, 16])")


def test_tp_not_dividing_the_heads(run_cli, hf_dir, tmp_path):
    result = convert(run_cli, hf_dir, tmp_path / "out", "--tp", 3, "--ep", 1)
    assert_clean_failure(result, tmp_path / "out", "num_attention_heads=4 is not divisible by tp_size=3")


def test_ep_not_dividing_the_experts(run_cli, tmp_path):
    hf = tmp_path / "hf6"
    hf.mkdir()
    write_checkpoint(tiny_config(num_experts=6), hf)
    result = convert(run_cli, hf, tmp_path / "out", "--tp", 4, "--ep", 4)
    assert_clean_failure(result, tmp_path / "out", "num_experts=6 is not divisible by moe_ep_size=4")


def test_output_dir_not_writable(run_cli, hf_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = convert(run_cli, hf_dir, blocker / "out", "--tp", 2, "--ep", 2)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert str(blocker) in result.stderr and "expected a writable directory" in result.stderr
    assert blocker.read_text() == "not a directory"


class FullDisk(writer.RankFile):
    """A real output file that fails like a full disk once `room` bytes were written."""

    def __init__(self, path, room):
        super().__init__(path)
        self.room = room

    def _spend(self, nbytes):
        self.room -= nbytes
        if self.room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write(self, data):
        self._spend(memoryview(data).nbytes)
        super().write(data)


def test_disk_full_leaves_nothing(run_cli, hf_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "_open_output", lambda path: FullDisk(path, 100_000))
    result = convert(run_cli, hf_dir, tmp_path / "out", "--tp", 2, "--ep", 2)
    assert_clean_failure(result, tmp_path / "out", "No space left on device", "nothing was written")


def test_failed_rewrite_keeps_the_previous_checkpoint(run_cli, hf_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert convert(run_cli, hf_dir, out, "--tp", 2, "--ep", 2).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(writer, "_open_output", lambda path: FullDisk(path, 1000))
    result = convert(run_cli, hf_dir, out, "--tp", 2, "--ep", 2, "--force")
    assert result.exit_code == 2 and "No space left on device" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_interrupted_run_leaves_no_output_and_stale_partials_are_removed(run_cli, hf_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    stale = tmp_path / ".out.partial-999999999"  # a killed run's leftovers (no such pid)
    stale.mkdir()

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "_open_output", interrupted)
    result = convert(run_cli, hf_dir, out, "--tp", 2, "--ep", 2)
    assert result.exit_code != 0 and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]


def test_out_must_not_replace_the_source(run_cli, hf_dir):
    for out in (hf_dir, hf_dir.parent):
        result = convert(run_cli, hf_dir, out, "--tp", 2, "--ep", 2)
        assert result.exit_code == 2 and "would replace the model directory" in result.stderr
    assert (hf_dir / SHARD).is_file()


def test_verify_bad_input_is_one_line(run_cli, hf_dir, tmp_path):
    out = tmp_path / "ckpt"
    assert convert(run_cli, hf_dir, out, "--tp", 2, "--ep", 2).exit_code == 0
    missing_hf = run_cli("verify", "--checkpoint", out, "--hf-dir", tmp_path / "nowhere")
    assert missing_hf.exit_code == 2 and "nowhere" in missing_hf.stderr and "Traceback" not in missing_hf.output
    (out / "rank1.safetensors").unlink()
    result = run_cli("verify", "--checkpoint", out, "--hf-dir", hf_dir)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip() == f"Error: {out / 'rank1.safetensors'}: missing (config.json says world_size=2)"


def test_make_tiny_refuses_an_existing_directory_without_force(run_cli, hf_dir):
    before = sorted(p.name for p in hf_dir.iterdir())
    result = run_cli("make-tiny", "--out", hf_dir)
    assert result.exit_code == 2 and "already exists; pass --force" in result.stderr
    assert sorted(p.name for p in hf_dir.iterdir()) == before
    assert run_cli("make-tiny", "--out", hf_dir, "--force", "--seed", 9).exit_code == 0
