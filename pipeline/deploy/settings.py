"""What a hardware profile means for a deployment: GPUs, node affinity, probe budget, storage, sizes, images.

Everything the Kubernetes overlays and the compose file take from a profile is derived here, in one place,
from `load_profile` + `make_plan`; the manifest writers only lay these numbers out.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import yaml

from pipeline.download import estimated_gb, pinned_revision, quantize_step
from pipeline.drain import DRAIN_TIMEOUT_S, STOP_GRACE_S  # noqa: F401 - serve's defaults, re-exported
from pipeline.engines.facts import load_facts
from pipeline.engines.registry import ENGINES
from pipeline.errors import PipelineError
from pipeline.memory_plan import ENGINE_INIT_S, make_plan
from pipeline.profiles import REPO_ROOT, load_profile
from pipeline.trtllm import prometheus_metrics, trtllm_version

# The TensorRT-LLM release the bundles target is also the GPU image's base (docker/Dockerfile FROM tag).
TRTLLM_VERSION = trtllm_version()
SMG_VERSION = "1.13.0"
NAMESPACE = "hunyuan-trt"
MODELS_MOUNT = "/models"
IMAGES_COMPONENT = REPO_ROOT / "k8s" / "components" / "images" / "kustomization.yaml"
IMAGE_PLACEHOLDER = "hunyuan-trt-{}"  # gpu, vllm, sglang, cpu, gateway: what the manifests name, mapped by IMAGES_COMPONENT
PULL_SECRET = "hunyuan-trt-registry"  # optional image pull Secret on every pod


def _images() -> dict[str, tuple[str, str]]:
    """{gpu|vllm|sglang|cpu|gateway: (name, tag)} from the images component, the one place registry and tags are set."""
    entries = yaml.safe_load(IMAGES_COMPONENT.read_text())["images"]
    return {e["name"].removeprefix(IMAGE_PLACEHOLDER.format("")): (e["newName"], e["newTag"]) for e in entries}


IMAGES = _images()

STARTUP_PERIOD_S = 10
STARTUP_MARGIN = 2.0  # budget = margin x the load estimate: storage and autotuning vary a lot
READY_TIMEOUT_SHARE = 0.9  # serve's --ready-timeout: it gives up (one clear log line) before the probe kills it
PREP_TTL_S = 3600  # a finished prep Job stays an hour for its logs; a rerun skips an up-to-date bundle
SCALE_UP_LIMIT = 2  # autoscaling may grow to this multiple of the profile's replicas


@dataclass(frozen=True)
class PodSizing:
    """Host resources of one model-server pod and of the model-prep Job, per backend family."""

    image: str  # key of IMAGES
    entrypoint: tuple[str, ...]  # what the image's ENTRYPOINT runs before the CLI (kept when a step runs a shell)
    cpu_per_gpu: int
    memory_gib_per_gpu: int
    min_cpu: int
    min_memory_gib: int
    shm_gib: int
    min_startup_s: int  # floor for the startupProbe budget
    cache_access_mode: str
    cache_headroom_gib: int  # beyond the checkpoint: tokenizer, bundle, partial downloads
    prep_cpu: int
    prep_memory_gib: int


GPU_POD = PodSizing(image="gpu", entrypoint=("/opt/nvidia/nvidia_entrypoint.sh",), cpu_per_gpu=8, memory_gib_per_gpu=64, min_cpu=8, min_memory_gib=64, shm_gib=20,
                    min_startup_s=600, cache_access_mode="ReadWriteMany", cache_headroom_gib=20,
                    prep_cpu=4, prep_memory_gib=16)
# The CPU stand-in serves a tiny checkpoint; RWO works on single-node test clusters (kind, minikube).
CPU_POD = PodSizing(image="cpu", entrypoint=(), cpu_per_gpu=0, memory_gib_per_gpu=0, min_cpu=1, min_memory_gib=2, shm_gib=1,
                    min_startup_s=120, cache_access_mode="ReadWriteOnce", cache_headroom_gib=1,
                    prep_cpu=1, prep_memory_gib=2)
SIZING = {"pytorch": GPU_POD, "tensorrt": GPU_POD, "cpu": CPU_POD}
# vLLM and SGLang run from their own images (docker/Dockerfile.<engine>), whose ENTRYPOINT is the CLI itself;
# the TensorRT-LLM profiles keep their backend's sizing as it is.
ENGINE_IMAGES = {"vllm": "vllm", "sglang": "sglang"}


def engine_sizing(backend: str, engine: str) -> PodSizing:
    sizing = SIZING[backend]
    image = ENGINE_IMAGES.get(engine)
    return dataclasses.replace(sizing, image=image, entrypoint=()) if image else sizing


def exported_series(engine: str) -> tuple[str, ...]:
    """The Prometheus series the engine's pinned release exports (its facts file)."""
    return tuple(prometheus_metrics() if engine == "trtllm" else sorted(load_facts(engine)["metrics"]))


@dataclass(frozen=True)
class Deployment:
    """One profile's deployment numbers (see the module docstring)."""

    profile: str
    engine: str  # pipeline.engines.registry name
    name: str  # the overlay: the profile, or <profile>-<engine> for an engine other than the profile's own
    description: str
    backend: str
    engine_label: str  # "vLLM 0.34.0"
    health_path: str  # the engine's, passed through by the adapter
    metrics_path: str
    queue_metric: str
    series: tuple[str, ...]  # what the pinned engine exports (exported_series)
    accelerator: str
    gpus_per_replica: int  # 0 on the CPU backend: its "GPUs" are simulated ranks on host cores
    gpu_product: str | None  # nvidia.com/gpu.product node label
    replicas: int
    model_repo: str
    revision: str | None
    served_model_name: str
    checkpoint_gb: float
    storage_mb_per_s: float
    startup_estimate_s: int
    startup_failure_threshold: int
    cpu_request: int
    memory_request_gib: int
    shm_gib: int
    cache_gib: int
    cache_access_mode: str
    sizing: PodSizing
    quantize_args: tuple[str, ...] = ()  # the prep Job's `hunyuan-trt quantize` flags; () = served as downloaded

    @property
    def startup_budget_s(self) -> int:
        return self.startup_failure_threshold * STARTUP_PERIOD_S

    @property
    def ready_timeout_s(self) -> int:
        return int(self.startup_budget_s * READY_TIMEOUT_SHARE)

    @property
    def memory_limit_gib(self) -> int:
        """Memory-backed /dev/shm counts against the pod's memory, so the limit adds it on top."""
        return self.memory_request_gib + self.shm_gib

    @property
    def model_dir(self) -> str:
        return f"{MODELS_MOUNT}/hf/{self.model_repo}"

    @property
    def checkpoint_dir(self) -> str:
        return f"{MODELS_MOUNT}/checkpoints/{self.name}"

    @property
    def quantized_dir(self) -> str:
        return f"{MODELS_MOUNT}/quantized/{self.profile}"

    @property
    def served_model_dir(self) -> str:
        """What `build` reads: the quantize step's output when there is one, else the download."""
        return self.quantized_dir if self.quantize_args else self.model_dir

    @property
    def bundle_dir(self) -> str:
        return f"{MODELS_MOUNT}/bundles/{self.name}"

    @property
    def image(self) -> str:
        """The placeholder image name of the model server and prep containers (IMAGES_COMPONENT maps it)."""
        return IMAGE_PLACEHOLDER.format(self.sizing.image)


def startup_failure_threshold(estimate_s: int, sizing: PodSizing) -> int:
    budget = max(sizing.min_startup_s, STARTUP_MARGIN * estimate_s)
    return math.ceil(budget / STARTUP_PERIOD_S)


def startup_estimate_s(checkpoint_gb: float, storage_mb_per_s: float, gpu: bool) -> int:
    """Reading the checkpoint at the volume's speed, plus autotuning and CUDA-graph capture on GPUs."""
    return int(checkpoint_gb * 1000 / storage_mb_per_s + ENGINE_INIT_S * gpu)


def deployment_for(name: str, engine: str | None = None) -> Deployment:
    """Load and plan profile `name` served by `engine` (default: the profile's own) and derive its deployment
    numbers; the engine's checkpoint (weights, repo) is what the plan counts and the prep Job fetches."""
    written, spec = load_profile(name, {"engine": engine} if engine else None)
    server = ENGINES[written.engine]
    profile = server.served_profile(written)
    server.require_loads(name, profile)
    plan = make_plan(name, profile, spec)
    sizing = engine_sizing(profile.backend, server.name)
    gpus = profile.num_gpus if profile.gpu.k8s_product else 0
    step = quantize_step(profile)
    if step and step.needs_gpu:
        raise PipelineError(f"{name}: model_repo {profile.model_repo} needs `hunyuan-trt quantize "
                            f"{' '.join(step.args)}`, which calibrates on GPUs; the model-prep Job has none: "
                            "quantize on a GPU host, or set model_repo to a checkpoint the Job converts on CPU")
    # the quantized or converted checkpoint sits next to the downloaded one
    second_copy_gb = plan.checkpoint_gb if step or profile.backend == "tensorrt" else 0.0
    stored_gb = estimated_gb(name, profile, spec) + second_copy_gb
    estimate = startup_estimate_s(plan.checkpoint_gb, profile.storage_mb_per_s, profile.backend != "cpu")
    default_engine, _ = load_profile(name)
    return Deployment(
        profile=name,
        engine=server.name,
        name=name if server.name == default_engine.engine else f"{name}-{server.name}",
        description=profile.description,
        backend=profile.backend,
        engine_label=server.label(),
        health_path=server.health_path,
        metrics_path=server.metrics_path,
        queue_metric=server.queue_metric,
        series=exported_series(server.name),
        accelerator=profile.accelerator,
        gpus_per_replica=gpus,
        gpu_product=profile.gpu.k8s_product,
        replicas=profile.replicas,
        model_repo=profile.model_repo,
        revision=pinned_revision(profile),
        served_model_name=profile.served_model_name,
        checkpoint_gb=plan.checkpoint_gb,
        storage_mb_per_s=profile.storage_mb_per_s,
        startup_estimate_s=estimate,
        startup_failure_threshold=startup_failure_threshold(estimate, sizing),
        cpu_request=max(sizing.min_cpu, sizing.cpu_per_gpu * gpus),
        memory_request_gib=max(sizing.min_memory_gib, sizing.memory_gib_per_gpu * gpus),
        shm_gib=sizing.shm_gib,
        cache_gib=math.ceil(stored_gb * 1e9 / 2**30) + sizing.cache_headroom_gib,
        cache_access_mode=sizing.cache_access_mode,
        sizing=sizing,
        quantize_args=step.args if step else (),
    )
