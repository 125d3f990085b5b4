"""Gateway auth: every request without a key or with a wrong one is refused; the routes smg leaves open are
exactly the ones we decided on (docs/bench.md, "Auth").

smg 1.13 checks the key on inference and control-plane routes but answers some routes without one. Each
open route carries our verdict: probes and the model list are acceptable; routes that make the workers do
work must not be reachable from outside the cluster (the edge exposes only /v1/* and /health).
"""

from __future__ import annotations

import requests

from pipeline.goals import GoalResult
from pipeline.model import SERVED_MODEL_NAME

MODEL = SERVED_MODEL_NAME
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}

PROTECTED = (  # (method, path, body): must refuse a missing or wrong key with 401/403
    ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/v1/completions", {"model": MODEL, "prompt": "hi", "max_tokens": 4}),
    ("POST", "/v1/responses", {"model": MODEL, "input": "hi"}),
    ("POST", "/generate", {"text": "hi"}),
    ("GET", "/workers", None),
    ("POST", "/workers", {"url": "http://127.0.0.1:9"}),
)

BAD_CREDENTIALS = (  # (name, headers)
    ("no key", {}),
    ("wrong key", {"Authorization": "Bearer wrong-key"}),
    ("empty bearer", {"Authorization": "Bearer "}),
    ("wrong scheme", {"Authorization": "Basic d3Jvbmc6a2V5"}),
    ("key in another header", {"x-api-key": "wrong-key"}),
)

# Routes smg answers without a key, with our decision. True: acceptable; False: keep off the public edge.
OPEN_ROUTES = {
    "/health": (True, "liveness probe; body 'OK'"),
    "/liveness": (True, "liveness probe; body 'OK'"),
    "/readiness": (True, "readiness probe; reveals only worker counts"),
    "/v1/models": (True, "lists the public model id only"),
    "/v1/models/" + MODEL: (True, "the same public model card"),
    "/health_generate": (False, "runs one generation on a worker per call: a free compute trigger"),
    "/engine_metrics": (False, "forwarded to the workers without a key (answers 500 on trtllm-serve)"),
}
CANDIDATE_OPEN = (*OPEN_ROUTES, "/metrics", "/get_server_info", "/get_model_info", "/v1/loads", "/server_info")
REFUSED = (401, 403)


def _request(url: str, method: str, path: str, body, headers: dict) -> int:
    return requests.request(method, f"{url}{path}", json=body, headers=headers, timeout=60).status_code


def probe_protected(url: str) -> list[str]:
    """Each protected route x bad credential not answered 401/403."""
    leaks = []
    for method, path, body in PROTECTED:
        for name, headers in BAD_CREDENTIALS:
            status = _request(url, method, path, body, headers)
            if status not in REFUSED:
                leaks.append(f"{method} {path} with {name} -> {status}")
    return leaks


def probe_open(url: str) -> set[str]:
    """GET routes that answer without a key (anything but 401/403/404)."""
    return {path for path in CANDIDATE_OPEN if _request(url, "GET", path, None, {}) not in (*REFUSED, 404)}


def run(url: str, key: str) -> list[GoalResult]:
    accepted = _request(url, "POST", "/v1/chat/completions", CHAT, {"Authorization": f"Bearer {key}"})
    leaks = probe_protected(url)
    total = len(PROTECTED) * len(BAD_CREDENTIALS)
    open_routes = probe_open(url)
    unexpected, closed = sorted(open_routes - set(OPEN_ROUTES)), sorted(set(OPEN_ROUTES) - open_routes)
    verdicts = "; ".join(f"{path} {'accepted' if OPEN_ROUTES[path][0] else 'edge-blocked'}"
                         for path in sorted(open_routes & set(OPEN_ROUTES)))
    return [
        GoalResult("auth: missing/wrong key refused (gateway)", "100 % refused (401/403); right key 200",
                    f"{total - len(leaks)}/{total} refused ({len(PROTECTED)} routes x {len(BAD_CREDENTIALS)} "
                    f"bad credentials); right key -> {accepted}", not leaks and accepted == 200, leaks),
        GoalResult("auth: routes open without a key", "only the documented ones (docs/bench.md)",
                    verdicts or "none", not unexpected and not closed,
                    [f"{path} is open but not documented" for path in unexpected]
                    + [f"{path} is documented as open but now refuses: update OPEN_ROUTES" for path in closed]),
    ]
