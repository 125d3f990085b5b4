"""CLI front door: plan/profiles/inspect output, and bad input as one clear line with exit code 2."""

import json
import subprocess
import sys

import pytest
import yaml

from pipeline.cli import COMMANDS


def test_plan_json_has_the_promised_fields(run_cli):
    result = run_cli("plan", "--profile", "a100x2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("weights_gib_per_gpu", "kv_bytes_per_token_per_gpu", "kv_token_capacity", "verdict", "fits"):
        assert key in data
    assert data["fits"] is True


def test_plan_refuses_bf16_on_two_a100(run_cli, profiles_copy):
    (profiles_copy / "a100x2.yaml").write_text(
        (profiles_copy / "a100x2.yaml").read_text().replace("weights: int8-wo", "weights: bf16"))
    result = run_cli("plan", "--profile", "a100x2")
    assert result.exit_code == 2
    assert "does not fit" in result.output and "GiB more" in result.output


def test_flag_overrides_yaml_and_help_names_the_key(run_cli):
    data = json.loads(run_cli("plan", "-p", "h100x2", "--max-seq-len", "8192", "--json").output)
    assert data["max_seq_len"] == 8192
    help_text = run_cli("plan", "--help").output
    assert "overrides YAML key `max_seq_len`" in help_text and "`tp_size`" in help_text


def test_env_var_overrides_yaml(run_cli, monkeypatch):
    monkeypatch.setenv("HUNYUAN_TRT_MAX_SEQ_LEN", "4096")
    assert json.loads(run_cli("plan", "-p", "h100x2", "--json").output)["max_seq_len"] == 4096


def test_profiles_list_show_schema(run_cli):
    rows = json.loads(run_cli("profiles", "list", "--json").output)
    assert {r["name"] for r in rows} >= {"a100x2", "h200x1", "cpu-tiny"} and all(r["fits"] for r in rows)
    shown = json.loads(run_cli("profiles", "show", "h20x2", "--json").output)
    assert shown["profile"]["kv_cache_free_gpu_memory_fraction"] == 0.6 and shown["plan"]["kv_token_capacity"] > 0
    schema = json.loads(run_cli("profiles", "schema").output)
    assert schema["additionalProperties"] is False and "tp_size" in schema["properties"]


def test_inspect_prints_counts(run_cli):
    data = json.loads(run_cli("inspect", "--json").output)
    assert data["params"]["total"] == 80393183232


BAD = {
    "missing profile": (["plan", "-p", "nope"], "unknown profile 'nope'"),
    "missing file": (["plan", "-p", "/tmp/does-not-exist.yaml"], "profile file not found"),
    "malformed yaml": ("tp_size: [1, 2\n", "malformed YAML at line"),
    "wrong type": ({"extends": "h100x2", "max_batch_size": "lots"}, "max_batch_size: Input should be a valid integer"),
    "unknown key": ({"extends": "h100x2", "tp": 2}, "unknown key 'tp'"),
    "impossible parallelism": ({"extends": "h100x2", "moe_ep_size": 4}, "moe_tp_size * moe_ep_size must equal tp_size"),
    "not a mapping": ("- a\n- b\n", "expected a mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.integration
def test_bad_input_is_one_clear_line(case, tmp_path, profiles_copy):
    content, message = BAD[case]
    if isinstance(content, list):
        args = content
    else:
        path = profiles_copy / "bad.yaml"
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        args = ["plan", "-p", str(path)]
    result = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                            env={"HUNYUAN_TRT_PROFILES_DIR": str(profiles_copy), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_every_registered_command_has_help(run_cli):
    for name in COMMANDS:
        assert run_cli(name, "--help").exit_code == 0, name
