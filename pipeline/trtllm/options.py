"""Profile -> TensorRT-LLM LLM-API options (the extra_llm_api_options YAML) and command lines.

Placeholders in argv ({host}, {port}, {bundle}, {python}) are filled in by `hunyuan-trt serve`, and by
serve.sh from $HOST, $PORT, its own directory and $PYTHON.
"""

from __future__ import annotations

from pipeline.profiles import Profile

HOST, PORT, BUNDLE, PYTHON = "{host}", "{port}", "{bundle}", "{python}"
YAML_NAME = "llm_api_options.yaml"
ENGINE_DIR = f"{BUNDLE}/engine"
KV_DTYPES = {"auto": "auto", "bf16": "bfloat16", "fp8": "fp8"}


def llm_api_options(profile: Profile) -> dict:
    """The LLM-API arguments for trtllm-serve --extra_llm_api_options (YAML values win over its flags)."""
    options = {
        "trust_remote_code": True,
        "tensor_parallel_size": profile.tp_size,
        "pipeline_parallel_size": profile.pp_size,
        "moe_tensor_parallel_size": profile.moe_tp_size,
        "moe_expert_parallel_size": profile.moe_ep_size,
        "enable_attention_dp": profile.enable_attention_dp,
        "max_batch_size": profile.max_batch_size,
        "max_num_tokens": profile.max_num_tokens,
        "max_seq_len": profile.max_seq_len,
        "enable_chunked_prefill": profile.enable_chunked_prefill,
        "kv_cache_config": {"free_gpu_memory_fraction": profile.kv_cache_free_gpu_memory_fraction,
                            "enable_block_reuse": profile.enable_block_reuse},
        "return_perf_metrics": True,  # mounts /prometheus/metrics and /perf_metrics
    }
    if profile.backend == "tensorrt":
        return options  # KV dtype, CUDA graphs and MoE kernels are baked into the engine
    options["kv_cache_config"]["dtype"] = KV_DTYPES[profile.kv_cache_dtype]
    options.update({
        "cuda_graph_config": {"batch_sizes": sorted(profile.cuda_graph_batch_sizes), "enable_padding": True},
        "moe_config": {"backend": profile.moe_backend},
        "enable_iter_perf_stats": True,  # /metrics iteration stats, KV-cache gauges in Prometheus
        "print_iter_log": False,
    })
    return options


def serve_argv(profile: Profile, model_path: str) -> list[str]:
    """trtllm-serve for the pytorch backend (HF checkpoint) or the tensorrt backend (built engine)."""
    model, extra = (model_path, []) if profile.backend == "pytorch" else (ENGINE_DIR, ["--tokenizer", model_path])
    argv = ["trtllm-serve", model, *extra, "--host", HOST, "--port", PORT, "--backend", profile.backend,
            "--tp_size", str(profile.tp_size), "--pp_size", str(profile.pp_size),
            "--ep_size", str(profile.moe_ep_size),
            "--max_batch_size", str(profile.max_batch_size), "--max_num_tokens", str(profile.max_num_tokens),
            "--max_seq_len", str(profile.max_seq_len),
            "--kv_cache_free_gpu_memory_fraction", str(profile.kv_cache_free_gpu_memory_fraction),
            "--trust_remote_code", "--extra_llm_api_options", f"{BUNDLE}/{YAML_NAME}", "--log_level", "info"]
    return argv + (["--enable_chunked_prefill"] if profile.enable_chunked_prefill else [])


def build_argv(profile: Profile, checkpoint_dir: str) -> list[str]:
    """trtllm-build for a converted TensorRT-LLM checkpoint (tp/pp come from the checkpoint's mapping), with the
    profile's model class (the pin's MODEL_MAP has no Hunyuan; `pipeline.support` refuses a profile without)."""
    return ["trtllm-build", "--checkpoint_dir", checkpoint_dir, "--output_dir", ENGINE_DIR,
            "--model_cls_file", str(profile.model_cls_file), "--model_cls_name", str(profile.model_cls_name),
            "--max_batch_size", str(profile.max_batch_size), "--max_num_tokens", str(profile.max_num_tokens),
            "--max_seq_len", str(profile.max_seq_len), "--kv_cache_type", "paged",
            "--gpt_attention_plugin", "auto", "--gemm_plugin", "auto", "--moe_plugin", "auto",
            "--nccl_plugin", "auto", "--use_paged_context_fmha", "enable", "--remove_input_padding", "enable",
            "--workers", str(profile.num_gpus)]


def fill(argv: list[str], values: dict[str, str]) -> list[str]:
    """Replace {host}/{port}/{bundle}/{python} placeholders."""
    out = []
    for token in argv:
        for key, value in values.items():
            token = token.replace("{" + key + "}", value)
        out.append(token)
    return out
