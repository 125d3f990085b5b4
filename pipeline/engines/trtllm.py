"""TensorRT-LLM behind the engine interface: the bundle the pipeline has always written (llm_api_options.yaml,
trtllm-serve and, for the tensorrt backend, trtllm-build argv), unchanged; the CPU stand-in for cpu-tiny."""

from __future__ import annotations

import shutil

import yaml

from pipeline.cpu_backend.runner import SCHEMA_FLAGS, backend_argv
from pipeline.engines.engine import Engine, Rendered
from pipeline.memory_plan import Plan
from pipeline.profiles import Profile
from pipeline.support import require_loads, support
from pipeline.trtllm import load_facts, trtllm_version
from pipeline.trtllm.options import HOST, PORT, PYTHON, YAML_NAME, build_argv, llm_api_options, serve_argv
from pipeline.trtllm.schema import check_argv, check_build_argv, check_llm_args, check_serve_argv

TOOLS = {"pytorch": ["trtllm-serve"], "tensorrt": ["trtllm-build", "trtllm-serve"], "cpu": []}
TENSORRT_NOTE = ("TensorRT-LLM's engine builder has no Hunyuan class in MODEL_MAP: trtllm-build runs with the "
                 "profile's model_cls_file/model_cls_name, a class applying RoPE before QK-norm (see the facts file)")
# the backend's environment, from the facts.json entries that carry an `env`: ENABLE_CONFIGURABLE_MOE=0 gives the
# plain CutlassFusedMoE whose expert names every Hunyuan loader version maps (facts.json configurable_moe)
SERVE_ENV_FACTS = {"pytorch": ("configurable_moe",), "tensorrt": (), "cpu": ()}


def command_lines(profile: Profile, model_path: str) -> dict[str, list[str]]:
    """argv.json content, checked against the flag lists."""
    if profile.backend == "cpu":
        argv = backend_argv(model_path, python=PYTHON, host=HOST, port=PORT, served_model_name=profile.served_model_name,
                            max_batch_size=profile.max_batch_size, max_seq_len=profile.max_seq_len)
        check_argv(argv, SCHEMA_FLAGS, positionals=3, source="argv.json (pipeline.cpu_backend)")
        return {"serve": argv}
    lines = {"serve": serve_argv(profile, model_path)}
    check_serve_argv(lines["serve"])
    if profile.backend == "tensorrt":
        lines["build"] = build_argv(profile, model_path)
        check_build_argv(lines["build"])
    return lines


def _yaml_text(name: str, options: dict) -> str:
    header = (f"# LLM-API options for trtllm-serve --extra_llm_api_options (profile {name}, TensorRT-LLM "
              f"{trtllm_version()}).\n# Checked against pipeline/trtllm/schema.json; values here win over the flags.\n")
    return header + yaml.safe_dump(options, sort_keys=False)


def render(profile: Profile, plan: Plan, model_path: str) -> Rendered:
    options = llm_api_options(profile)
    check_llm_args(options, "tensorrt" if profile.backend == "tensorrt" else "pytorch")
    env = {key: value for fact in SERVE_ENV_FACTS[profile.backend] for key, value in load_facts()[fact]["env"].items()}
    return Rendered(files={YAML_NAME: _yaml_text(plan.profile, options)}, lines=command_lines(profile, model_path),
                    env=env, meta={"trtllm_version": trtllm_version(),
                                   "notes": [TENSORRT_NOTE] if profile.backend == "tensorrt" else []})


ENGINE = Engine(
    name="trtllm",
    label=lambda: f"TensorRT-LLM {trtllm_version()}",
    health_path="/health",
    metrics_path="/prometheus/metrics",  # mounted by return_perf_metrics (llm_api_options)
    queue_metric=None,  # 1.2.1 exports no queue gauge (trtllm_num_requests_waiting comes in 1.3.0rc12): KEDA reads
    # the queue-time histogram instead (pipeline/deploy/overlay.py QUEUE_QUERIES, docs/deploy.md)
    needs_adapter=True,  # trtllm-serve returns A13B's raw <think>/<answer>/<tool_calls> text
    api_key="the smg gateway enforces it; trtllm-serve has no key of its own",
    script_host="0.0.0.0",
    served_profile=lambda profile: profile,
    support=support,
    require_loads=require_loads,
    render=render,
    memory_setting=lambda profile, plan: f"kv_cache_free_gpu_memory_fraction {profile.kv_cache_free_gpu_memory_fraction}"
                                         " (of free memory after load)",
    tools_missing=lambda profile: [tool for tool in TOOLS[profile.backend] if shutil.which(tool) is None],
)
