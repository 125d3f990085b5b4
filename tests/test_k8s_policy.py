"""Policy checks over every rendered overlay, and each check shown to fail on a manifest that breaks it."""

from __future__ import annotations

import copy
import os

import pytest
import yaml

from pipeline.deploy.policy import GATEWAY, MODEL, POLICIES, check_edge, edge_admits, violations
from pipeline.deploy.render import K8S_ROOT, deployments, golden_documents, kustomize
from pipeline.deploy.settings import deployment_for
from pipeline.drills.auth import CANDIDATE_OPEN, OPEN_ROUTES

DEPLOYMENTS = {d.name: d for d in deployments()}  # every profile on every engine it fits



def find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def pod(docs, name="hunyuan-trt-model"):
    return find(docs, "Deployment", name)["spec"]["template"]["spec"]


def server(docs):
    return pod(docs)["containers"][0]


def gateway(docs):
    return pod(docs, "hunyuan-trt-gateway")["containers"][0]


def model_policy(docs):
    return find(docs, "NetworkPolicy", "hunyuan-trt-model-ingress")


def _set(node, key, value):
    node[key] = value


def _env(container, name, **fields):
    container["env"] = [e for e in container["env"] if e["name"] != name] + [{"name": name, **fields}]


def monitor(docs):
    return find(docs, "PodMonitor", "hunyuan-trt-model")["spec"]["podMetricsEndpoints"]


# (policy, overlay, how the manifest is broken)
BREAKERS = [
    ("gpu-requests", "h200x2", lambda docs: _set(server(docs)["resources"]["limits"], "nvidia.com/gpu", "1")),
    ("gpu-requests", "h200x2", lambda docs: server(docs)["resources"]["requests"].pop("nvidia.com/gpu")),
    ("gpu-requests", "h200x2", lambda docs: _set(gateway(docs)["resources"]["limits"], "nvidia.com/gpu", "1")),
    ("gpu-requests", "cpu-tiny", lambda docs: _set(server(docs)["resources"], "limits",
                                                    {"memory": "3Gi", "nvidia.com/gpu": "2"})),
    ("probes", "h200x2", lambda docs: server(docs).pop("startupProbe")),
    ("probes", "h200x2", lambda docs: _set(server(docs)["livenessProbe"]["httpGet"], "path", "/v1/models")),
    ("probes", "cpu-tiny", lambda docs: gateway(docs).pop("readinessProbe")),
    ("probe-budget", "h200x2", lambda docs: _set(server(docs)["startupProbe"], "failureThreshold", 1)),
    ("probe-budget", "h100x2", lambda docs: _set(server(docs)["startupProbe"], "periodSeconds", 1)),
    ("shm", "h200x2", lambda docs: pod(docs)["volumes"][0]["emptyDir"].pop("medium")),
    ("shm", "h200x2", lambda docs: _set(server(docs), "volumeMounts",
                                        [m for m in server(docs)["volumeMounts"] if m["name"] != "dshm"])),
    ("image-tags", "h200x2", lambda docs: _set(gateway(docs), "image", "localhost:5000/hunyuan-trt-gateway:latest")),
    ("image-tags", "cpu-tiny", lambda docs: _set(pod(docs)["initContainers"][0], "image", "localhost:5000/x")),
    ("resources", "h200x2", lambda docs: server(docs)["resources"]["requests"].pop("cpu")),
    ("resources", "h200x2", lambda docs: pod(docs)["initContainers"][0]["resources"].pop("limits")),
    ("gateway-api-key", "h200x2", lambda docs: _env(gateway(docs), "HUNYUAN_TRT_API_KEY", value="hunter2")),
    ("gateway-api-key", "h200x2", lambda docs: _env(gateway(docs), "HUNYUAN_TRT_API_KEY", valueFrom={
        "secretKeyRef": {"name": "hunyuan-trt-api-key", "key": "api-key", "optional": True}})),
    ("gateway-api-key", "h200x2", lambda docs: _set(gateway(docs), "command", ["smg"])),
    ("gateway-api-key", "cpu-tiny", lambda docs: gateway(docs)["args"].append("--api-key=hunter2")),
    ("gateway-api-key", "h200x2", lambda docs: find(docs, "CronJob", "hunyuan-trt-smoke")["spec"]["jobTemplate"][
        "spec"]["template"]["spec"]["containers"][0]["args"].append("--api-key=$(HUNYUAN_TRT_API_KEY)")),
    ("network-policy", "h200x2", lambda docs: model_policy(docs)["spec"]["ingress"].append({})),
    ("network-policy", "h200x2", lambda docs: model_policy(docs)["spec"]["ingress"][0]["from"].append(
        {"namespaceSelector": {}})),
    ("network-policy", "h200x2", lambda docs: model_policy(docs)["spec"]["ingress"][0]["from"].append(
        {"ipBlock": {"cidr": "0.0.0.0/0"}})),
    ("network-policy", "h200x2", lambda docs: model_policy(docs)["spec"]["ingress"][0]["ports"].append({"port": 8000})),
    ("network-policy", "h200x2", lambda docs: docs.remove(model_policy(docs))),
    ("network-policy", "cpu-tiny", lambda docs: model_policy(docs)["spec"].pop("policyTypes")),
    ("gateway-rbac", "h200x2", lambda docs: find(docs, "Role", "hunyuan-trt-gateway-discovery")["rules"].append(
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})),
    ("gateway-rbac", "h200x2", lambda docs: _set(find(docs, "Role", "hunyuan-trt-gateway-discovery")["rules"][0],
                                                 "verbs", ["get"])),
    ("gateway-rbac", "cpu-tiny", lambda docs: _set(find(docs, "RoleBinding", "hunyuan-trt-gateway-discovery"),
                                                   "kind", "ClusterRoleBinding")),
    ("gpu-placement", "h200x2", lambda docs: pod(docs).pop("tolerations")),
    ("gpu-placement", "a100x2", lambda docs: _set(pod(docs)["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0],
        "values", ["NVIDIA-H100-80GB-HBM3"])),
    ("server-env", "h200x2", lambda docs: _env(server(docs), "HF_HUB_OFFLINE", value="0")),
    ("server-env", "h200x2", lambda docs: _env(server(docs), "PMIX_HOSTNAME", value="hunyuan-trt-model-" + "x" * 40)),
    ("rollout", "h200x2", lambda docs: _set(find(docs, "Deployment", "hunyuan-trt-model")["spec"]["strategy"],
                                            "rollingUpdate", {"maxSurge": 1, "maxUnavailable": 0})),
    ("rollout", "h200x2", lambda docs: docs.remove(find(docs, "PodDisruptionBudget", "hunyuan-trt-model"))),
    ("security", "h200x2", lambda docs: pod(docs, "hunyuan-trt-gateway")["securityContext"].pop("runAsNonRoot")),
    ("security", "cpu-tiny", lambda docs: _set(pod(docs)["initContainers"][0]["securityContext"],
                                               "allowPrivilegeEscalation", True)),
    ("autoscaling", "h200x2", lambda docs: _set(find(docs, "ScaledObject", "hunyuan-trt-model")["spec"],
                                                "minReplicaCount", 0)),
    ("autoscaling", "h200x2", lambda docs: _set(find(docs, "ScaledObject", "hunyuan-trt-model")["spec"]["advanced"][
        "horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"], "stabilizationWindowSeconds", 0)),
    ("autoscaling", "h200x2", lambda docs: _set(trigger(docs), "query",
                                                'sum(trtllm_num_requests_waiting{namespace="hunyuan-trt"})')),
    ("autoscaling", "cpu-tiny", lambda docs: _set(trigger(docs), "query", "sum(rate(request_queue_time_seconds))")),
    ("autoscaling", "h200x2", lambda docs: _set(find(docs, "Deployment", "hunyuan-trt-model")["spec"], "replicas", 2)),
    ("disruption-budgets", "h200x2", lambda docs: find(docs, "PodDisruptionBudget", "hunyuan-trt-model")["spec"].pop(
        "unhealthyPodEvictionPolicy")),
    ("disruption-budgets", "cpu-tiny", lambda docs: _set(find(docs, "PodDisruptionBudget", "hunyuan-trt-gateway")[
        "spec"], "unhealthyPodEvictionPolicy", "IfHealthyBudget")),
    ("edge", "h200x2", lambda docs: ingress_paths(docs).append({**ingress_paths(docs)[0], "path": "/engine_metrics"})),
    ("edge", "h200x2", lambda docs: _set(ingress_paths(docs)[1], "pathType", "Prefix")),
    ("edge", "h200x2", lambda docs: _set(ingress_paths(docs)[0], "path", "/")),
    ("edge", "cpu-tiny", lambda docs: _set(find(docs, "Ingress", "hunyuan-trt")["spec"], "defaultBackend",
                                           ingress_paths(docs)[0]["backend"])),
    ("edge", "h200x2", lambda docs: _set(find(docs, "Service", "hunyuan-trt-gateway")["spec"], "type", "LoadBalancer")),
    ("edge", "h200x2", lambda docs: docs.remove(find(docs, "Ingress", "hunyuan-trt"))),
    ("pull-secrets", "h200x2", lambda docs: pod(docs, "hunyuan-trt-gateway").pop("imagePullSecrets")),
    ("pull-secrets", "cpu-tiny", lambda docs: find(docs, "CronJob", "hunyuan-trt-smoke")["spec"]["jobTemplate"]["spec"][
        "template"]["spec"].pop("imagePullSecrets")),
    ("revision", "h200x2", lambda docs: _set(prep_step(docs, "fetch")["command"],
                                             prep_step(docs, "fetch")["command"].index("--revision") + 1, "main")),
    ("revision", "h200x2", lambda docs: prep_step(docs, "fetch")["command"].remove("--revision")),
    ("quantize", "a100x2", lambda docs: prep_init(docs).remove(prep_step(docs, "quantize"))),
    ("quantize", "h100x2", lambda docs: _replace(prep_step(docs, "quantize")["command"], "--from-published",
                                                 "--format", "fp8")),
    ("quantize", "a100x2", lambda docs: _replace(prep_step(docs, "quantize")["command"], "int8-wo", "fp8")),
    ("quantize", "a100x2", lambda docs: _replace(prep_build(docs)["command"], "/models/quantized/a100x2",
                                                 "/models/hf/tencent/Hunyuan-A13B-Instruct")),
    ("quantize", "l40sx4", lambda docs: _replace(prep_step(docs, "quantize")["command"],
                                                 "/models/hf/tencent/Hunyuan-A13B-Instruct-FP8", "/models/other")),
    ("quantize", "h200x1", lambda docs: prep_init(docs).insert(0, prep_init(docs).pop(-1))),
    ("quantize", "h200x2", lambda docs: prep_init(docs).append(
        {**prep_step(docs, "inspect"), "name": "quantize", "command": [
            "quantize" if a == "inspect" else a for a in prep_step(docs, "inspect")["command"]]})),
    ("drain", "h200x2", lambda docs: server(docs).pop("lifecycle")),
    ("drain", "h200x2", lambda docs: _set(pod(docs), "terminationGracePeriodSeconds", 120)),
    ("drain", "cpu-tiny", lambda docs: _set(server(docs)["args"], server(docs)["args"].index("--ready-timeout") + 1,
                                            "120")),
    ("remote-code-cache", "h200x2", lambda docs: _set(server(docs), "env", [e for e in server(docs)["env"]
                                                                           if e["name"] != "HF_MODULES_CACHE"])),
    ("remote-code-cache", "cpu-tiny", lambda docs: _env(server(docs), "HF_MODULES_CACHE", value="/models/modules")),
    ("gateway-readiness", "h200x2", lambda docs: _set(gateway(docs)["readinessProbe"]["httpGet"], "path", "/readiness")),
    # the engine dimension: each engine's GPUs, shm, health path, queue gauge and metrics path
    ("gpu-requests", "a100x2-vllm", lambda docs: _set(server(docs)["resources"]["limits"], "nvidia.com/gpu", "1")),
    ("gpu-requests", "rtx4090x8-sglang", lambda docs: _set(server(docs)["resources"]["requests"], "nvidia.com/gpu",
                                                           "4")),
    ("shm", "h100x2-vllm", lambda docs: _set(pod(docs)["volumes"][0]["emptyDir"], "sizeLimit", "1Gi")),
    ("shm", "h200x1-sglang", lambda docs: pod(docs)["volumes"][0]["emptyDir"].pop("medium")),
    ("probes", "h200x2-vllm", lambda docs: _set(server(docs)["startupProbe"]["httpGet"], "path", "/v1/models")),
    ("probes", "h200x2-sglang", lambda docs: _set(server(docs)["readinessProbe"]["httpGet"], "path", "/ready")),
    ("autoscaling", "h200x2-vllm", lambda docs: _set(trigger(docs), "query",
                                                     'sum(rate(request_queue_time_seconds_sum{namespace="x"}[2m]))')),
    ("autoscaling", "a100x2-vllm", lambda docs: _set(trigger(docs), "query", 'sum(vllm:num_requests_running{a="b"})')),
    ("autoscaling", "h200x2-sglang", lambda docs: _set(trigger(docs), "query", 'sum(sglang:num_running_reqs{a="b"})')),
    ("autoscaling", "h200x2-sglang", lambda docs: _set(trigger(docs), "query", 'sum(vllm:num_requests_waiting{a="b"})')),
    ("metrics-scrape", "h200x2", lambda docs: _set(monitor(docs)[0], "path", "/metrics")),
    ("metrics-scrape", "a100x2-vllm", lambda docs: _set(monitor(docs)[0], "path", "/prometheus/metrics")),
    ("metrics-scrape", "h200x2-sglang", lambda docs: monitor(docs).append({**monitor(docs)[0], "path": "/x"})),
]


def trigger(docs):
    return find(docs, "ScaledObject", "hunyuan-trt-model")["spec"]["triggers"][0]["metadata"]


def ingress_paths(docs):
    return find(docs, "Ingress", "hunyuan-trt")["spec"]["rules"][0]["http"]["paths"]


def prep_init(docs):
    return find(docs, "Job", "hunyuan-trt-model-prep")["spec"]["template"]["spec"]["initContainers"]


def prep_build(docs):
    return find(docs, "Job", "hunyuan-trt-model-prep")["spec"]["template"]["spec"]["containers"][0]


def prep_step(docs, name):
    return next(c for c in prep_init(docs) if c["name"] == name)


def _replace(argv, old, *new):
    at = argv.index(old)
    argv[at:at + 1] = list(new)


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_every_overlay_meets_every_policy(name):
    assert violations(golden_documents(name), DEPLOYMENTS[name]) == []


def test_every_gpu_profile_is_rendered_on_every_engine_and_cpu_tiny_only_on_its_own():
    names = set(DEPLOYMENTS)
    gpu_profiles = {d.profile for d in DEPLOYMENTS.values() if d.gpus_per_replica}
    assert {f"{p}-{e}" for p in gpu_profiles for e in ("vllm", "sglang")} <= names
    assert not {n for n in names if n.startswith("cpu-tiny-")}
    assert {d.engine for d in DEPLOYMENTS.values()} == {"trtllm", "vllm", "sglang"}


@pytest.mark.parametrize("policy, profile, breaker", BREAKERS,
                         ids=[f"{policy}-{i}" for i, (policy, _, _) in enumerate(BREAKERS)])
def test_each_policy_fails_on_a_manifest_that_breaks_it(policy, profile, breaker):
    docs = copy.deepcopy(golden_documents(profile))
    d = DEPLOYMENTS[profile]
    assert POLICIES[policy](docs, d) == []
    breaker(docs)
    assert POLICIES[policy](docs, d), f"{policy} accepted a broken manifest"


def test_every_policy_has_a_breaker():
    assert {policy for policy, _, _ in BREAKERS} == set(POLICIES)


def test_policy_labels_match_the_rendered_workloads():
    docs = golden_documents("cpu-tiny")
    assert find(docs, "Deployment", "hunyuan-trt-model")["metadata"]["labels"].items() >= MODEL.items()
    assert find(docs, "Deployment", "hunyuan-trt-gateway")["spec"]["template"]["metadata"]["labels"].items() \
        >= GATEWAY.items()


def test_gateway_api_edge_passes_only_the_api(tmp_path):
    """The gateway-api component (not in any overlay by default) replaces the Ingress with an HTTPRoute that
    the edge policy accepts, and that policy refuses the HTTPRoute once it routes a path outside the list."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    relative = os.path.relpath(K8S_ROOT, overlay)
    overlay.joinpath("kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [f"{relative}/overlays/h200x2"], "components": [f"{relative}/components/gateway-api"]}))
    docs = list(yaml.safe_load_all(kustomize(overlay)))
    route = find(docs, "HTTPRoute", "hunyuan-trt")
    assert not [d for d in docs if d["kind"] == "Ingress"]
    assert check_edge(docs, deployment_for("h200x2")) == []
    assert_edge_keeps_smg_routes_inside(docs)
    route["spec"]["rules"][0]["matches"].append({"path": {"type": "PathPrefix", "value": "/"}})
    assert check_edge(docs, deployment_for("h200x2"))


def assert_edge_keeps_smg_routes_inside(docs):
    """The routes smg answers without a key that the auth drill marks edge-blocked, and every other route it
    probes outside /v1 and /health, do not pass the edge; the API and the liveness check do."""
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health"):
        assert edge_admits(docs, path), path
    blocked = [path for path, (public, _) in OPEN_ROUTES.items() if not public]
    blocked += [path for path in CANDIDATE_OPEN if not path.startswith("/v1/") and path != "/health"]
    blocked += ["/workers", "/generate", "/v10/x", "/healthz", "/health/x"]
    assert [path for path in blocked if edge_admits(docs, path)] == []


@pytest.mark.parametrize("name", ["h200x2", "cpu-tiny"])
def test_ingress_keeps_smg_routes_inside(name):
    assert_edge_keeps_smg_routes_inside(golden_documents(name))
