"""smg in front of two CPU-backend replicas: auth, routing, and a replica killed under load.

A replica is SIGKILLed while it is generating non-streamed requests; smg must retry them on the other
replica before the first byte reaches the client, so every client request still succeeds.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import pytest
import requests

from pipeline.cpu_backend.runner import ServeOptions, backend_argv
from pipeline.gateway import Gateway
from pipeline.model import TINY_MODEL_DIR
from pipeline.procs import ManagedProcess, free_port, wait_http

MODEL_DIR = Path(os.environ.get("HUNYUAN_TINY_DIR", TINY_MODEL_DIR))
NAME = "tencent/Hunyuan-A13B-Instruct"
KEY = "test-key-" + os.urandom(4).hex()
TOKENS = 60


def metric(url: str, name: str) -> float:
    total = 0.0
    for line in requests.get(url, timeout=10).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def fleet(tmp_path):
    """Two backends and smg; yields (gateway, {url: process})."""
    replicas = {}
    try:
        for _ in range(2):
            port = free_port()
            opts = ServeOptions(MODEL_DIR, "127.0.0.1", port, NAME, 4, 512, 32)
            replicas[f"http://127.0.0.1:{port}"] = ManagedProcess(
                backend_argv(**asdict(opts)), log_path=tmp_path / f"backend-{port}.log").start()
        for url, proc in replicas.items():
            wait_http(f"{url}/health", timeout=180, process=proc.process)
        with Gateway(list(replicas), KEY, log_path=tmp_path / "smg.log") as gateway:
            yield gateway, replicas
    finally:
        for proc in replicas.values():
            proc.stop()


def ask(gateway: Gateway, i: int) -> tuple[int, int]:
    response = requests.post(f"{gateway.url}/v1/chat/completions", timeout=120,
                             headers={"Authorization": f"Bearer {KEY}"},
                             json={"model": NAME, "messages": [{"role": "user", "content": f"What is {i}+1?"}],
                                   "max_tokens": TOKENS, "ignore_eos": True, "temperature": 0})
    tokens = response.json()["usage"]["completion_tokens"] if response.status_code == 200 else -1
    return response.status_code, tokens


def test_gateway_requires_the_api_key(fleet):
    gateway, _ = fleet
    body = {"model": NAME, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    assert requests.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30).status_code == 401
    wrong = requests.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30,
                          headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    good = requests.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {KEY}"})
    assert good.status_code == 200
    assert good.headers["x-smg-routed-worker-id"] in gateway.worker_urls


def test_killed_replica_loses_no_non_streamed_request(fleet):
    gateway, replicas = fleet
    stop = threading.Event()
    results: list[tuple[int, int]] = []

    def client(worker: int):
        i = worker
        while not stop.is_set():
            results.append(ask(gateway, i))
            i += 4

    with ThreadPoolExecutor(4) as pool:
        for w in range(4):
            pool.submit(client, w)
        victim = busy_replica(replicas)
        replicas[victim].kill(signal.SIGKILL)
        killed_at = len(results)
        deadline = time.monotonic() + 60
        while len(results) < killed_at + 8 and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
    assert len(results) >= killed_at + 8, "traffic did not continue after the kill"
    assert all(status == 200 for status, _ in results), [s for s, _ in results if s != 200]
    assert all(tokens == TOKENS for _, tokens in results), "a retried request came back incomplete"
    retries = metric(f"http://127.0.0.1:{gateway.metrics_port}/metrics", "smg_worker_retries_total")
    assert retries >= 1, "the kill hit no in-flight request, so nothing was retried"


def busy_replica(replicas: dict) -> str:
    """The first replica seen generating a request (so killing it cuts an in-flight request)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for url in replicas:
            if metric(f"{url}/prometheus/metrics", "num_requests_running") > 0:
                return url
        time.sleep(0.02)
    raise AssertionError("no replica ever ran a request")
