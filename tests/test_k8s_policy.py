"""Policy checks over every rendered overlay, and each check shown to fail on a manifest that breaks it."""

from __future__ import annotations

import copy

import pytest
import yaml

from pipeline.deploy.policy import GATEWAY, MODEL, POLICIES, violations
from pipeline.deploy.render import K8S_ROOT
from pipeline.deploy.settings import deployment_for
from pipeline.profiles import profile_names


def rendered(name: str) -> list[dict]:
    return list(yaml.safe_load_all((K8S_ROOT / "rendered" / f"{name}.yaml").read_text()))


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


def _set(node: dict, key, value):
    node[key] = value


def _env(container, name, **fields):
    container["env"] = [e for e in container["env"] if e["name"] != name] + [{"name": name, **fields}]


# (policy, profile, how the manifest is broken)
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
]


@pytest.mark.parametrize("name", profile_names())
def test_every_overlay_meets_every_policy(name):
    assert violations(rendered(name), deployment_for(name)) == []


@pytest.mark.parametrize("policy, profile, breaker", BREAKERS,
                         ids=[f"{policy}-{i}" for i, (policy, _, _) in enumerate(BREAKERS)])
def test_each_policy_fails_on_a_manifest_that_breaks_it(policy, profile, breaker):
    docs = copy.deepcopy(rendered(profile))
    d = deployment_for(profile)
    assert POLICIES[policy](docs, d) == []
    breaker(docs)
    assert POLICIES[policy](docs, d), f"{policy} accepted a broken manifest"


def test_every_policy_has_a_breaker():
    assert {policy for policy, _, _ in BREAKERS} == set(POLICIES)


def test_policy_labels_match_the_rendered_workloads():
    docs = rendered("cpu-tiny")
    assert find(docs, "Deployment", "hunyuan-trt-model")["metadata"]["labels"].items() >= MODEL.items()
    assert find(docs, "Deployment", "hunyuan-trt-gateway")["spec"]["template"]["metadata"]["labels"].items() \
        >= GATEWAY.items()
