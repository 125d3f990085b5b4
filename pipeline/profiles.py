"""Hardware profiles: YAML files in engine_configs/, merged through `extends:`, validated by pydantic.

A profile names the accelerator, the parallel layout, the runtime limits and the checkpoint flavour of one
serving replica. Unknown keys are errors with a did-you-mean; cross-field rules carry their reasons.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from pipeline.errors import PipelineError, did_you_mean
from pipeline.hardware import ACCELERATORS
from pipeline.model import A13B_CONFIG, SERVED_MODEL_NAME, TINY_MODEL_DIR, ModelSpec, load_spec
from pipeline.parallelism import layout_problems, model_problems
from pipeline.request_limits import DEFAULT_LIMITS
from pipeline.weights_formats import FORMATS
from pipeline.yaml_budget import load_yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
ABSTRACT_PROFILES = {"base"}  # building blocks that only other profiles extend

# Built-in model configs a profile may name in `hf_config`; anything else is a path.
MODEL_CONFIGS = {"a13b": A13B_CONFIG, "tiny": TINY_MODEL_DIR / "config.json"}

Weights = Literal[tuple(FORMATS)]
# one module each in pipeline/engines/ (its registry.ENGINES; a test keeps the two equal)
ENGINE_NAMES = ("trtllm", "vllm", "sglang")
EngineName = Literal[ENGINE_NAMES]
KvCacheDtype = Literal["auto", "bf16", "fp8"]


def profiles_dir() -> Path:
    """engine_configs/ of this checkout, or $HUNYUAN_TRT_PROFILES_DIR (set in the container images)."""
    return Path(os.environ.get("HUNYUAN_TRT_PROFILES_DIR", REPO_ROOT / "engine_configs"))


class Profile(BaseModel):
    """One serving replica on one node. Cross-field rules (checked in `_rules`):

    - tp_size * pp_size == num_gpus: every GPU of the replica holds one rank;
    - moe_tp_size * moe_ep_size == tp_size: TensorRT-LLM splits MoE over the same ranks as attention
      (`pipeline.parallelism`);
    - a KV cache in fp8 needs FP8 tensor cores (not A100); which weights formats load where is the support
      matrix's job (`pipeline.support`);
    - model_cls_file/model_cls_name only with backend tensorrt, both or neither;
    - max_num_tokens >= max_batch_size: each scheduled sequence needs at least one token of budget;
    - num_gpus <= GPUs per node of the accelerator: TensorRT-LLM's Hunyuan model is single-node;
    - backend cpu <=> accelerator cpu: the CPU stand-in only runs on the embedded default;
    - engine vllm/sglang only with backend pytorch (tensorrt and cpu are TensorRT-LLM's backends);
    - enable_attention_dp needs tp_size > 1;
    - every CUDA-graph batch size <= max_batch_size.
    Model-dependent rules (heads, experts, context) are in `check_against_model`.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    extends: str | None = Field(None, description="Profile this one builds on (resolved before validation)")
    description: str = Field(description="What this profile models, one line")
    accelerator: str = Field(description=f"One of: {', '.join(ACCELERATORS)}")
    num_gpus: PositiveInt = Field(description="GPUs per replica (all on one node)")
    engine: EngineName = Field("trtllm", description="Serving engine: " + ", ".join(ENGINE_NAMES)
                               + " (pipeline/engines/); backend is TensorRT-LLM's, vllm and sglang take pytorch")
    backend: Literal["pytorch", "tensorrt", "cpu"] = "pytorch"
    model_repo: str = Field(description="Hugging Face repo of the checkpoint the weights come from")
    revision: str | None = Field(None, pattern=r"^[0-9a-f]{40}$",
                                 description="Commit of model_repo that `download` fetches (40 hex digits); default: "
                                             "the commit pinned in pipeline/data/hf_revisions.json")
    hf_config: str = Field("a13b", description="Built-in config name (a13b, tiny) or a config.json path")
    weights: Weights = Field(description="Weights format of the served directory (pipeline/weights_formats.py): "
                                         + ", ".join(FORMATS))
    kv_cache_dtype: KvCacheDtype = "auto"
    tp_size: PositiveInt = 1
    pp_size: PositiveInt = 1
    moe_tp_size: PositiveInt = 1
    moe_ep_size: PositiveInt = 1
    enable_attention_dp: bool = False
    max_batch_size: PositiveInt = 128
    max_num_tokens: PositiveInt = 16384
    max_seq_len: PositiveInt = 32768
    max_position_embeddings: PositiveInt | None = Field(
        None, description="Serve a derived config.json with this max_position_embeddings (the pin has no override "
                          "key; `build` writes the derived directory); None: the model's own")
    kv_cache_free_gpu_memory_fraction: float = Field(0.9, gt=0, le=1)
    enable_block_reuse: bool = True
    enable_chunked_prefill: bool = True
    cuda_graph_batch_sizes: list[PositiveInt] = Field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64, 128])
    moe_backend: Literal["CUTLASS", "TRTLLM", "DEEPGEMM", "TRITON", "WIDEEP", "CUTEDSL", "VANILLA"] = "CUTLASS"
    model_cls_file: str | None = Field(None, description="backend tensorrt: Python file with the model class for "
                                                        "trtllm-build --model_cls_file")
    model_cls_name: str | None = Field(None, description="backend tensorrt: class name for --model_cls_name")
    served_model_name: str = SERVED_MODEL_NAME
    max_request_bytes: PositiveInt = Field(DEFAULT_LIMITS.max_request_bytes,
                                           description="Largest request body the adapter accepts (413 above)")
    max_n: PositiveInt = Field(DEFAULT_LIMITS.max_n, description="Most choices (`n`) per request")
    max_prompts: PositiveInt = Field(DEFAULT_LIMITS.max_prompts, description="Most prompts per /v1/completions call")
    max_stop: PositiveInt = Field(DEFAULT_LIMITS.max_stop, description="Most stop strings per request")
    replicas: PositiveInt = Field(2, description="Serving replicas behind the gateway (Kubernetes, compose)")
    revision: str | None = Field(None, pattern=r"^[0-9a-f]{40}$",
                                 description="Hugging Face commit of model_repo to download (40 hex digits); "
                                             "unset: not pinned yet")
    storage_mb_per_s: float = Field(200.0, gt=0, description="Read speed of the model-cache volume in MB/s; "
                                                              "sizes the startup budget of the model pods")
    hardware_validated: bool = Field(False, description="True only once this exact combination ran on real hardware")
    evidence: str = Field("", description="What suggests the combination works")

    @model_validator(mode="after")
    def _rules(self) -> Profile:
        if self.accelerator not in ACCELERATORS:
            raise ValueError(f"accelerator: unknown '{self.accelerator}'{did_you_mean(self.accelerator, ACCELERATORS)}; "
                             f"expected one of {', '.join(ACCELERATORS)}")
        accelerator = ACCELERATORS[self.accelerator]
        rules = [
            (self.tp_size * self.pp_size == self.num_gpus,
             f"tp_size * pp_size must equal num_gpus (every GPU holds one rank); got tp_size={self.tp_size}, "
             f"pp_size={self.pp_size}, num_gpus={self.num_gpus}"),
            (accelerator.has_fp8 or self.kv_cache_dtype != "fp8",
             f"kv_cache_dtype=fp8 needs FP8 tensor cores, which {self.accelerator} lacks; use auto (bf16)"),
            (self.max_num_tokens >= self.max_batch_size,
             f"max_num_tokens ({self.max_num_tokens}) must be >= max_batch_size ({self.max_batch_size}): "
             "each scheduled sequence needs at least one token of the step budget"),
            (self.num_gpus <= accelerator.max_per_node,
             f"num_gpus={self.num_gpus} exceeds {accelerator.max_per_node} GPUs per node; one replica must fit one "
             "node (TensorRT-LLM's Hunyuan model is single-node): scale out with more replicas instead"),
            ((self.backend == "cpu") == (self.accelerator == "cpu"),
             f"backend={self.backend} does not match accelerator={self.accelerator}: backend cpu runs only on "
             "accelerator cpu, and GPUs need backend pytorch or tensorrt"),
            (self.engine == "trtllm" or self.backend == "pytorch",
             f"engine={self.engine} needs backend pytorch (the default): backend {self.backend} is TensorRT-LLM's "
             "(tensorrt) or the CPU stand-in for trtllm-serve (cpu)"),
            (self.tp_size > 1 or not self.enable_attention_dp,
             "enable_attention_dp needs tp_size > 1 (attention runs data-parallel across the TP ranks)"),
            (self.backend == "tensorrt" or not (self.model_cls_file or self.model_cls_name),
             "model_cls_file/model_cls_name are for backend tensorrt (trtllm-build) only"),
            (bool(self.model_cls_file) == bool(self.model_cls_name),
             "model_cls_file and model_cls_name go together (trtllm-build needs the file and the class in it)"),
            (max(self.cuda_graph_batch_sizes, default=0) <= self.max_batch_size,
             f"cuda_graph_batch_sizes {self.cuda_graph_batch_sizes} has entries above max_batch_size "
             f"({self.max_batch_size}); graphs for larger batches are never used"),
        ]
        broken = [message for holds, message in rules if not holds]
        broken += layout_problems(self.tp_size, self.moe_tp_size, self.moe_ep_size)
        if broken:
            raise ValueError("; ".join(broken))
        return self

    @property
    def gpu(self):
        return ACCELERATORS[self.accelerator]

    @property
    def kv_dtype(self) -> str:
        """KV dtype after resolving 'auto' (the activation dtype, bf16)."""
        return "bf16" if self.kv_cache_dtype == "auto" else self.kv_cache_dtype

    @property
    def slug(self) -> str:
        """A name derived from the fields: <backend>-<gpu>x<n>-<weights>-tp<N>-ep<M>."""
        return (f"{self.backend}-{self.accelerator}x{self.num_gpus}-{self.weights}-kv{self.kv_dtype}"
                f"-tp{self.tp_size}-ep{self.moe_ep_size}")

    def served_positions(self, spec: ModelSpec) -> int:
        """max_position_embeddings of the served config.json (the derived one when the profile raises it)."""
        return self.max_position_embeddings or spec.max_position_embeddings

    def model_config_path(self) -> Path:
        builtin = MODEL_CONFIGS.get(self.hf_config)
        return builtin if builtin else Path(self.hf_config)


def check_against_model(profile: Profile, spec: ModelSpec) -> None:
    """Rules that need the model's numbers: the divisibility rules of `pipeline.parallelism`, and
    max_seq_len <= the served max_position_embeddings (TensorRT-LLM sizes its RoPE table from the config)."""
    broken = model_problems(spec, profile.tp_size, profile.moe_tp_size, profile.moe_ep_size, profile.pp_size)
    if profile.max_seq_len > profile.served_positions(spec):
        broken.append(f"max_seq_len={profile.max_seq_len} exceeds the served max_position_embeddings="
                      f"{profile.served_positions(spec)}; lower max_seq_len or raise the profile's "
                      "max_position_embeddings (build then serves a derived config.json)")
    if broken:
        raise PipelineError(f"profile does not fit the model: {'; '.join(broken)}")


def _read_yaml(path: Path) -> dict:
    data = load_yaml(path, "profile file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: expected a mapping of profile keys, got {type(data).__name__}")
    return data


def profile_path(name_or_path: str) -> Path:
    """A profile name from engine_configs/ or a path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not candidate.is_file():
            raise PipelineError(f"{candidate}: profile file not found")
        return candidate
    path = profiles_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        names = profile_names()
        raise PipelineError(f"unknown profile '{name_or_path}'{did_you_mean(name_or_path, names)}; "
                            f"available: {', '.join(names)}")
    return path


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def resolve_raw(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """Read a profile and everything it `extends`, later files winning."""
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(p.stem for p in (*chain, path))
        raise PipelineError(f"{path}: 'extends' forms a cycle: {cycle}")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise PipelineError(f"{path}: 'extends' must be a profile name or path, got {parent!r}")
    parent_path = path.parent / (parent if parent.endswith((".yaml", ".yml")) else f"{parent}.yaml")
    if not parent_path.is_file():
        raise PipelineError(f"{path}: extends '{parent}', but {parent_path} does not exist")
    return _deep_merge(resolve_raw(parent_path, (*chain, path)), data)


def _explain(error: ValidationError, source: str) -> str:
    """One line per pydantic error, with did-you-mean for unknown keys."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "profile"
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'{did_you_mean(key, Profile.model_fields)}")
        elif item["type"] == "missing":
            lines.append(f"missing required key '{key}'")
        elif item["type"].startswith("value_error") and not item["loc"]:
            lines.append(item["msg"].removeprefix("Value error, "))
        else:
            lines.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    return f"{source}: " + "; ".join(lines)


def build_profile(raw: dict, source: str = "profile") -> Profile:
    try:
        return Profile.model_validate(raw)
    except ValidationError as error:
        raise PipelineError(_explain(error, source)) from None


def load_profile(name_or_path: str, overrides: dict | None = None) -> tuple[Profile, ModelSpec]:
    """Resolve, override (flags win over YAML), validate, and check the profile against its model."""
    path = profile_path(name_or_path)
    raw = _deep_merge(resolve_raw(path), {k: v for k, v in (overrides or {}).items() if v is not None})
    profile = build_profile(raw, source=str(path))
    spec = load_spec(profile.model_config_path())
    check_against_model(profile, spec)
    return profile, spec


def profile_names() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml") if p.stem not in ABSTRACT_PROFILES)


def json_schema() -> dict:
    return Profile.model_json_schema()
