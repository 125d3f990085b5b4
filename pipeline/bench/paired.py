"""Paired hop probe: time to the first visible byte and the gaps between visible chunks, one request at a
time, the paths taking turns.

aiperf measures one path after another; on a shared machine the background load drifts between those runs
by more than the 2 ms a hop is allowed. Here every round sends the same plain-text request to each path in
turn (direct, adapter, smg + adapter), so each hop's cost is the difference between two requests made
moments apart, and the median of those differences leaves the drift out. A client of the stdlib reads the
stream line by line on a kept-alive connection; only SSE events with text in `content` or
`reasoning_content` count as visible.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.errors import PipelineError

VISIBLE_FIELDS = ("content", "reasoning_content")


@dataclass(frozen=True)
class Sample:
    first_byte_ms: float  # request sent -> first visible chunk received
    gap_ms: float  # mean gap between consecutive visible chunks
    chunks: int  # visible chunks


def _visible(event: bytes) -> bool:
    try:
        choices = json.loads(event).get("choices") or []
    except (ValueError, AttributeError):
        return False
    return any(isinstance(choice, dict) and any((choice.get("delta") or {}).get(key) for key in VISIBLE_FIELDS)
               for choice in choices)


class StreamClient:
    """One kept-alive HTTP connection to a base URL that sends a streamed chat request and times its chunks."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120.0):
        parts = urlsplit(url)
        self.url = url
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.headers = {"content-type": "application/json"}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"

    def sample(self, body: bytes) -> Sample:
        start = time.perf_counter()
        self.connection.request("POST", "/v1/chat/completions", body, self.headers)
        response = self.connection.getresponse()
        if response.status != 200:
            raise PipelineError(f"{self.url}/v1/chat/completions answered {response.status}: "
                                f"{response.read()[:200]!r}")
        arrivals = []
        while line := response.readline():
            if line.startswith(b"data: [DONE]"):
                break
            if line.startswith(b"data:") and _visible(line[5:]):
                arrivals.append(time.perf_counter())
        response.read()  # the rest of the chunked body, so the connection can be reused
        if not arrivals:
            raise PipelineError(f"{self.url}: a streamed answer without visible text; the probe needs some")
        gap = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1) if len(arrivals) > 1 else 0.0
        return Sample(1000 * (arrivals[0] - start), 1000 * gap, len(arrivals))

    def close(self) -> None:
        self.connection.close()


def probe(clients: dict[str, StreamClient], body: dict, requests: int, warmup: int = 2) -> dict[str, list[Sample]]:
    """`requests` samples per path, the paths taking turns request by request (after `warmup` unrecorded turns)."""
    payload = json.dumps(body).encode()
    samples: dict[str, list[Sample]] = {path: [] for path in clients}
    for turn in range(warmup + requests):
        for path, client in clients.items():
            sample = client.sample(payload)
            if turn >= warmup:
                samples[path].append(sample)
    return samples


def added(samples: dict[str, list[Sample]], path: str, base: str, field: str) -> float:
    """Median over turns of (path - base) for one field of the samples: what the hop(s) between them add."""
    return statistics.median(getattr(a, field) - getattr(b, field)
                             for a, b in zip(samples[path], samples[base], strict=True))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc), for CPU per request of a hop."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
