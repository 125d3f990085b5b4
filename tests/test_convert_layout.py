"""The layout rules on a seeded tiny checkpoint, checked against slices computed here by hand."""

from __future__ import annotations

import errno
import os

import pytest
import torch
from safetensors.torch import load_file

from pipeline.checkpoint import writer
from pipeline.checkpoint.convert import parallel_overrides
from pipeline.checkpoint.layout import Layout
from pipeline.checkpoint.source import SourceCheckpoint
from pipeline.checkpoint.tensor_plan import build_plan
from pipeline.checkpoint.writer import write_ranks
from pipeline.model import spec_from_config
from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

CONFIG = tiny_config()  # hidden 64, 4 heads of 16, 2 kv heads, 8 experts of width 32, vocab 131


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf")
    write_checkpoint(CONFIG, directory, seed=3)
    tensors = {}
    for path in sorted(directory.glob("*.safetensors")):
        tensors.update(load_file(path))
    return directory, tensors


def convert(hf_dir, out, layout):
    spec = spec_from_config(CONFIG)
    out.mkdir()
    write_ranks(build_plan(spec, layout, SourceCheckpoint(hf_dir)), SourceCheckpoint(hf_dir), out, workers=1)
    return [load_file(out / f"rank{r}.safetensors") for r in range(layout.world_size)]


def test_layout_arithmetic():
    layout = Layout(tp=4, moe_tp=2, moe_ep=2)
    assert [layout.moe_ep_rank(r) for r in range(4)] == [0, 1, 0, 1]
    assert [layout.moe_tp_rank(r) for r in range(4)] == [0, 0, 1, 1]
    assert [list(layout.experts(r, 8)) for r in range(4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7]]
    assert [list(layout.kv_heads(r, 2)) for r in range(4)] == [[0], [0], [1], [1]]  # duplicated
    assert [list(Layout(2, 1, 2).kv_heads(r, 8)) for r in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert layout.padded_vocab(131) == 132 and Layout(2, 2, 1).padded_vocab(131) == 132


def test_qkv_splits_q_and_duplicates_kv_heads_when_tp_exceeds_them(hf, tmp_path):
    hf_dir, src = hf
    ranks = convert(hf_dir, tmp_path / "out", Layout(4, 2, 2))
    q, k, v = (src[f"model.layers.1.self_attn.{n}_proj.weight"] for n in "qkv")
    for rank, tensors in enumerate(ranks):
        kv_head = rank // 2  # 2 kv heads over 4 ranks: each repeated twice, contiguously
        expected = torch.cat([q[rank * 16:(rank + 1) * 16], k[kv_head * 16:(kv_head + 1) * 16],
                              v[kv_head * 16:(kv_head + 1) * 16]])
        assert torch.equal(tensors["transformer.layers.1.attention.qkv.weight"], expected)
        assert torch.equal(tensors["transformer.layers.1.attention.dense.weight"],
                           src["model.layers.1.self_attn.o_proj.weight"][:, rank * 16:(rank + 1) * 16])


def test_experts_contiguous_block_up_before_gate_and_moe_tp_split(hf, tmp_path):
    hf_dir, src = hf
    ranks = convert(hf_dir, tmp_path / "out", Layout(4, 2, 2))
    rank = 3  # moe_ep_rank 1 -> experts 4..7; moe_tp_rank 1 -> second half of the 32-wide intermediate
    fc = ranks[rank]["transformer.layers.0.mlp.fc.weight"]
    proj = ranks[rank]["transformer.layers.0.mlp.proj.weight"]
    assert fc.shape == (4, 32, 64) and proj.shape == (4, 64, 16)
    for local, expert in enumerate(range(4, 8)):
        up = src[f"model.layers.0.mlp.experts.{expert}.up_proj.weight"][16:32]
        gate = src[f"model.layers.0.mlp.experts.{expert}.gate_proj.weight"][16:32]
        assert torch.equal(fc[local], torch.cat([up, gate]))
        assert torch.equal(proj[local], src[f"model.layers.0.mlp.experts.{expert}.down_proj.weight"][:, 16:32])


def test_router_fp32_replicated_shared_expert_by_tp_and_vocab_padding(hf, tmp_path):
    hf_dir, src = hf
    ranks = convert(hf_dir, tmp_path / "out", Layout(2, 1, 2))
    embed = src["model.embed_tokens.weight"]
    for rank, tensors in enumerate(ranks):
        router = tensors["transformer.layers.0.mlp.router.weight"]
        assert router.dtype == torch.float32 and torch.equal(router, src["model.layers.0.mlp.gate.wg.weight"].float())
        shared_up = src["model.layers.0.mlp.shared_mlp.up_proj.weight"][rank * 16:(rank + 1) * 16]
        shared_gate = src["model.layers.0.mlp.shared_mlp.gate_proj.weight"][rank * 16:(rank + 1) * 16]
        assert torch.equal(tensors["transformer.layers.0.mlp.shared_expert.fc.weight"], torch.cat([shared_up, shared_gate]))
        assert torch.equal(tensors["transformer.vocab_embedding.weight"], embed)
    assert torch.equal(ranks[0]["lm_head.weight"], embed[:66])
    assert torch.equal(ranks[1]["lm_head.weight"][:65], embed[66:]) and not ranks[1]["lm_head.weight"][65].any()


def test_bytes_do_not_depend_on_block_size_or_o_direct(hf, tmp_path, monkeypatch):
    """Blocks far smaller than the tensors (reads and writes that straddle tensor boundaries, unaligned tails)
    and the buffered fallback for filesystems that refuse O_DIRECT (tmpfs) write the same bytes as the default."""
    layout = Layout(4, 2, 2)
    convert(hf[0], tmp_path / "default", layout)
    monkeypatch.setattr(writer, "BUFFER_BYTES", 2 * writer.BLOCK)
    convert(hf[0], tmp_path / "small", layout)
    real_open = os.open

    def refuse_direct(path, flags, *mode):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_open(path, flags, *mode)

    monkeypatch.setattr(os, "open", refuse_direct)
    convert(hf[0], tmp_path / "buffered", layout)
    for name in (f"rank{rank}.safetensors" for rank in range(layout.world_size)):
        expected = (tmp_path / "default" / name).read_bytes()
        assert (tmp_path / "small" / name).read_bytes() == expected
        assert (tmp_path / "buffered" / name).read_bytes() == expected


@pytest.mark.parametrize(("raw", "flags", "expected"), [
    ({"tp_size": 2, "moe_ep_size": 2, "moe_tp_size": 1}, (None, None, 2), {"moe_ep_size": 1, "moe_tp_size": 2}),
    ({"tp_size": 2, "moe_ep_size": 1, "moe_tp_size": 2}, (4, 2, None), {"tp_size": 4, "moe_ep_size": 2, "moe_tp_size": 2, "num_gpus": 4}),
    ({"tp_size": 2, "moe_ep_size": 2, "moe_tp_size": 1}, (4, None, None), {"tp_size": 4, "moe_ep_size": 2, "moe_tp_size": 2}),
])
def test_flags_override_profile_and_derive_the_missing_moe_size(raw, flags, expected):
    overrides, notes = parallel_overrides(raw, *flags)
    assert {key: overrides[key] for key in expected} == expected
    assert all("because" in note for note in notes) and notes
