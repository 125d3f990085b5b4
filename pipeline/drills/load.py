"""Steady chat load for the drills: worker threads sending non-streamed and streamed requests until stopped.

Each request is recorded with its outcome. A stream counts as `done` only when it ends with `data: [DONE]`
and carried no error event; `error_event` when the server sent an `{"error": ...}` chunk (smg does this when
a replica dies mid-stream); `cut` when the connection ended without either; `hang` when no byte arrived
for `read_timeout` seconds.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass

import requests

from pipeline.model import SERVED_MODEL_NAME

ROUTED_HEADER = "x-smg-routed-worker-id"


@dataclass
class Record:
    kind: str  # plain | stream
    start: float
    end: float
    outcome: str  # ok | http_<status> | error_event | cut | hang | conn_error
    worker: str | None


def chat_body(stream: bool, max_tokens: int) -> dict:
    """A prompt with a random prefix, so prefix-aware routing spreads requests over the replicas; exactly
    `max_tokens` tokens (ignore_eos) so that requests stay in flight long enough to be hit by a kill."""
    return {"model": SERVED_MODEL_NAME, "max_tokens": max_tokens, "stream": stream, "ignore_eos": True,
            "messages": [{"role": "user", "content": f"{uuid.uuid4().hex[:12]} what is 12+30?"}],
            "chat_template_kwargs": {"enable_thinking": False}}


def _stream_outcome(response: requests.Response) -> str:
    saw_error = False
    for line in response.iter_lines():
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return "error_event" if saw_error else "ok"
        try:
            saw_error |= "error" in json.loads(data)
        except ValueError:
            saw_error = True
    return "error_event" if saw_error else "cut"


def send(session: requests.Session, url: str, key: str, stream: bool, max_tokens: int,
         read_timeout: float) -> Record:
    start = time.monotonic()
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with session.post(f"{url}/v1/chat/completions", json=chat_body(stream, max_tokens), headers=headers,
                          stream=stream, timeout=(5, read_timeout)) as response:
            worker = response.headers.get(ROUTED_HEADER)
            if response.status_code != 200:
                outcome = f"http_{response.status_code}"
            elif stream:
                outcome = _stream_outcome(response)
            else:
                outcome = "ok" if response.json().get("choices") else "bad_body"
    except (requests.ReadTimeout, requests.exceptions.ChunkedEncodingError) as error:
        outcome, worker = ("hang" if isinstance(error, requests.ReadTimeout) else "cut"), None
    except requests.RequestException:
        outcome, worker = "conn_error", None
    return Record("stream" if stream else "plain", start, time.monotonic(), outcome, worker)


class Load:
    """`plain` + `streams` threads looping over requests to `url` until `stop()`."""

    def __init__(self, url: str, key: str, plain: int = 3, streams: int = 3, max_tokens: int = 16,
                 stream_tokens: int = 64, read_timeout: float = 20.0):
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True,
                                          args=(stream, url, key, stream_tokens if stream else max_tokens, read_timeout))
                         for stream in [False] * plain + [True] * streams]

    def _loop(self, stream: bool, url: str, key: str, max_tokens: int, read_timeout: float) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                record = send(session, url, key, stream, max_tokens, read_timeout)
                with self._lock:
                    self.records.append(record)

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> list[Record]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        return list(self.records)

    def first_routed_to(self, worker_url: str, after: float) -> float | None:
        """Start time of the first request after `after` that the gateway routed to `worker_url`."""
        with self._lock:
            starts = [r.start for r in self.records if r.worker == worker_url and r.start >= after]
        return min(starts) if starts else None
