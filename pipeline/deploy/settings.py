"""What a hardware profile means for a deployment: GPUs, node affinity, probe budget, storage, sizes, images.

Everything the Kubernetes overlays and the compose file take from a profile is derived here, in one place,
from `load_profile` + `make_plan`; the manifest writers only lay these numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline import __version__
from pipeline.memory_plan import make_plan
from pipeline.profiles import load_profile
from pipeline.trtllm import trtllm_version

# The TensorRT-LLM release the bundles target is also the GPU image's base (docker/Dockerfile FROM tag).
TRTLLM_VERSION = trtllm_version()
SMG_VERSION = "1.13.0"
REGISTRY = "localhost:5000"
NAMESPACE = "hunyuan-trt"
MODELS_MOUNT = "/models"

IMAGES = {
    "gpu": (f"{REGISTRY}/hunyuan-trt", f"{__version__}-trtllm{TRTLLM_VERSION}"),
    "cpu": (f"{REGISTRY}/hunyuan-trt-cpu", __version__),
    "gateway": (f"{REGISTRY}/hunyuan-trt-gateway", f"{__version__}-smg{SMG_VERSION}"),
}

STARTUP_PERIOD_S = 10
STARTUP_MARGIN = 2.0  # budget = margin x the planner's estimate: storage and autotuning vary a lot
SCALE_UP_LIMIT = 2  # autoscaling may grow to this multiple of the profile's replicas


@dataclass(frozen=True)
class PodSizing:
    """Host resources of one model-server pod and of the model-prep Job, per backend family."""

    image: str  # key of IMAGES
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


GPU_POD = PodSizing(image="gpu", cpu_per_gpu=8, memory_gib_per_gpu=64, min_cpu=8, min_memory_gib=64, shm_gib=20,
                    min_startup_s=600, cache_access_mode="ReadWriteMany", cache_headroom_gib=20,
                    prep_cpu=4, prep_memory_gib=16)
# The CPU stand-in serves a tiny checkpoint; RWO works on single-node test clusters (kind, minikube).
CPU_POD = PodSizing(image="cpu", cpu_per_gpu=0, memory_gib_per_gpu=0, min_cpu=1, min_memory_gib=2, shm_gib=1,
                    min_startup_s=120, cache_access_mode="ReadWriteOnce", cache_headroom_gib=1,
                    prep_cpu=1, prep_memory_gib=2)
SIZING = {"pytorch": GPU_POD, "tensorrt": GPU_POD, "cpu": CPU_POD}


@dataclass(frozen=True)
class Deployment:
    """One profile's deployment numbers (see the module docstring)."""

    profile: str
    description: str
    backend: str
    accelerator: str
    gpus_per_replica: int  # 0 on the CPU backend: its "GPUs" are simulated ranks on host cores
    gpu_product: str | None  # nvidia.com/gpu.product node label
    replicas: int
    model_repo: str
    served_model_name: str
    checkpoint_gb: float
    startup_estimate_s: int
    startup_failure_threshold: int
    cpu_request: int
    memory_request_gib: int
    shm_gib: int
    cache_gib: int
    cache_access_mode: str
    sizing: PodSizing

    @property
    def startup_budget_s(self) -> int:
        return self.startup_failure_threshold * STARTUP_PERIOD_S

    @property
    def memory_limit_gib(self) -> int:
        """Memory-backed /dev/shm counts against the pod's memory, so the limit adds it on top."""
        return self.memory_request_gib + self.shm_gib

    @property
    def model_dir(self) -> str:
        return f"{MODELS_MOUNT}/hf/{self.model_repo}"

    @property
    def checkpoint_dir(self) -> str:
        return f"{MODELS_MOUNT}/checkpoints/{self.profile}"

    @property
    def bundle_dir(self) -> str:
        return f"{MODELS_MOUNT}/bundles/{self.profile}"

    @property
    def image(self) -> tuple[str, str]:
        return IMAGES[self.sizing.image]


def startup_failure_threshold(estimate_s: int, sizing: PodSizing) -> int:
    budget = max(sizing.min_startup_s, STARTUP_MARGIN * estimate_s)
    return math.ceil(budget / STARTUP_PERIOD_S)


def deployment_for(name: str) -> Deployment:
    """Load and plan profile `name` and derive its deployment numbers."""
    profile, spec = load_profile(name)
    plan = make_plan(name, profile, spec)
    sizing = SIZING[profile.backend]
    gpus = profile.num_gpus if profile.gpu.k8s_product else 0
    copies = 2 if profile.backend == "tensorrt" else 1  # the converted checkpoint sits next to the HF one
    return Deployment(
        profile=name,
        description=profile.description,
        backend=profile.backend,
        accelerator=profile.accelerator,
        gpus_per_replica=gpus,
        gpu_product=profile.gpu.k8s_product,
        replicas=profile.replicas,
        model_repo=profile.model_repo,
        served_model_name=profile.served_model_name,
        checkpoint_gb=plan.checkpoint_gb,
        startup_estimate_s=plan.startup_estimate_s,
        startup_failure_threshold=startup_failure_threshold(plan.startup_estimate_s, sizing),
        cpu_request=max(sizing.min_cpu, sizing.cpu_per_gpu * gpus),
        memory_request_gib=max(sizing.min_memory_gib, sizing.memory_gib_per_gpu * gpus),
        shm_gib=sizing.shm_gib,
        cache_gib=math.ceil(plan.checkpoint_gb * 1e9 / 2**30 * copies) + sizing.cache_headroom_gib,
        cache_access_mode=sizing.cache_access_mode,
        sizing=sizing,
    )
