"""The files of `k8s/overlays/<profile>/`: a kustomization that composes base + components, and the
component `profile/` whose patches carry the profile's numbers (see `pipeline.deploy.settings`). The
patches sit in a component so that they apply before the shared `images` component, which maps the
placeholder image names they choose. Pure: returns {relative file name: text}.
"""

from __future__ import annotations

import yaml

from pipeline.deploy.prep import prep_containers
from pipeline.deploy.settings import (
    DRAIN_TIMEOUT_S,
    MODELS_MOUNT,
    NAMESPACE,
    PREP_TTL_S,
    SCALE_UP_LIMIT,
    STARTUP_MARGIN,
    STARTUP_PERIOD_S,
    Deployment,
)
from pipeline.gateway import smg_args

MODEL_LABELS = {"app.kubernetes.io/name": "hunyuan-trt", "app.kubernetes.io/component": "model-server"}
SERVER_PORT = 8080  # the adapter: the only port the gateway talks to
BACKEND_PORT = 8000  # trtllm-serve (or the CPU stand-in) inside the pod
COMPONENTS = {
    "gpu": ("gpu", "monitoring", "autoscaling"),
    "cpu": ("monitoring", "autoscaling"),
}
PROFILE_COMPONENT = "profile"  # the overlay's own component (its patches)
IMAGES_COMPONENT = "images"  # applied last: placeholder image names -> registry/name:tag
RESTRICTED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


class _Dumper(yaml.SafeDumper):
    """Indents list items under their key, like the hand-written base (and yamllint's default)."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def dump(*documents: dict, header: str = "") -> str:
    body = "---\n".join(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=80) for doc in documents)
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + body


def _quantities(d: Deployment) -> dict:
    gpus = {"nvidia.com/gpu": str(d.gpus_per_replica)} if d.gpus_per_replica else {}
    return {"requests": {"cpu": str(d.cpu_request), "memory": f"{d.memory_request_gib}Gi", **gpus},
            "limits": {"memory": f"{d.memory_limit_gib}Gi", **gpus}}


def _gpu_affinity(d: Deployment) -> dict:
    if not d.gpu_product:
        return {}
    term = {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": [d.gpu_product]}]}
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term]}}}}


def model_server_patch(d: Deployment) -> dict:
    wait = (f"until [ -f {d.bundle_dir}/bundle.json ]; do echo 'waiting for {d.bundle_dir}/bundle.json "
            "(written by job/hunyuan-trt-model-prep)'; sleep 10; done")
    server = {
        "name": "server",
        "image": d.image,
        "args": ["serve", "--bundle", d.bundle_dir, "--host", "0.0.0.0", "--port", str(SERVER_PORT),
                 "--backend-port", str(BACKEND_PORT), "--ready-timeout", str(d.ready_timeout_s),
                 "--drain-timeout", str(DRAIN_TIMEOUT_S)],
        "resources": _quantities(d),
        # every probe on the engine's health path (the adapter passes it through, 503 until the engine is up)
        "startupProbe": {"httpGet": {"path": d.health_path}, "failureThreshold": d.startup_failure_threshold},
        "livenessProbe": {"httpGet": {"path": d.health_path}},
        "readinessProbe": {"httpGet": {"path": d.health_path}},
    }
    pod = {**_gpu_affinity(d),
           "initContainers": [{"name": "wait-for-bundle", "image": d.image, "args": [wait]}],
           "containers": [server],
           "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{d.shm_gib}Gi"}}]}
    # no `replicas`: the autoscaling component's ScaledObject owns the count (minReplicaCount = d.replicas)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hunyuan-trt-model"},
            "spec": {"template": {"spec": pod}}}


def model_prep_patch(d: Deployment) -> dict:
    sizing = d.sizing
    resources = {"requests": {"cpu": str(sizing.prep_cpu), "memory": f"{sizing.prep_memory_gib}Gi"},
                 "limits": {"memory": f"{sizing.prep_memory_gib}Gi"}}
    mounts = [{"name": "model-cache", "mountPath": MODELS_MOUNT}, {"name": "tmp", "mountPath": "/tmp"}]
    env = [{"name": "HF_HOME", "value": f"{MODELS_MOUNT}/hf-home"}, {"name": "HOME", "value": "/tmp"}]
    *steps, last = prep_containers(d)
    init = [{**step, "image": d.image, "env": env + step.get("env", []), "resources": resources,
             "securityContext": RESTRICTED, "volumeMounts": mounts} for step in steps]
    final = {"name": "build", "image": d.image, "command": last["command"], "resources": resources}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "hunyuan-trt-model-prep"},
            "spec": {"ttlSecondsAfterFinished": PREP_TTL_S,
                     "template": {"spec": {"initContainers": init, "containers": [final]}}}}


def model_cache_patch(d: Deployment) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "hunyuan-trt-model-cache"},
            "spec": {"accessModes": [d.cache_access_mode], "resources": {"requests": {"storage": f"{d.cache_gib}Gi"}}}}


PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
QUEUE_THRESHOLD = "4"  # waiting requests per replica (the autoscaling component says why)
# The queue-depth query per engine: the engine's own gauge, except TensorRT-LLM 1.2.1, which exports none; there
# the rate of its queue-time histogram's sum is the mean number waiting (Little's law; k8s/components/autoscaling).
QUEUE_QUERIES = {"trtllm": 'sum(rate(request_queue_time_seconds_sum{{namespace="{namespace}"}}[2m]))'}
GAUGE_QUERY = 'sum({metric}{{namespace="{namespace}"}})'


def queue_query(d: Deployment) -> str:
    return QUEUE_QUERIES.get(d.engine, GAUGE_QUERY).format(metric=d.queue_metric, namespace=NAMESPACE)


def autoscaling_patch(d: Deployment) -> dict:
    """Replica range around the profile's count; scale-down waits longer than a cold start; the trigger reads the
    engine's queue depth."""
    window = max(600, d.startup_budget_s)
    trigger = {"type": "prometheus", "metricType": "AverageValue",
               "metadata": {"serverAddress": PROMETHEUS, "query": queue_query(d), "threshold": QUEUE_THRESHOLD,
                            "ignoreNullValues": "false"}}
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "hunyuan-trt-model"},
            "spec": {"minReplicaCount": d.replicas, "maxReplicaCount": d.replicas * SCALE_UP_LIMIT,
                     "fallback": {"replicas": d.replicas}, "triggers": [trigger],
                     "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                         "scaleDown": {"stabilizationWindowSeconds": window}}}}}}


def monitors_patch(d: Deployment) -> dict:
    """Prometheus scrapes the engine's metrics path on the adapter port (the adapter passes it through)."""
    endpoint = {"port": "http", "path": d.metrics_path, "interval": "15s"}
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "hunyuan-trt-model"},
            "spec": {"podMetricsEndpoints": [endpoint]}}


GATEWAY_PORTS = {"--port": "30000", "--health-check-port": "30001", "--prometheus-port": "29000"}


def discovery_gateway_args() -> list[str]:
    """`smg launch` flags: Kubernetes discovery of the model pods plus the team's tuned GATEWAY_FLAGS table."""
    discovery = ["--service-discovery", "--selector", *(f"{k}={v}" for k, v in MODEL_LABELS.items()),
                 "--service-discovery-port", str(SERVER_PORT), "--service-discovery-namespace", "$(POD_NAMESPACE)"]
    return smg_args("0.0.0.0", GATEWAY_PORTS, discovery)


def gateway_patch(d: Deployment) -> dict:
    container = {"name": "smg", "args": discovery_gateway_args()}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hunyuan-trt-gateway"},
            "spec": {"template": {"spec": {"containers": [container]}}}}


PATCHES = {
    "gateway.yaml": gateway_patch,
    "model-server.yaml": model_server_patch,
    "model-prep.yaml": model_prep_patch,
    "model-cache.yaml": model_cache_patch,
    "autoscaling.yaml": autoscaling_patch,
    "monitors.yaml": monitors_patch,
}


def _header(d: Deployment) -> str:
    gpus = (f"{d.gpus_per_replica} x {d.gpu_product} per replica x {d.replicas} replicas = "
            f"{d.gpus_per_replica * d.replicas} GPUs" if d.gpus_per_replica else
            f"CPU backend, no GPUs; {d.replicas} replicas")
    return "\n".join([
        f"{d.name}: {d.description}",
        f"Served by {d.engine_label}.",
        f"{gpus};",
        "one replica = one node (TensorRT-LLM's Hunyuan model is single-node); scale out with replicas.",
        f"Checkpoint {d.checkpoint_gb:.1f} GB -> model cache {d.cache_gib} GiB ({d.cache_access_mode}).",
        f"Load estimate {d.startup_estimate_s} s ({d.checkpoint_gb:.1f} GB at {d.storage_mb_per_s:g} MB/s"
        f"{' + autotuning' if d.gpus_per_replica else ''}) x {STARTUP_MARGIN:g}",
        f"-> startupProbe {d.startup_failure_threshold} x {STARTUP_PERIOD_S} s = {d.startup_budget_s} s; "
        f"serve --ready-timeout {d.ready_timeout_s} s.",
        f"Weights: {d.model_repo} at " + (f"revision {d.revision}." if d.revision else "no pinned revision yet."),
        f"Generated by `hunyuan-trt render k8s --profile {d.profile} --engine {d.engine}`; do not edit by hand.",
    ])


def kustomization(d: Deployment, k8s_root: str) -> dict:
    family = "gpu" if d.gpus_per_replica else "cpu"
    shared = [f"{k8s_root}/components/{name}" for name in COMPONENTS[family]]
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": [f"{k8s_root}/base"],
        "components": [*shared, PROFILE_COMPONENT, f"{k8s_root}/components/{IMAGES_COMPONENT}"],
        "labels": [{"pairs": {"hunyuan-trt/profile": d.profile, "hunyuan-trt/engine": d.engine}, "includeSelectors": False,
                    "includeTemplates": True}],
    }


def profile_component() -> dict:
    return {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component",
            "patches": [{"path": name} for name in PATCHES]}


def overlay_files(d: Deployment, k8s_root: str = "../..") -> dict[str, str]:
    """`k8s_root`: the k8s/ folder (holding base/ and components/) relative to the overlay directory."""
    files = {"kustomization.yaml": dump(kustomization(d, k8s_root), header=_header(d)),
             f"{PROFILE_COMPONENT}/kustomization.yaml": dump(profile_component())}
    files.update({f"{PROFILE_COMPONENT}/{name}": dump(build(d)) for name, build in PATCHES.items()})
    return files
