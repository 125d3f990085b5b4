"""Hostile input through the CPU chain (issue #17): oversized bodies while normal requests run, open-proxy
attempts through raw sockets, abandoned non-streamed requests, and fuzzed requests of the right shape with
wrong types at every leaf. Each measures, then judges against its goal as a `GoalResult`; the drill suite and
tests/test_adapter_hostile.py run the same functions."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from pipeline.goals import GoalResult
from pipeline.model import SERVED_MODEL_NAME
from pipeline.procs import wait_until

MiB = 1024 * 1024
NORMAL = {"model": SERVED_MODEL_NAME, "messages": [{"role": "user", "content": "What is 12+30?"}], "max_tokens": 8,
          "temperature": 0}
# the stand-in's gauges of admitted work (generating + queued); their names follow the stand-in's metrics
IN_FLIGHT_GAUGES = ("num_requests_running{", "num_requests_waiting{")
P99_FACTOR = 2.0        # normal requests' p99 under attack / idle p99
RSS_GROWTH_MIB = 300    # no process may grow more than this while oversized bodies arrive
ABANDONED = 16          # concurrent non-streamed requests whose clients leave
ABANDON_AFTER_S = 2.5   # the abandoning clients' timeout
IDLE_WITHIN_S = 2.0     # the backend is idle this soon after they left
TRACEBACK = "Traceback"


def bearer(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


# --- oversized bodies ----------------------------------------------------------------------------------------

def oversized(size: int) -> bytes:
    """A well-formed chat request of about `size` bytes (one huge user message)."""
    return json.dumps({**NORMAL, "messages": [{"role": "user", "content": "x" * size}]}).encode()


def normal_requests(url: str, key: str | None, count: int) -> list[tuple[float, int | str]]:
    """`count` normal chat requests one after another: (seconds, status or 'conn_error') each."""
    session, samples = requests.Session(), []
    for _ in range(count):
        start = time.monotonic()
        try:
            status: int | str = session.post(f"{url}/v1/chat/completions", json=NORMAL, timeout=60,
                                             headers=bearer(key)).status_code
        except requests.RequestException:
            status = "conn_error"
        samples.append((time.monotonic() - start, status))
    return samples


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Attack:
    """Issue #17's attack, repeated until stopped: to each target in turn a 100 MB body, then four 10 MB
    bodies at once; a round every PAUSE_S at most, so the attacker (on the same cores) does not starve the
    service by itself."""

    PAUSE_S = 0.25

    def __init__(self, targets: list[str], key: str | None):
        self.targets, self.headers = targets, {**bearer(key), "content-type": "application/json"}
        self.stop, self.outcomes = threading.Event(), []
        self.bodies = {"100 MB": oversized(100 * MiB), "10 MB": oversized(10 * MiB)}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _send(self, url: str, body: bytes) -> None:
        try:
            response = requests.post(f"{url}/v1/chat/completions", data=body, timeout=60, headers=self.headers)
            self.outcomes.append(response.status_code)
        except requests.ConnectionError:
            self.outcomes.append("reset")  # refused while still sending: as good as a 413 for the attacker

    def _run(self) -> None:
        while not self.stop.wait(self.PAUSE_S):
            for url in self.targets:
                self._send(url, self.bodies["100 MB"])
                four = [threading.Thread(target=self._send, args=(url, self.bodies["10 MB"])) for _ in range(4)]
                for thread in four:
                    thread.start()
                for thread in four:
                    thread.join()

    def __enter__(self) -> Attack:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(120)


@dataclass
class AttackRun:
    idle: list[tuple[float, int | str]] = field(default_factory=list)
    under_attack: list[tuple[float, int | str]] = field(default_factory=list)
    outcomes: list[int | str] = field(default_factory=list)
    grown_mib: list[float] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)          # processes that exited
    unhealthy: list[str] = field(default_factory=list)     # fronts not answering /health 200
    healthy_workers: int = 0
    workers: int = 0


def oversized_attack(gateway: str, key: str, fronts: list[str], processes: dict[str, object], rounds: int = 3,
                     per_phase: int = 20) -> AttackRun:
    """Normal requests through `gateway`, idle and under attack in turn (so outside load hits both alike),
    the attack aimed at the gateway and at every front; then the processes' state. `processes`: name ->
    ManagedProcess."""
    run = AttackRun()
    rss_before = {name: rss_mib(p.pid) for name, p in processes.items()}
    normal_requests(gateway, key, 5)  # warm-up
    for _ in range(rounds):
        run.idle += normal_requests(gateway, key, per_phase)
        with Attack([gateway, *fronts], key) as attack:
            wait_until(lambda a=attack: len(a.outcomes) >= 5, timeout=300, interval=0.05)  # under way
            run.under_attack += normal_requests(gateway, key, per_phase)
        run.outcomes += attack.outcomes
    run.dead = [name for name, p in processes.items() if p.process.poll() is not None]
    run.grown_mib = [rss_mib(p.pid) - rss_before[name] for name, p in processes.items() if name not in run.dead]
    for url in fronts:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/health", timeout=5).status_code == 200:
                continue
        run.unhealthy.append(url)
    workers = requests.get(f"{gateway}/workers", headers=bearer(key), timeout=5).json()["workers"]
    run.workers, run.healthy_workers = len(workers), sum(bool(w.get("is_healthy")) for w in workers)
    return run


def judge_attack(run: AttackRun) -> list[GoalResult]:
    normal = run.idle + run.under_attack
    failed = [status for _, status in normal if status != 200]
    idle = p99([s for s, status in run.idle if status == 200] or [float("inf")])
    attacked = p99([s for s, status in run.under_attack if status == 200] or [float("inf")])
    refused = set(run.outcomes) <= {413, "reset"} and 413 in run.outcomes
    kinds = ", ".join(f"{run.outcomes.count(k)} x {k}" for k in sorted(set(run.outcomes), key=str))
    intact = not run.dead and not run.unhealthy and run.healthy_workers == run.workers > 0
    grown = max(run.grown_mib, default=0.0)
    return [
        GoalResult("hostile input: oversized bodies refused", "413 (or reset while sending) for every 100 MB and "
                   "10 MB body, to smg and to each adapter", f"{len(run.outcomes)} bodies: {kinds}", refused,
                   [] if refused else [f"outcomes {kinds}"]),
        GoalResult("hostile input: normal requests under attack", f"100 % succeed; p99 <= {P99_FACTOR:g}x idle p99",
                   f"{len(normal) - len(failed)}/{len(normal)} succeeded; p99 idle {idle * 1000:.0f} ms, under "
                   f"attack {attacked * 1000:.0f} ms (x{attacked / idle:.2f})",
                   not failed and attacked <= P99_FACTOR * idle, [f"failed: {failed}"] if failed else []),
        GoalResult("hostile input: replicas after the attack", f"all alive and healthy, none grew > "
                   f"{RSS_GROWTH_MIB} MiB (no OOM)", f"{run.healthy_workers}/{run.workers} workers healthy in smg, "
                   f"{len(run.dead)} exited, largest RSS growth {grown:.0f} MiB",
                   intact and grown < RSS_GROWTH_MIB, run.dead + [f"{u} unhealthy" for u in run.unhealthy]),
    ]


# --- open proxy ----------------------------------------------------------------------------------------------

class Bystander:
    """A loopback server nobody should reach through the adapter: it counts the connections made to it."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.contacts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.contacts += 1
            conn.close()

    def __enter__(self) -> Bystander:
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()


def raw_request(url: str, head: bytes) -> bytes:
    """Send `head` as it is on a fresh connection; the whole reply."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


PROXY_METHODS = (b"GET", b"POST", b"DELETE")


def proxy_targets(port: int) -> list[bytes]:
    """Request targets that would leave the adapter's route table, toward a bystander on `port`."""
    return [f"//127.0.0.1:{port}/workers".encode(), f"http://127.0.0.1:{port}/workers".encode(),
            f"//127.0.0.1:{port}/v1/chat/completions".encode(), b"/workers", b"/no/such/path", b"/v1/../workers"]


@dataclass
class ProxyProbe:
    answers: list[tuple[bytes, bytes]]   # (request line, first line of the reply) for each open-proxy attempt
    connect_reply: bytes                 # the first line of the reply to CONNECT
    contacts: int                        # connections the bystander saw


def probe_open_proxy(url: str, methods=PROXY_METHODS) -> ProxyProbe:
    with Bystander() as other:
        answers = []
        for method in methods:
            for target in proxy_targets(other.port):
                reply = raw_request(url, method + b" " + target + b" HTTP/1.1\r\nHost: x\r\n"
                                    b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
                answers.append((method + b" " + target, reply.split(b"\r\n", 1)[0]))
        connect = raw_request(url, f"CONNECT 127.0.0.1:{other.port} HTTP/1.1\r\nHost: x\r\n"
                                   f"Connection: close\r\n\r\n".encode()).split(b"\r\n", 1)[0]
        time.sleep(0.2)  # a connection the adapter started would be accepted by now
        return ProxyProbe(answers, connect, other.contacts)


def judge_open_proxy(probes: list[ProxyProbe]) -> GoalResult:
    answers = [a for probe in probes for a in probe.answers]
    wrong = [f"{line.decode()} -> {reply.decode()}" for line, reply in answers if not reply.startswith(b"HTTP/1.1 404")]
    wrong += [f"CONNECT -> {p.connect_reply.decode()}" for p in probes if p.connect_reply.startswith(b"HTTP/1.1 2")]
    contacts = sum(p.contacts for p in probes)
    return GoalResult("hostile input: open-proxy attempts (raw sockets)", "every off-table target 404, CONNECT "
                      "refused, bystander never contacted", f"{len(answers) - len(wrong)}/{len(answers)} answered 404 "
                      f"across {len(probes)} adapter(s); bystander contacted {contacts} times",
                      not wrong and contacts == 0, wrong)


# --- abandoned requests --------------------------------------------------------------------------------------

def in_flight(backend: str) -> float:
    """Requests the stand-in is generating or holding in its queue."""
    text = requests.get(f"{backend}/prometheus/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(IN_FLIGHT_GAUGES))


@dataclass
class Abandonment:
    reached: float              # the most requests the backend held at once before the clients left
    idle_after_s: float | None  # seconds from the clients leaving until the backend held none (None: not in 10 s)


def abandon_requests(front: str, backend: str, count: int = ABANDONED) -> Abandonment:
    """`count` long non-streamed requests to `front` whose clients leave after ABANDON_AFTER_S."""
    body = {**NORMAL, "max_tokens": 100000, "ignore_eos": True}

    def client():
        with contextlib.suppress(requests.RequestException):
            requests.post(f"{front}/v1/chat/completions", json=body, timeout=ABANDON_AFTER_S)

    clients = [threading.Thread(target=client) for _ in range(count)]
    for thread in clients:
        thread.start()
    reached = 0.0

    def all_reached() -> bool:
        nonlocal reached
        reached = max(reached, in_flight(backend))
        return reached >= count
    wait_until(all_reached, timeout=ABANDON_AFTER_S - 0.2, interval=0.05)
    for thread in clients:
        thread.join()
    left = time.monotonic()
    idle = wait_until(lambda: not in_flight(backend), timeout=10, interval=0.05)
    return Abandonment(reached, time.monotonic() - left if idle else None)


def judge_abandoned(result: Abandonment, count: int = ABANDONED) -> GoalResult:
    took = "not within 10 s" if result.idle_after_s is None else f"{result.idle_after_s:.2f} s"
    passed = result.reached >= count and result.idle_after_s is not None and result.idle_after_s <= IDLE_WITHIN_S
    return GoalResult("hostile input: abandoned non-streamed requests", f"{count} concurrent; backend idle "
                      f"<= {IDLE_WITHIN_S:g} s after the clients leave", f"{result.reached:.0f}/{count} reached the "
                      f"backend; idle {took} after the clients left", passed)


# --- fuzz ----------------------------------------------------------------------------------------------------

WRONG = [None, True, -1, 1.5, "x", "", [], {}, [1, "a"], {"k": [None]}]


def chat_template(adapter_fields: bool) -> dict:
    """A valid chat request touching every field; with the adapter's own (thinking, reasoning_effort)."""
    body = {"model": SERVED_MODEL_NAME, "max_tokens": 2, "temperature": 0, "top_p": 0.9, "n": 1,
            "stop": ["\n\n", "END"], "stream": False, "seed": 3, "logprobs": False, "logit_bias": {"5": 1.0},
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": [{"type": "text", "text": "What is 12+30?"}]},
                         {"role": "assistant", "content": "", "tool_calls": [
                             {"id": "call_1", "type": "function",
                              "function": {"name": "get_time", "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "call_1", "content": "noon"}],
            "tools": [{"type": "function", "function": {"name": "get_time", "description": "the time",
                                                        "parameters": {"type": "object", "properties": {}}}}],
            "tool_choice": "auto", "chat_template_kwargs": {"enable_thinking": False}}
    return body | ({"thinking": {"type": "disabled"}, "reasoning_effort": "low"} if adapter_fields else {})


COMPLETION_TEMPLATE = {"model": SERVED_MODEL_NAME, "prompt": ["What is", "Hi"], "max_tokens": 2, "n": 1,
                       "stop": ["x"], "logprobs": 1, "stream": False}


def leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    else:
        yield path


def replaced(body, path, new):
    body = json.loads(json.dumps(body))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return body


def fuzz_bodies(template: dict, rng: random.Random) -> list[dict]:
    """For every leaf and container of `template`: three values of another type in its place."""
    paths = list(leaves(template))
    paths += [p[:i] for p in paths for i in range(1, len(p)) if p[:i] not in paths]
    return [replaced(template, path, new) for path in dict.fromkeys(paths) for new in rng.sample(WRONG, 3)]


@dataclass
class FuzzRun:
    statuses: list[int]
    bad: list[str]   # 5xx, or a 4xx without an OpenAI error body
    logs_with_traceback: list[str]


def fuzz(url: str, adapter_fields: bool, logs: list[Path], seed: int = 17) -> FuzzRun:
    """Every fuzzed chat and completion body to `url`; then the `logs` of the processes behind it."""
    batches = (("/v1/chat/completions", fuzz_bodies(chat_template(adapter_fields), random.Random(seed))),
               ("/v1/completions", fuzz_bodies(COMPLETION_TEMPLATE, random.Random(seed + 1))))
    statuses, bad = [], []
    for path, bodies in batches:
        for body in bodies:
            response = requests.post(f"{url}{path}", json=body, timeout=60)
            statuses.append(response.status_code)
            if response.status_code >= 500 or (response.status_code >= 400 and not _openai_error(response)):
                bad.append(f"{path} {json.dumps(body)[:200]} -> {response.status_code} {response.text[:200]}")
    return FuzzRun(statuses, bad, [str(log) for log in logs if TRACEBACK in log.read_text(errors="replace")])


def _openai_error(response: requests.Response) -> bool:
    try:
        return set(response.json()["error"]) >= {"message", "type", "code"}
    except (ValueError, KeyError, TypeError):
        return False


def judge_fuzz(runs: dict[str, FuzzRun]) -> GoalResult:
    total = sum(len(r.statuses) for r in runs.values())
    statuses = sorted({s for r in runs.values() for s in r.statuses})
    problems = [line for r in runs.values() for line in r.bad] + \
        [f"traceback in {log}" for r in runs.values() for log in r.logs_with_traceback]
    return GoalResult("hostile input: fuzzed requests", "all 2xx/4xx with an OpenAI error body, no traceback in logs",
                      f"{total} requests ({', '.join(f'{len(r.statuses)} to the {n}' for n, r in runs.items())}): "
                      f"statuses {statuses}; {len(problems)} problems", not problems, problems[:10])
