"""Hostile files (issue #17 item 7): YAML bombs, absurd config.json values, lying safetensors headers. Each is
one `Error:` line, exit 2, in bounded time and memory."""

from __future__ import annotations

import json
import struct

import pytest

from pipeline.checkpoint.st_format import read_header
from pipeline.errors import PipelineError
from pipeline.model import A13B_CONFIG, load_spec, spec_from_config
from pipeline.yaml_budget import MAX_YAML_NODES, load_yaml

ALIAS_BOMB = "extends: base\naccelerator: h100-sxm-80g\nnum_gpus: 2\ntp_size: 2\nmodel_repo: x\nweights: fp8\n" \
    "description:\n  - &a [x, x, x, x, x, x, x, x, x]\n" + "".join(  # 9 ** 9 strings once expanded
        f"  - &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi", strict=True))


def one_line(result, *needles):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.stderr
    assert len(lines[0]) < 400, len(lines[0])
    assert all(needle in lines[0] for needle in needles), lines[0]


# --- YAML -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "needle"), [
    (ALIAS_BOMB, "alias bomb"),  # 9 ** 9 = 387 million strings once expanded
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("num_gpus: " + "9" * 10000 + "\n", "cannot be read"),
    ("a: [1, 2\n", "malformed YAML at line"),
])
def test_hostile_profile_yaml_is_one_line(run_cli, tmp_path, text, needle):
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    one_line(run_cli("plan", "-p", path), str(path), needle)


def test_non_utf8_and_oversized_yaml(run_cli, tmp_path):
    binary, huge = tmp_path / "binary.yaml", tmp_path / "huge.yaml"
    binary.write_bytes(b"description: \xff\xfe\n")
    huge.write_text("# " + "x" * (1 << 20) + "\n")
    one_line(run_cli("plan", "-p", binary), "not UTF-8")
    one_line(run_cli("plan", "-p", huge), "larger than 256 KiB")


def test_alias_budget_counts_uses_not_definitions(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &base {tp_size: 2, moe_ep_size: 2}\none: *base\ntwo: *base\n")
    assert load_yaml(path, "profile file")["two"] == {"tp_size": 2, "moe_ep_size": 2}
    rows = MAX_YAML_NODES // 4
    path.write_text("x: &x [1, 2, 3]\ny: [" + ", ".join(["*x"] * rows) + "]\n")
    with pytest.raises(PipelineError, match="alias bomb"):
        load_yaml(path, "profile file")


# --- config.json ------------------------------------------------------------------------------------------

@pytest.fixture
def a13b():
    return json.loads(A13B_CONFIG.read_text())


@pytest.mark.parametrize(("change", "needle"), [
    ({"num_attention_heads": 0}, "num_attention_heads=0 is out of range"),
    ({"hidden_size": "4096"}, "hidden_size='4096': expected an integer"),
    ({"hidden_size": -4096}, "hidden_size=-4096 is out of range"),
    ({"hidden_size": 4096.5}, "hidden_size=4096.5: expected an integer"),
    ({"hidden_size": True}, "hidden_size=True: expected an integer"),
    ({"num_hidden_layers": 1e8}, "num_hidden_layers=100000000.0: expected an integer"),
    ({"num_hidden_layers": 100_000_000}, "num_hidden_layers=100000000 is out of range"),
    ({"vocab_size": 1 << 40}, "vocab_size=1099511627776 is out of range"),
    ({"moe_topk": [8] * 31 + ["8"]}, "moe_topk[31]='8': expected an integer"),
    ({"moe_intermediate_size": [3072] * 31 + [0]}, "moe_intermediate_size[31]=0 is out of range"),
    ({"moe_topk": list(range(1, 100_000))}, "99999 entries, expected num_hidden_layers=32"),
    ({"rope_theta": float("nan")}, "rope_theta=nan: expected a number"),
    ({"rms_norm_eps": 0}, "rms_norm_eps=0 is out of range"),
    ({"rope_scaling": {"alpha": "big"}}, "rope_scaling.alpha='big'"),
    ({"rope_scaling": 7}, "rope_scaling=7: expected an object"),
    ({"tie_word_embeddings": "false"}, "tie_word_embeddings='false': expected true or false"),
    ({"torch_dtype": "int8"}, "torch_dtype='int8': expected one of bfloat16"),
    ({"architectures": "HunYuanMoEV1ForCausalLM"}, "is not supported"),
    ({"attention_head_dim": 0, "head_dim": None, "hidden_size": 4095}, "not a multiple of num_attention_heads"),
    ({"hidden_size": "x" * 10_000}, "hidden_size='xxxxx"),
])
def test_config_values_are_checked_before_use(a13b, change, needle):
    with pytest.raises(PipelineError, match=None) as caught:
        spec_from_config(a13b | change, source="config.json")
    message = str(caught.value)
    assert needle in message and len(message) < 300, message


def test_config_files_that_are_not_json_objects(run_cli, tmp_path):
    binary = tmp_path / "binary" / "config.json"
    binary.parent.mkdir()
    binary.write_bytes(b'{"hidden_size": "\xff"}')
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    for path, needle in ((binary, "not UTF-8"), (deep, "nested too deeply"), ("/dev/zero", "larger than 1024 KiB")):
        with pytest.raises(PipelineError, match=needle):
            load_spec(path)
    one_line(run_cli("inspect", "--model-dir", "/dev/zero"), "/dev/zero", "larger than")


# --- safetensors headers ----------------------------------------------------------------------------------

def write_raw(path, header: dict, data_bytes: int):
    body = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + bytes(data_bytes))
    return path


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


@pytest.mark.parametrize(("header", "data_bytes", "needle"), [
    ({"a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 8, 24)}, 24, "'b' starts at data offset 8, expected 16: "
                                                                          "it overlaps"),
    ({"a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 24, 40)}, 40, "leaves a gap"),
    ({"a": entry("F32", [4], 0, 16)}, 32, "16 bytes after the last tensor"),
    ({"a": entry("F32", [4], -16, 0)}, 16, "0 <= begin <= end"),
    ({"a": entry("F32", [-4], 0, 16)}, 16, "non-negative integers"),
    ({"a": entry("F32", [4.0], 0, 16)}, 16, "non-negative integers"),
    ({"a": entry("Q4", [4], 0, 16)}, 16, "dtype 'Q4'"),
    ({"a": entry("F32", [4], 0, 12)}, 16, "spans 12 bytes"),
    ({"a": [1, 2]}, 16, "needs dtype, shape and data_offsets"),
])
def test_lying_safetensors_headers(tmp_path, header, data_bytes, needle):
    path = write_raw(tmp_path / "model.safetensors", header, data_bytes)
    with pytest.raises(PipelineError, match=None) as caught:
        read_header(path)
    assert needle in str(caught.value) and str(path) in str(caught.value), str(caught.value)


def test_a_valid_header_tiles_exactly(tmp_path):
    path = write_raw(tmp_path / "model.safetensors", {"__metadata__": {"format": "pt"}, "empty": entry("F32", [0], 16, 16),
                                                      "b": entry("BF16", [8], 16, 32), "a": entry("F32", [4], 0, 16)}, 32)
    assert sorted(read_header(path)) == ["a", "b", "empty"]
