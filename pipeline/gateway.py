"""The `smg` gateway (Shepherd Model Gateway, PyPI `smg`) in front of N OpenAI-compatible replicas.

`GATEWAY_FLAGS` is the tuned flag set, one row per flag with its reason; `smg_args` turns it into the
argv of `smg launch`, for loopback workers (`gateway_args`: demo, drills, benchmarks) and for Kubernetes
discovery (`pipeline.deploy.overlay`). The API key never appears on a
command line: `python -m pipeline.gateway ARGS` reads it from $HUNYUAN_TRT_API_KEY and starts smg
in-process, so `ps` shows no secret.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from pipeline.errors import PipelineError
from pipeline.procs import ADDRESS_IN_USE, ManagedProcess, free_ports, log_tail, wait_until, with_log
from pipeline.request_limits import DEFAULT_LIMITS

API_KEY_ENV = "HUNYUAN_TRT_API_KEY"


@dataclass(frozen=True)
class Flag:
    name: str
    value: str | None  # None: a switch without a value
    why: str


GATEWAY_FLAGS: tuple[Flag, ...] = (
    Flag("--policy", "cache_aware", "prefix affinity while replicas are balanced: KV-cache reuse on trtllm-serve"),
    Flag("--health-check-endpoint", "/health", "trtllm-serve's liveness route (200 healthy, 503 otherwise)"),
    Flag("--health-check-interval-secs", "2", "smg's 60 s default leaves a restarted replica idle up to a minute"),
    Flag("--health-check-timeout-secs", "2", "a replica that cannot answer /health in 2 s is not serving"),
    Flag("--health-failure-threshold", "2", "two missed checks mark a replica down"),
    Flag("--health-success-threshold", "1", "one good check brings a restarted replica back"),
    Flag("--cb-failure-threshold", "3", "open the breaker after three failed attempts instead of ten"),
    Flag("--cb-timeout-duration-secs", "5", "probe an open breaker after 5 s instead of 60 s"),
    Flag("--retry-max-retries", "3", "a request fails over to another replica before its first byte"),
    Flag("--retry-initial-backoff-ms", "50", "first retry almost at once; smg backs off x1.5 with jitter"),
    Flag("--request-timeout-secs", "1800", "long generations must not be cut by the gateway"),
    Flag("--sse-keepalive-secs", "15", "SSE comments keep idle-timeout proxies from cutting slow streams"),
    Flag("--max-payload-size", str(DEFAULT_LIMITS.max_request_bytes),
         "bodies over the adapter's max_request_bytes get 413 before smg buffers them (smg's default: 512 MB)"),
    Flag("--shutdown-grace-period-secs", "60", "on SIGTERM, in-flight generations get a minute to finish"),
    Flag("--disable-tokenizer-autoload", None, "the replicas tokenise; the gateway routes on request text"),
    Flag("--log-level", "warn", "smg logs two INFO lines per request otherwise"),
)


def smg_args(host: str, ports: Mapping[str, int | str], workers: Sequence[str],
             overrides: dict[str, str | None] | None = None) -> list[str]:
    """`smg launch` arguments without the API key: the listen address (and metrics) on `host`, the `ports`
    ({flag: port}), how smg finds its `workers` (URLs or discovery flags), then GATEWAY_FLAGS with `overrides`."""
    known = {f.name for f in GATEWAY_FLAGS}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise PipelineError(f"gateway overrides: unknown flag {unknown[0]} (known: {', '.join(sorted(known))})")
    values = {f.name: f.value for f in GATEWAY_FLAGS} | dict(overrides or {})
    args = ["launch", "--host", host, "--prometheus-host", host]
    for flag, port in ports.items():
        args += [flag, str(port)]
    args += list(workers)
    for name, value in values.items():
        args += [name] if value is None else [name, value]
    return args


def mark_down_bound_s(overrides: Mapping[str, str | None] | None = None) -> float:
    """The longest smg takes to mark a dead worker unhealthy with GATEWAY_FLAGS and `overrides`: the failed
    checks of `--health-failure-threshold`, `--health-check-interval-secs` apart, the last one given up after
    `--health-check-timeout-secs`."""
    values = {f.name: f.value for f in GATEWAY_FLAGS} | dict(overrides or {})
    interval, failures, timeout = (float(values[f"--health-{name}"])
                                   for name in ("check-interval-secs", "failure-threshold", "check-timeout-secs"))
    return interval * failures + timeout


def gateway_args(worker_urls: Sequence[str], host: str = "127.0.0.1", port: int = 30000,
                 metrics_port: int = 29000, overrides: dict[str, str | None] | None = None) -> list[str]:
    """`smg launch` arguments for a fixed list of worker URLs."""
    if not worker_urls:
        raise PipelineError("gateway: at least one worker URL is required")
    return smg_args(host, {"--port": port, "--prometheus-port": metrics_port}, ["--worker-urls", *worker_urls],
                    overrides)


def launcher_argv(args: Sequence[str]) -> list[str]:
    """The command that runs smg with `args` and the key from $HUNYUAN_TRT_API_KEY."""
    return [sys.executable, "-m", "pipeline.gateway", *args]


class Gateway:
    """smg on free loopback ports in front of `worker_urls`, protected by `api_key`; stopped on exit.

    Another process can take a chosen port before smg binds it (a busy machine with many test runs): smg then
    exits ("Address already in use", exit code 1) and is started again on fresh ports, up to BIND_TRIES. Any
    other start failure is raised with the tail of smg's log."""

    BIND_TRIES = 3

    def __init__(self, worker_urls: Sequence[str], api_key: str, log_path: Path | None = None,
                 overrides: dict[str, str | None] | None = None):
        self.worker_urls = list(worker_urls)
        self.api_key = api_key
        self.log_path = log_path
        self.overrides = overrides
        self.process = self._on_free_ports()

    def _on_free_ports(self) -> ManagedProcess:
        self.port, self.metrics_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.port}"
        args = gateway_args(self.worker_urls, port=self.port, metrics_port=self.metrics_port, overrides=self.overrides)
        return ManagedProcess(launcher_argv(args), log_path=self.log_path, env={API_KEY_ENV: self.api_key})

    def start(self, timeout: float = 60.0) -> Gateway:
        for attempt in range(1, self.BIND_TRIES + 1):
            self.process.start()
            try:
                wait_for_workers(self.url, self.api_key, len(self.worker_urls), timeout, self.process)
                return self
            except PipelineError:
                self.process.stop()
                if attempt == self.BIND_TRIES or ADDRESS_IN_USE not in log_tail(self.log_path):
                    raise
                self.process = self._on_free_ports()
        return self

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def worker_health(url: str, api_key: str) -> dict[str, bool]:
    """smg's /workers as {worker URL: healthy} ({} while smg does not answer)."""
    try:
        workers = requests.get(f"{url}/workers", headers={"Authorization": f"Bearer {api_key}"}, timeout=2).json()
        return {w["url"]: bool(w.get("is_healthy")) for w in workers.get("workers", [])}
    except (requests.RequestException, ValueError, AttributeError, KeyError, TypeError):
        return {}


def healthy_workers(url: str, api_key: str) -> int:
    """How many workers smg's /workers lists as healthy (0 while smg does not answer)."""
    return sum(worker_health(url, api_key).values())


def wait_for_workers(url: str, api_key: str, count: int, timeout: float, process: ManagedProcess) -> None:
    """Poll smg's /workers until `count` workers are registered and healthy."""
    def exited() -> bool:
        return process.process.poll() is not None

    if wait_until(lambda: healthy_workers(url, api_key) >= count, timeout, 0.2, give_up=exited):
        return
    if exited():
        raise PipelineError(with_log(f"smg exited with code {process.process.returncode} before it was ready",
                                     process.log_path))
    raise PipelineError(with_log(f"smg at {url}: {count} healthy workers not registered after {timeout:.0f} s",
                                 process.log_path))


def main(argv: Sequence[str]) -> None:
    """Run smg in this process with the API key from the environment (never on the command line)."""
    from smg.cli import main as smg_main

    key = os.environ.get(API_KEY_ENV)
    if not key:
        raise SystemExit(f"{API_KEY_ENV}: not set (the gateway refuses to start without an API key)")
    # attached (`--api-key=KEY`): a key that starts with "-" (1 in 64 of secrets.token_urlsafe) would
    # otherwise be read by argparse as an option, and smg would exit 2 ("expected one argument")
    smg_main([*argv, f"--api-key={key}"])


if __name__ == "__main__":
    main(sys.argv[1:])
