"""Policies every rendered deployment must meet, as small checks over the `kubectl kustomize` output.

Each check takes the rendered documents and the profile's `Deployment` numbers and returns the violations
(empty = pass). `POLICIES` is the table the tests and `hunyuan-trt render all --check` run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipeline.deploy.prep import CLI
from pipeline.deploy.settings import PULL_SECRET, STOP_GRACE_S, Deployment
from pipeline.gateway import API_KEY_ENV

MODEL = {"app.kubernetes.io/name": "hunyuan-trt", "app.kubernetes.io/component": "model-server"}
GATEWAY = {"app.kubernetes.io/name": "hunyuan-trt", "app.kubernetes.io/component": "gateway"}
SCRAPER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
           "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
GPU = "nvidia.com/gpu"
MIN_PROBE_MARGIN = 1.5  # startupProbe budget >= this x the planner's load estimate
PMIX_MAX_BYTES = 49  # Open MPI 5's PMIx singleton id buffer is 50 bytes with the terminator
LAUNCHER = ["python", "-m", "pipeline.gateway"]
GATEWAY_SERVICE = "hunyuan-trt-gateway"
PREP_JOB = "hunyuan-trt-model-prep"
# What the public edge may pass to smg: the OpenAI API and the liveness check (smg serves far more).
EDGE_ALLOWED = {("Prefix", "/v1"), ("Exact", "/health")}
GATEWAY_API_PATH_TYPES = {"PathPrefix": "Prefix", "Exact": "Exact"}
HISTOGRAM_SERIES = re.compile(r"\b([a-z_:][a-z0-9_:]*?)(?:_sum|_count|_bucket)?\b(?=\s*[{\[])")


def pod_specs(docs: list[dict]) -> Iterator[tuple[dict, dict]]:
    """(workload document, pod spec) for Deployments, Jobs and CronJobs."""
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" in spec:
            yield doc, spec["template"]["spec"]


def containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod.get("containers", [])


def _workload(docs: list[dict], labels: dict) -> tuple[dict, dict]:
    for doc, pod in pod_specs(docs):
        if doc["kind"] == "Deployment" and labels.items() <= doc["metadata"].get("labels", {}).items():
            return doc, pod
    raise LookupError(f"no Deployment labelled {labels}")


def _server(docs: list[dict]) -> tuple[dict, dict, dict]:
    doc, pod = _workload(docs, MODEL)
    return doc, pod, next(c for c in pod["containers"] if c["name"] == "server")


def check_gpu_requests(docs, d: Deployment) -> list[str]:
    """The model server requests exactly the profile's GPUs (requests = limits); nothing else asks for GPUs."""
    expected = str(d.gpus_per_replica) if d.gpus_per_replica else None
    _, _, server = _server(docs)
    bad = []
    for doc, pod in pod_specs(docs):
        for c in containers(pod):
            res = c.get("resources", {})
            want = expected if c is server else None
            got = (res.get("limits", {}).get(GPU), res.get("requests", {}).get(GPU))
            if got != (want, want):
                bad.append(f"{doc['metadata']['name']}/{c['name']}: {GPU} limits/requests {got}, expected {want}")
    return bad


def check_probes(docs, d: Deployment) -> list[str]:
    """Model server: startup, liveness and readiness on the engine's health path; every Deployment container:
    liveness+readiness."""
    bad = []
    _, _, server = _server(docs)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if server.get(probe, {}).get("httpGet", {}).get("path") != d.health_path:
            bad.append(f"model server: {probe} on {d.engine}'s health path {d.health_path} missing")
    for doc, pod in pod_specs(docs):
        for c in pod["containers"] if doc["kind"] == "Deployment" else []:
            bad += [f"{doc['metadata']['name']}/{c['name']}: no {p}" for p in ("livenessProbe", "readinessProbe")
                    if p not in c]
    return bad


def check_probe_budget(docs, d: Deployment) -> list[str]:
    """The startupProbe gives the server well over the planner's load-time estimate before liveness starts."""
    _, _, server = _server(docs)
    probe = server.get("startupProbe", {})
    budget = probe.get("initialDelaySeconds", 0) + probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
    need = max(1, MIN_PROBE_MARGIN * d.startup_estimate_s)
    return [] if budget >= need else [f"startupProbe budget {budget} s < {MIN_PROBE_MARGIN} x the planner's "
                                      f"estimate {d.startup_estimate_s} s"]


def check_shm(docs, d: Deployment) -> list[str]:
    """/dev/shm of the model server is a sized, memory-backed emptyDir."""
    _, pod, server = _server(docs)
    mount = next((m for m in server.get("volumeMounts", []) if m["mountPath"] == "/dev/shm"), None)
    volume = next((v for v in pod.get("volumes", []) if mount and v["name"] == mount["name"]), {})
    empty = volume.get("emptyDir", {})
    ok = empty.get("medium") == "Memory" and empty.get("sizeLimit") == f"{d.shm_gib}Gi"
    return [] if ok else [f"model server: /dev/shm must be an emptyDir Memory of {d.shm_gib}Gi, got {volume}"]


def check_image_tags(docs, d: Deployment) -> list[str]:
    """Every image names a registry path and a fixed tag or digest; never `latest` or untagged."""
    bad = []
    for doc, pod in pod_specs(docs):
        for c in containers(pod):
            image = c.get("image", "")
            name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
            if not name or "/" in tag or tag in ("", "latest"):
                bad.append(f"{doc['metadata']['name']}/{c['name']}: image '{image}' needs a fixed tag")
    return bad


def check_resources(docs, d: Deployment) -> list[str]:
    """Every container requests CPU and memory and has a memory limit."""
    bad = []
    for doc, pod in pod_specs(docs):
        for c in containers(pod):
            res = c.get("resources", {})
            missing = [k for k in ("cpu", "memory") if k not in res.get("requests", {})]
            missing += ["memory limit"] if "memory" not in res.get("limits", {}) else []
            bad += [f"{doc['metadata']['name']}/{c['name']}: no {m}" for m in missing]
    return bad


def check_gateway_api_key(docs, d: Deployment) -> list[str]:
    """The gateway runs the key-from-environment launcher with the key from a required Secret; no container
    anywhere passes a key on its command line."""
    _, pod = _workload(docs, GATEWAY)
    bad = []
    for c in pod["containers"]:
        name = f"gateway/{c['name']}"
        if c.get("command") != LAUNCHER:
            bad.append(f"{name}: command must be {LAUNCHER} (reads ${API_KEY_ENV}; smg alone runs without a key)")
        ref = next((e.get("valueFrom", {}).get("secretKeyRef") for e in c.get("env", []) if e["name"] == API_KEY_ENV),
                   None)
        if not ref or ref.get("optional"):
            bad.append(f"{name}: ${API_KEY_ENV} must come from a required Secret (secretKeyRef, not optional)")
    for doc, spec in pod_specs(docs):
        bad += [f"{doc['metadata']['name']}/{c['name']}: --api-key on a command line exposes the key; use "
                f"${API_KEY_ENV}" for c in containers(spec) if any(a.startswith("--api-key") for a in c.get("args", []))]
    return bad


def _admits(rule: dict) -> list[str]:
    """Why an ingress rule admits more than the gateway (or the Prometheus scrapers), if it does."""
    peers = rule.get("from")
    if not peers:
        return ["a rule without `from` admits every source"]
    reasons = []
    for peer in peers:
        gateway = peer == {"podSelector": {"matchLabels": GATEWAY}}
        if not gateway and peer != SCRAPER:
            reasons.append(f"peer {peer} is neither the gateway nor the Prometheus scraper")
    if not rule.get("ports") or any(p.get("port") not in ("http", 8080) for p in rule["ports"]):
        reasons.append(f"ports {rule.get('ports')} open more than the adapter port")
    return reasons


def check_network_policy(docs, d: Deployment) -> list[str]:
    """Model pods are isolated for ingress and admit only the gateway (plus Prometheus for scraping)."""
    policies = [doc for doc in docs if doc["kind"] == "NetworkPolicy"
                and MODEL.items() <= doc["spec"]["podSelector"].get("matchLabels", {}).items()]
    gateway_only = any(doc["spec"].get("ingress") and all(
        r.get("from") == [{"podSelector": {"matchLabels": GATEWAY}}] for r in doc["spec"]["ingress"])
        for doc in policies)
    bad = [] if gateway_only else ["no NetworkPolicy admits the gateway (and only it) to the model pods"]
    for doc in policies:
        if "Ingress" not in doc["spec"].get("policyTypes", []):
            bad.append(f"{doc['metadata']['name']}: policyTypes lacks Ingress")
        for rule in doc["spec"].get("ingress", []):
            bad += [f"{doc['metadata']['name']}: {why}" for why in _admits(rule)]
    return bad


def check_gpu_placement(docs, d: Deployment) -> list[str]:
    """GPU model pods tolerate the GPU taint and require the profile's `nvidia.com/gpu.product`."""
    if not d.gpus_per_replica:
        return []
    _, pod, _ = _server(docs)
    terms = (pod.get("affinity", {}).get("nodeAffinity", {})
             .get("requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms", []))
    want = {"key": "nvidia.com/gpu.product", "operator": "In", "values": [d.gpu_product]}
    bad = [] if terms and all(want in t.get("matchExpressions", []) for t in terms) else [
        f"model server: node affinity must require {want}"]
    if not any(t.get("key") == GPU and t.get("operator") == "Exists" for t in pod.get("tolerations", [])):
        bad.append(f"model server: no toleration for the {GPU} taint")
    return bad


def check_server_env(docs, d: Deployment) -> list[str]:
    """Short PMIX_HOSTNAME (Open MPI 5 overflow) and offline Hugging Face Hub: pods never download."""
    _, _, server = _server(docs)
    env = {e["name"]: e.get("value") for e in server.get("env", [])}
    bad = [] if env.get("HF_HUB_OFFLINE") == "1" else ["model server: HF_HUB_OFFLINE must be 1"]
    pmix = env.get("PMIX_HOSTNAME") or ""
    if not 0 < len(pmix.encode()) <= PMIX_MAX_BYTES:
        bad.append(f"model server: PMIX_HOSTNAME must be set and at most {PMIX_MAX_BYTES} bytes")
    return bad


def check_rollout(docs, d: Deployment) -> list[str]:
    """Rollouts never need extra GPUs (Recreate, or maxSurge 0) and a PDB bounds voluntary disruptions."""
    doc, _, _ = _server(docs)
    strategy = doc["spec"].get("strategy", {})
    surge_free = strategy.get("type") == "Recreate" or strategy.get("rollingUpdate", {}).get("maxSurge") in (0, "0%")
    bad = [] if surge_free else [f"model server: strategy {strategy} may surge onto extra GPUs"]
    pdbs = [p for p in docs if p["kind"] == "PodDisruptionBudget"
            and p["spec"]["selector"].get("matchLabels") == MODEL]
    return bad + ([] if pdbs else ["model server: no PodDisruptionBudget"])


def check_security(docs, d: Deployment) -> list[str]:
    """Every pod runs as non-root; no container may escalate privileges."""
    bad = []
    for doc, pod in pod_specs(docs):
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            bad.append(f"{doc['metadata']['name']}: pod securityContext.runAsNonRoot is not true")
        for c in containers(pod):
            if c.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                bad.append(f"{doc['metadata']['name']}/{c['name']}: allowPrivilegeEscalation must be false")
    return bad


def _arg(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args[:-1] else None


def check_autoscaling(docs, d: Deployment) -> list[str]:
    """Scaling keeps >= 1 replica and waits longer than a cold start before scaling down; its Prometheus
    triggers query only series the pinned engine exports (its facts file), and its queue gauge where the pin
    has one; the Deployment it scales has no `replicas` of its own (each `kubectl apply` would reset the
    scaled count)."""
    bad = []
    pinned = set(d.series)
    for so in (doc for doc in docs if doc["kind"] == "ScaledObject"):
        target = so["spec"]["scaleTargetRef"]["name"]
        if any(doc["kind"] == "Deployment" and doc["metadata"]["name"] == target and "replicas" in doc["spec"]
               for doc in docs):
            bad.append(f"{so['metadata']['name']}: Deployment {target} sets spec.replicas while KEDA owns it")
        for trigger in so["spec"].get("triggers", []):
            series = set(HISTOGRAM_SERIES.findall(trigger.get("metadata", {}).get("query", "")))
            if trigger["type"] == "prometheus" and (not series or not series <= pinned):
                bad.append(f"{so['metadata']['name']}: query series {sorted(series - pinned) or 'none'} are not "
                           f"exported by the pinned {d.engine_label} ({len(pinned)} series in its facts)")
            if trigger["type"] == "prometheus" and d.queue_metric in pinned and d.queue_metric not in series:
                bad.append(f"{so['metadata']['name']}: query does not read {d.engine_label}'s queue gauge "
                           f"{d.queue_metric}")
        spec = so["spec"]
        window = (spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior", {})
                  .get("scaleDown", {}).get("stabilizationWindowSeconds", 300))
        if spec.get("minReplicaCount", 0) < 1:
            bad.append(f"{so['metadata']['name']}: minReplicaCount < 1 loses the demand signal")
        if window < d.startup_budget_s:
            bad.append(f"{so['metadata']['name']}: scale-down window {window} s < cold start {d.startup_budget_s} s")
    return bad


def check_metrics_scrape(docs, d: Deployment) -> list[str]:
    """Every PodMonitor of the model servers scrapes the engine's metrics path (where its series are)."""
    bad = []
    for monitor in (doc for doc in docs if doc["kind"] == "PodMonitor"
                    and MODEL.items() <= doc["spec"]["selector"].get("matchLabels", {}).items()):
        paths = [e.get("path") for e in monitor["spec"].get("podMetricsEndpoints", [])]
        if paths != [d.metrics_path]:
            bad.append(f"{monitor['metadata']['name']}: scrapes {paths}, {d.engine_label} serves {d.metrics_path}")
    return bad


def check_gateway_rbac(docs, d: Deployment) -> list[str]:
    """The gateway's ServiceAccount may list and watch pods (discovery) and nothing else."""
    _, pod = _workload(docs, GATEWAY)
    account = pod.get("serviceAccountName")
    bindings = [b for b in docs if b["kind"] in ("RoleBinding", "ClusterRoleBinding")
                and any(s.get("kind") == "ServiceAccount" and s.get("name") == account for s in b.get("subjects", []))]
    roles = {(r["kind"], r["metadata"]["name"]): r for r in docs if r["kind"] in ("Role", "ClusterRole")}
    rules = [rule for b in bindings for rule in roles.get((b["roleRef"]["kind"], b["roleRef"]["name"]), {}).get(
        "rules", [{"resources": ["<missing role>"]}])]
    bad = [] if any({"list", "watch"} <= set(r.get("verbs", [])) and "pods" in r.get("resources", [])
                    for r in rules) else [f"gateway account {account}: cannot list and watch pods (discovery)"]
    bad += [f"gateway account {account}: {b['kind']} grants cluster-wide access" for b in bindings
            if b["kind"] == "ClusterRoleBinding"]
    for rule in rules:
        extra = set(rule.get("resources", [])) - {"pods"} or set(rule.get("verbs", [])) - {"get", "list", "watch"}
        if extra:
            bad.append(f"gateway account {account}: rule {rule} grants more than reading pods ({sorted(extra)})")
    return bad


def check_disruption_budgets(docs, d: Deployment) -> list[str]:
    """Every PDB lets unhealthy pods be evicted: crash-looping or still-loading pods never block a drain."""
    return [f"{pdb['metadata']['name']}: unhealthyPodEvictionPolicy must be AlwaysAllow" for pdb in docs
            if pdb["kind"] == "PodDisruptionBudget" and pdb["spec"].get("unhealthyPodEvictionPolicy") != "AlwaysAllow"]


def _edge_routes(doc: dict) -> list[tuple[str, str, str]]:
    """(path type, path, backend service) of every route of an Ingress or HTTPRoute."""
    if doc["kind"] == "Ingress":
        return [(p.get("pathType"), p.get("path"), p["backend"].get("service", {}).get("name"))
                for rule in doc["spec"].get("rules", []) for p in rule.get("http", {}).get("paths", [])]
    return [(GATEWAY_API_PATH_TYPES.get(m.get("path", {}).get("type")), m.get("path", {}).get("value"), ref["name"])
            for rule in doc["spec"].get("rules", []) for m in rule.get("matches", [{}])
            for ref in rule.get("backendRefs", [])]


def edge_admits(docs: list[dict], path: str) -> bool:
    """Whether an Ingress or HTTPRoute in `docs` passes a request for `path` (Kubernetes path matching:
    Prefix matches whole path elements)."""
    def matches(kind: str, prefix: str) -> bool:
        return path == prefix or (kind == "Prefix" and path.startswith(prefix.rstrip("/") + "/"))
    return any(matches(kind, route) for doc in docs if doc["kind"] in ("Ingress", "HTTPRoute")
               for kind, route, _ in _edge_routes(doc))


def check_edge(docs, d: Deployment) -> list[str]:
    """The only public way in is an Ingress or HTTPRoute passing /v1/... and /health to the gateway: the
    gateway Service is internal, and no edge route or default backend admits another path."""
    bad = [f"Service {s['metadata']['name']}: type {s['spec']['type']} exposes every smg route" for s in docs
           if s["kind"] == "Service" and s["spec"].get("type") in ("LoadBalancer", "NodePort")]
    edges = [doc for doc in docs if doc["kind"] in ("Ingress", "HTTPRoute")]
    bad += [] if edges else ["no Ingress or HTTPRoute: the API has no edge"]
    for doc in edges:
        name = f"{doc['kind']} {doc['metadata']['name']}"
        if doc["spec"].get("defaultBackend"):
            bad.append(f"{name}: a defaultBackend passes every path")
        for kind, path, service in _edge_routes(doc):
            if (kind, path) not in EDGE_ALLOWED or service != GATEWAY_SERVICE:
                bad.append(f"{name}: route {kind} {path} -> {service} is outside {sorted(EDGE_ALLOWED)} -> "
                           f"{GATEWAY_SERVICE}")
    return bad


def check_pull_secrets(docs, d: Deployment) -> list[str]:
    """Every pod can pull from a private registry with the Secret PULL_SECRET."""
    return [f"{doc['metadata']['name']}: imagePullSecrets lacks {PULL_SECRET}" for doc, pod in pod_specs(docs)
            if {"name": PULL_SECRET} not in pod.get("imagePullSecrets", [])]


def check_revision(docs, d: Deployment) -> list[str]:
    """The prep Job downloads exactly the profile's pinned revision (when the profile pins one)."""
    bad = []
    for doc, pod in pod_specs(docs):
        for c in containers(pod):
            argv = c.get("command", []) + c.get("args", [])
            if "download" in argv and _arg(argv, "--revision") != d.revision:
                bad.append(f"{doc['metadata']['name']}/{c['name']}: downloads --revision "
                           f"{_arg(argv, '--revision')}, the profile pins {d.revision}")
    return bad


def _prep_calls(docs) -> list[tuple[str, list[str]]]:
    """(container name, argv from the CLI's subcommand on) of each prep-Job step that runs `hunyuan-trt`."""
    calls = []
    for doc, pod in pod_specs(docs):
        if doc["kind"] != "Job" or doc["metadata"]["name"] != PREP_JOB:
            continue
        for c in containers(pod):
            argv = c.get("command", []) + c.get("args", [])
            cli = [i for i, arg in enumerate(argv) if arg == CLI]
            if cli:
                calls.append((c["name"], argv[cli[-1] + 1:]))
    return calls


def check_quantize(docs, d: Deployment) -> list[str]:
    """The prep Job runs `quantize` exactly when the profile's weights differ from the downloaded format: on the
    download, with the flags the weights-formats table names for that pair, after the download and before
    `build`, which reads the quantize output (and reads the download when nothing is quantized)."""
    calls = _prep_calls(docs)
    order = [argv[0] for _, argv in calls]
    quantizes = [argv for _, argv in calls if argv[0] == "quantize"]
    builds = [argv for _, argv in calls if argv[0] == "build"]
    if not d.quantize_args:
        return [f"{PREP_JOB}: runs quantize, but {d.profile} serves its download as it is"] if quantizes else []
    if len(quantizes) != 1 or not builds:
        return [f"{PREP_JOB}: expected one quantize step and a build, found steps {order}"]
    quantize, bad = quantizes[0], []
    flags = list(d.quantize_args)
    if not any(quantize[i:i + len(flags)] == flags for i in range(len(quantize))):
        bad.append(f"{PREP_JOB}/quantize: flags {quantize[1:]} lack {' '.join(flags)}")
    if _arg(quantize, "--model-dir") != d.model_dir:
        bad.append(f"{PREP_JOB}/quantize: --model-dir {_arg(quantize, '--model-dir')}, the download is {d.model_dir}")
    if _arg(builds[-1], "--model-dir") != _arg(quantize, "--out") or _arg(quantize, "--out") is None:
        bad.append(f"{PREP_JOB}/build: --model-dir {_arg(builds[-1], '--model-dir')} is not the quantize output "
                   f"{_arg(quantize, '--out')}")
    if "download" in order and order.index("download") > order.index("quantize"):
        bad.append(f"{PREP_JOB}: quantize runs before the download ({order})")
    if order.index("quantize") > order.index("build"):
        bad.append(f"{PREP_JOB}: quantize runs after build ({order})")
    return bad


def check_drain(docs, d: Deployment) -> list[str]:
    """The model pod's grace period covers the preStop pause, serve's drain and the backend's stop; serve
    gives up loading (one log line) before the startupProbe kills it."""
    doc, pod, server = _server(docs)
    pause = server.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    bad = [] if pause[:1] == ["sleep"] else ["model server: no preStop pause (endpoints update after SIGTERM)"]
    drain = _arg(server.get("args", []), "--drain-timeout")
    need = (int(pause[1]) if len(pause) == 2 else 0) + float(drain or 0) + STOP_GRACE_S
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if drain is None or grace < need:
        bad.append(f"model server: terminationGracePeriodSeconds {grace} < preStop + --drain-timeout {drain} + "
                   f"backend stop {STOP_GRACE_S} = {need:g}")
    ready = float(_arg(server.get("args", []), "--ready-timeout") or 0)
    if not 0 < ready < d.startup_budget_s:
        bad.append(f"model server: --ready-timeout {ready:g} must be below the startup budget {d.startup_budget_s} s")
    return bad


def check_remote_code_cache(docs, d: Deployment) -> list[str]:
    """Where HF_HOME is set, transformers' modules cache (HF_MODULES_CACHE, else $HF_HOME/modules) lies on a
    writable mount: remote code (`auto_map`) is copied there before it is imported."""
    bad = []
    for doc, pod in pod_specs(docs):
        for c in containers(pod):
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            if "HF_HOME" not in env:
                continue
            modules = env.get("HF_MODULES_CACHE") or f"{env['HF_HOME']}/modules"
            mounts = [m for m in c.get("volumeMounts", []) if f"{modules}/".startswith(m["mountPath"].rstrip("/") + "/")]
            deepest = max(mounts, key=lambda m: len(m["mountPath"]), default=None)
            if deepest is None or deepest.get("readOnly"):
                bad.append(f"{doc['metadata']['name']}/{c['name']}: modules cache {modules} is not on a writable "
                           "mount; set HF_MODULES_CACHE to one")
    return bad


def check_gateway_readiness(docs, d: Deployment) -> list[str]:
    """The gateway is ready when smg runs (/liveness), not when a model is (/readiness): while models load,
    clients get smg's JSON errors instead of connection errors from a Service without endpoints."""
    _, pod = _workload(docs, GATEWAY)
    path = pod["containers"][0].get("readinessProbe", {}).get("httpGet", {}).get("path")
    return [] if path == "/liveness" else [f"gateway: readinessProbe on {path}, expected /liveness"]


POLICIES = {
    "gpu-requests": check_gpu_requests,
    "probes": check_probes,
    "probe-budget": check_probe_budget,
    "shm": check_shm,
    "image-tags": check_image_tags,
    "resources": check_resources,
    "gateway-api-key": check_gateway_api_key,
    "network-policy": check_network_policy,
    "gateway-rbac": check_gateway_rbac,
    "gpu-placement": check_gpu_placement,
    "server-env": check_server_env,
    "rollout": check_rollout,
    "security": check_security,
    "autoscaling": check_autoscaling,
    "disruption-budgets": check_disruption_budgets,
    "edge": check_edge,
    "pull-secrets": check_pull_secrets,
    "revision": check_revision,
    "quantize": check_quantize,
    "drain": check_drain,
    "remote-code-cache": check_remote_code_cache,
    "gateway-readiness": check_gateway_readiness,
    "metrics-scrape": check_metrics_scrape,
}


def violations(docs: list[dict], d: Deployment) -> list[str]:
    """Every policy's violations, each prefixed with the policy name."""
    return [f"{name}: {message}" for name, check in POLICIES.items() for message in check(docs, d)]
