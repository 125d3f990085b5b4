"""SGLang behind the engine interface (facts: pipeline/engines/facts/sglang.json; reading: docs/engines.md).

SGLang 0.5.23 has a native HunYuanMoEV1ForCausalLM. Its Hunyuan parsers miss A13B's format (2 of 28 corpus
outputs right, 0 of 9 tool calls), so the bundle sets no parser flags and `serve` puts our adapter in front.
SGLang reads its key only from --api-key (argv or the YAML), so it gets none: it listens on 127.0.0.1 and the
gateway in front enforces the key. --enable-metrics exports /metrics and the queue gauge.
"""

from __future__ import annotations

import importlib.util

import yaml

from pipeline.engines.engine import (
    Checkpoint,
    Rendered,
    checkpoint_support,
    fraction,
    pinned_engine,
)
from pipeline.engines.facts import check_argv, load_facts
from pipeline.memory_plan import Plan
from pipeline.profiles import Profile
from pipeline.support import Support
from pipeline.trtllm.options import BUNDLE, HOST, PORT

CONFIG_NAME = "sglang_config.yaml"
_FP8 = Checkpoint("fp8-angelslim", "fp8", "loads",
                  "Fp8Config, weight_block_size optional (sglang/srt/layers/quantization/fp8.py:269,346)")
_INT4 = Checkpoint("int4-gptq", "gptq_marlin", "loads",
                   "GPTQMarlinConfig / GPTQMarlinMoEMethod (sglang/srt/layers/quantization/gptq/gptq.py:294,623)")
# profile weights -> the checkpoint SGLang serves for it
CHECKPOINTS = {
    "bf16": Checkpoint("bf16", None, "loads",
                       "native model sglang/srt/models/hunyuan.py:543 (EntryClass :804)"),
    "fp8": _FP8,
    "fp8-angelslim": _FP8,
    "int8-wo": _INT4,  # no ModelOpt W8A16 reader; the same GPUs serve the published Int4
    "int4-gptq": _INT4,
    "w4a8-awq": Checkpoint("w4a8-awq", None, "refused",
                           "no ModelOpt W4A8_AWQ choice in --quantization (sglang/srt/arg_groups/fields/model.py:177)"),
}
KV_DTYPES = {"auto": "auto", "bf16": "auto", "fp8": "fp8_e4m3"}  # no plain 'fp8' (fields/model.py:197)


def support(profile: Profile) -> Support:
    return checkpoint_support(ENGINE.label(), profile, CHECKPOINTS)


def mem_fraction_static(plan: Plan) -> float:
    """SGLang's KV pool is f x (free before load) - weights (mem_cache/kv_cache_configurator.py:2991,3007); on a
    dedicated GPU free-before-load is about the total: the f that gives the planner's KV budget. What stays
    outside the fraction, total x (1 - f), is at least the planner's reserve (activations, graphs, runtime)."""
    return (plan.kv_budget_gib_per_gpu + plan.weights_gib_per_gpu) / plan.memory_gib_per_gpu


def config(profile: Profile, plan: Plan) -> dict:
    chosen = next(c for c in CHECKPOINTS.values() if c.weights == profile.weights)
    options = {
        "served-model-name": profile.served_model_name,
        "trust-remote-code": True,
        "tp-size": profile.tp_size,
        "ep-size": profile.moe_ep_size,
        "max-running-requests": profile.max_batch_size,
        "chunked-prefill-size": profile.max_num_tokens if profile.enable_chunked_prefill else -1,
        "context-length": profile.max_seq_len,
        "mem-fraction-static": fraction(mem_fraction_static(plan)),
        "kv-cache-dtype": KV_DTYPES[profile.kv_cache_dtype],
        "disable-radix-cache": not profile.enable_block_reuse,
        "enable-metrics": True,
    }
    return options | ({"quantization": chosen.quantization} if chosen.quantization else {})


def render(profile: Profile, plan: Plan, model_path: str) -> Rendered:
    options = config(profile, plan)
    serve = [*load_facts("sglang")["command"]["argv"], "--model-path", model_path, "--host", HOST, "--port", PORT,
             "--config", f"{BUNDLE}/{CONFIG_NAME}"]
    check_argv("sglang", serve, options)
    header = (f"# python -m sglang.launch_server --config (profile {plan.profile}, {ENGINE.label()}); keys are the "
              "dashed flag names; checked against pipeline/engines/facts/sglang.json.\n")
    return Rendered(files={CONFIG_NAME: header + yaml.safe_dump(options, sort_keys=False)}, lines={"serve": serve},
                    meta={"sglang_version": load_facts("sglang")["version"]})


def memory_setting(profile: Profile, plan: Plan) -> str:
    return f"--mem-fraction-static {fraction(mem_fraction_static(plan))} (of memory free before load, weights included)"


ENGINE = pinned_engine(
    "sglang", "SGLang", CHECKPOINTS, support, render=render, memory_setting=memory_setting,
    api_key="the smg gateway enforces it; SGLang listens on 127.0.0.1 without a key (it reads one only from argv)",
    tools_missing=lambda profile: [] if importlib.util.find_spec("sglang") else ["sglang (python module)"],
)
