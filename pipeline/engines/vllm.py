"""vLLM behind the engine interface (facts: pipeline/engines/facts/vllm.json; reading: docs/engines.md).

vLLM 0.34.0 runs A13B through its Transformers backend (no native Hunyuan class). The bundle keeps the profile's
shape in vllm_config.yaml (`vllm serve MODEL --config ...`); `serve` runs vLLM on loopback without parsers and the
Hunyuan adapter in front: on the 28 raw A13B outputs replayed through vLLM's own `hunyuan_a13b` parsers, 17 come
out as expected (docs/engines.md "Parsers on A13B output"), while the adapter is held to the conformance suite
(tests/data/hunyuan_outputs/conformance.yaml) that holds 27 of those 28, and gives one output across engines.
argv.json's "standalone" line is vLLM alone with its Hunyuan parsers and its key from VLLM_API_KEY.
"""

from __future__ import annotations

import shutil

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

CONFIG_NAME = "vllm_config.yaml"
BACKEND = ("TransformersMoEForCausalLM (vllm/model_executor/models/registry.py:782,792; no native Hunyuan class, "
           "--model-impl stays auto)")
_FP8 = Checkpoint("fp8-angelslim", "fp8", "loads",
                  "Tencent's published FP8 as is: Fp8Config.from_config, weight_block_size optional, activation_scheme "
                  "required (vllm/model_executor/layers/quantization/fp8.py:158,160), MoE Fp8MoEMethod (fp8.py:462)")
_INT4 = Checkpoint("int4-gptq", "gptq_marlin", "loads",
                   "gptq_marlin -> AutoGPTQConfig (vllm/model_executor/layers/quantization/__init__.py:170; "
                   "auto_gptq.py:225-240), experts AutoGPTQMoEMethod / MoE-WNA16 (auto_gptq.py:243-264)")
# profile weights -> the checkpoint vLLM serves for it
CHECKPOINTS = {
    "bf16": Checkpoint("bf16", None, "loads", BACKEND),
    "fp8": _FP8,  # vLLM reads Tencent's FP8 directly; the ModelOpt relabelling is TensorRT-LLM's need
    "fp8-angelslim": _FP8,
    "int8-wo": _INT4,  # W8A16 ModelOpt is TensorRT-LLM's format; on vLLM the same GPUs serve the published Int4
    "int4-gptq": _INT4,
    "w4a8-awq": Checkpoint("w4a8-awq", None, "refused",
                           "no ModelOpt W4A8_AWQ reader for this model in vllm/model_executor/layers/quantization/"),
}
KV_DTYPES = {"auto": "auto", "bf16": "auto", "fp8": "fp8"}  # vllm/config/cache.py:44
PARSER = "hunyuan_a13b"  # reasoning (vllm/reasoning/__init__.py:95) and tools (vllm/tool_parsers/__init__.py:105)
PARSER_FLAGS = ["--reasoning-parser", PARSER, "--tool-call-parser", PARSER, "--enable-auto-tool-choice"]


def _expert_layout_problem(profile: Profile) -> str:
    """--enable-expert-parallel is a switch (arg_utils.py:1319): experts are all-EP or all-TP over the TP ranks."""
    if profile.moe_ep_size in (1, profile.tp_size):
        return ""
    return (f"moe_ep_size={profile.moe_ep_size} with tp_size={profile.tp_size}: vLLM's --enable-expert-parallel is a "
            "switch (experts all expert-parallel or all tensor-parallel); use moe_ep_size 1 or tp_size")


def support(profile: Profile) -> Support:
    return checkpoint_support(ENGINE.label(), profile, CHECKPOINTS, _expert_layout_problem(profile))


def gpu_memory_utilization(plan: Plan) -> float:
    """vLLM sizes KV as u x total - (weights + activations) - CUDA graphs (v1/worker/utils.py:743,
    v1/worker/gpu_worker.py:776): the u that gives the planner's KV budget."""
    used = plan.kv_budget_gib_per_gpu + plan.weights_gib_per_gpu + plan.reserve_gib_per_gpu
    return used / plan.memory_gib_per_gpu


def config(profile: Profile, plan: Plan) -> dict:
    chosen = next(c for c in CHECKPOINTS.values() if c.weights == profile.weights)
    options = {
        "served-model-name": [profile.served_model_name],
        "trust-remote-code": True,
        "tensor-parallel-size": profile.tp_size,
        "enable-expert-parallel": profile.moe_ep_size > 1,
        "max-num-seqs": profile.max_batch_size,
        "max-num-batched-tokens": profile.max_num_tokens,
        "max-model-len": profile.max_seq_len,
        "enable-chunked-prefill": profile.enable_chunked_prefill,
        "enable-prefix-caching": profile.enable_block_reuse,
        "gpu-memory-utilization": fraction(gpu_memory_utilization(plan)),
        "kv-cache-dtype": KV_DTYPES[profile.kv_cache_dtype],
    }
    return options | ({"quantization": chosen.quantization} if chosen.quantization else {})


def render(profile: Profile, plan: Plan, model_path: str) -> Rendered:
    options = config(profile, plan)
    serve = ["vllm", "serve", model_path, "--host", HOST, "--port", PORT, "--config", f"{BUNDLE}/{CONFIG_NAME}"]
    lines = {"serve": serve, "standalone": serve + PARSER_FLAGS}
    for argv in lines.values():
        check_argv("vllm", argv, options)
    header = (f"# vllm serve --config (profile {plan.profile}, {ENGINE.label()}); checked against "
              "pipeline/engines/facts/vllm.json.\n")
    return Rendered(files={CONFIG_NAME: header + yaml.safe_dump(options, sort_keys=False)}, lines=lines,
                    meta={"vllm_version": load_facts("vllm")["version"], "model_impl": BACKEND,
                          "standalone": "argv.json 'standalone': vLLM alone with its hunyuan_a13b parsers; export "
                                        "VLLM_API_KEY (a Secret) first, it then guards /v1"})


def memory_setting(profile: Profile, plan: Plan) -> str:
    return f"--gpu-memory-utilization {fraction(gpu_memory_utilization(plan))} (of total memory, weights and activations included)"


ENGINE = pinned_engine(
    "vllm", "vLLM", CHECKPOINTS, support, render=render, memory_setting=memory_setting,
    api_key="the smg gateway enforces it; vLLM listens on 127.0.0.1 behind the adapter (standalone: VLLM_API_KEY)",
    tools_missing=lambda profile: [] if shutil.which("vllm") else ["vllm"],
)
