"""The pinned vLLM / SGLang facts and the argv checker built on them."""

from __future__ import annotations

import re

import pytest

from pipeline.engines.facts import VALUE_TYPES, check_argv, config_tokens, engines, load_facts
from pipeline.errors import PipelineError

# A13B as the engine modules will launch it (values as the issue's profiles give them).
GOOD = {
    "vllm": ["vllm", "serve", "/models/hunyuan", "--tensor-parallel-size", "2", "--max-num-seqs", "128",
             "--max-num-batched-tokens", "16384", "--max-model-len", "32768", "--gpu-memory-utilization",
             "0.9", "--kv-cache-dtype", "fp8", "--quantization", "gptq_marlin", "--trust-remote-code",
             "--served-model-name", "hunyuan", "--reasoning-parser", "hunyuan_a13b", "--tool-call-parser",
             "hunyuan_a13b", "--enable-auto-tool-choice", "--host", "{host}", "--port", "{port}"],
    "sglang": ["python", "-m", "sglang.launch_server", "--model-path", "/models/hunyuan", "--tp-size", "4",
               "--max-running-requests", "128", "--chunked-prefill-size", "16384", "--context-length",
               "32768", "--mem-fraction-static", "0.85", "--kv-cache-dtype", "fp8_e4m3", "--trust-remote-code",
               "--served-model-name", "hunyuan", "--reasoning-parser", "hunyuan", "--enable-metrics",
               "--host", "{host}", "--port", "{port}"],
}


def with_args(engine: str, *extra: str) -> list[str]:
    return GOOD[engine] + list(extra)


def rejected(engine: str, argv: list[str], config: dict | None = None) -> str:
    with pytest.raises(PipelineError) as caught:
        check_argv(engine, argv, config=config)
    message = str(caught.value)  # works for both the click-based and the plain PipelineError
    assert "\n" not in message
    return message


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_good_argv_passes(engine):
    check_argv(engine, GOOD[engine])


@pytest.mark.parametrize(("engine", "typo", "meant"), [
    ("vllm", "--tensor-paralel-size", "--tensor-parallel-size"),
    ("sglang", "--max-running-request", "--max-running-requests"),
])
def test_unknown_flag_fails_with_did_you_mean(engine, typo, meant):
    message = rejected(engine, with_args(engine, typo, "2"))
    assert f"{typo}: unknown flag (did you mean '{meant}'?)" in message
    assert f"({engine} {load_facts(engine)['version']})" in message


def test_sglang_has_no_tp_flag():
    assert "--tp: unknown flag" in rejected("sglang", with_args("sglang", "--tp", "4"))


@pytest.mark.parametrize(("engine", "flag", "value"), [
    ("vllm", "--kv-cache-dtype", "fp9"),
    ("vllm", "--quantization", "gptq_marlinn"),
    ("vllm", "--reasoning-parser", "hunyuan"),  # SGLang's name, not vLLM's
    ("sglang", "--kv-cache-dtype", "fp8"),  # SGLang spells it fp8_e4m3 / fp8_e5m2
    ("sglang", "--tool-call-parser", "hunyuan_a13b"),
])
def test_bad_choice_fails(engine, flag, value):
    assert f"{flag}: expected one of" in rejected(engine, with_args(engine, flag, value))


@pytest.mark.parametrize(("engine", "flag", "value", "expected"), [
    ("vllm", "--tensor-parallel-size", "two", "expected int"),
    ("vllm", "--gpu-memory-utilization", "1.5", "expected 0 < value <= 1"),
    ("vllm", "--tensor-parallel-size", "0", "expected 1 <= value"),
    ("vllm", "--allowed-origins", "[1,", "expected json"),
    ("sglang", "--mem-fraction-static", "most", "expected float"),
])
def test_value_type_and_bounds(engine, flag, value, expected):
    assert f"{flag}: {expected}" in rejected(engine, with_args(engine, flag, value))


def test_value_count_is_checked():
    assert "--trust-remote-code: takes no value" in rejected("vllm", with_args("vllm", "--trust-remote-code=yes"))
    assert "--port: missing value" in rejected("vllm", GOOD["vllm"][:-1])
    assert "unexpected positional argument" in rejected("sglang", with_args("sglang", "stray"))


def test_inline_values_and_negations():
    check_argv("vllm", with_args("vllm", "--max-num-seqs=64", "--no-enable-prefix-caching"))
    assert "--max-num-seqs: expected int" in rejected("vllm", with_args("vllm", "--max-num-seqs=lots"))


def test_spelling_follows_the_engine():
    check_argv("vllm", with_args("vllm", "--max_num_seqs", "64"))  # vLLM accepts both spellings
    assert "--max_running_requests: unknown flag" in rejected("sglang", with_args("sglang", "--max_running_requests", "8"))


def test_command_and_required_flags():
    assert "expected the command to start with vllm serve" in rejected("vllm", ["vllm", "bench"] + GOOD["vllm"][2:])
    without_model = [t for t in GOOD["sglang"] if t not in {"--model-path", "/models/hunyuan"}]
    assert "--model-path: required" in rejected("sglang", without_model)


def test_config_yaml_keys_follow_each_engine():
    check_argv("vllm", ["vllm", "serve", "--config", "{bundle}/config.yaml"],
               config={"model": "/models/hunyuan", "tensor_parallel_size": 2, "enable-prefix-caching": False})
    sglang_argv = ["python", "-m", "sglang.launch_server", "--config", "{bundle}/config.yaml"]
    check_argv("sglang", sglang_argv, config={"model-path": "/models/hunyuan", "tp-size": 2, "enable-metrics": True})
    message = rejected("sglang", sglang_argv, config={"model-path": "/models/hunyuan", "tp_size": 2})
    assert "--config YAML --tp_size: unknown flag (did you mean '--tp-size'?)" in message


def test_config_tokens_follow_the_engines_rules():
    assert config_tokens("vllm", {"enable-prefix-caching": False, "trust-remote-code": True,
                                  "api-key": ["a", "b"], "hf-overrides": {"x": 1}}) == [
        "--no-enable-prefix-caching", "--trust-remote-code", "--api-key", "a", "b", "--hf-overrides", '{"x": 1}']
    assert config_tokens("sglang", {"enable-metrics": False, "trust-remote-code": True}) == ["--trust-remote-code"]
    # a boolean on a flag that takes a value: SGLang passes it as text, vLLM as a bare flag (which then fails)
    assert config_tokens("sglang", {"tp-size": True}) == ["--tp-size", "true"]
    assert config_tokens("vllm", {"tensor-parallel-size": True}) == ["--tensor-parallel-size"]


def test_unknown_engine_is_one_line():
    with pytest.raises(PipelineError, match=r"engine 'vlm': no pinned facts .*did you mean 'vllm'"):
        load_facts("vlm")


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_facts_are_complete_and_cited(engine):
    facts = load_facts(engine)
    assert engine in engines()
    cite = re.compile(r"^[\w./-]+\.(py|dist-info/METADATA):\d+$")
    for name, flag in facts["flags"].items():
        assert flag["names"][0] == name and cite.match(flag["source"]), name
        assert flag.get("type", "str") in VALUE_TYPES, name
    serving = facts["serving"]
    assert serving["queue_metric"] in facts["metrics"]
    for key in ("health", "models", "metrics", "api_key", "metrics_gate"):
        assert cite.match(serving[key]["source"]), key
    for kind in ("reasoning", "tool_call"):
        assert all(cite.match(source) for source in facts["parsers"][kind].values())
    for package in ("torch", "transformers"):
        assert cite.match(facts["requirements"][package]["source"])
    assert facts["image"]["tag"] == f"v{facts['version']}"


def test_the_facts_the_issue_relies_on():
    vllm, sglang = load_facts("vllm"), load_facts("sglang")
    assert "hunyuan_a13b" in vllm["parsers"]["reasoning"] and "hunyuan_a13b" in vllm["parsers"]["tool_call"]
    assert "hunyuan" in sglang["parsers"]["reasoning"] and "hunyuan" in sglang["parsers"]["tool_call"]
    assert {"gptq_marlin", "experts_int8", "fp8"} <= set(vllm["quantization_methods"]["values"])
    assert "fp8" not in sglang["kv_cache_dtypes"]["values"] and "fp8_e4m3" in sglang["kv_cache_dtypes"]["values"]
    assert vllm["serving"]["api_key"]["env"] == "VLLM_API_KEY" and sglang["serving"]["api_key"]["env"] is None
    assert sglang["serving"]["metrics_gate"]["enabled_by"] == "--enable-metrics"
