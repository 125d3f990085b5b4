"""Graceful drain for `hunyuan-trt serve`, independent of how the backend shuts down.

On the first stop signal the adapter starts draining: /health answers 503 (the kubelet and smg take the
replica out), every new request gets a 503 OpenAI error (smg retries it on another replica before the first
byte), and requests and streams already in flight run on. The drain is over when none is left or the grace
period has passed; only then does `serve` stop the backend. A second stop signal stops at once.
"""

from __future__ import annotations

import time

import uvicorn

from pipeline.adapter.app import error_response

DRAIN_TIMEOUT_S = 300  # + STOP_GRACE_S + the preStop pause < the pod's terminationGracePeriodSeconds
STOP_GRACE_S = 30.0  # the backend's own shutdown after the drain


class Drain:
    """ASGI middleware counting in-flight HTTP requests; refuses new ones once draining."""

    def __init__(self, app, grace_s: float):
        self.app = app
        self.grace_s = grace_s
        self.in_flight = 0
        self.since: float | None = None

    @property
    def draining(self) -> bool:
        return self.since is not None

    def start(self) -> None:
        if self.since is None:
            self.since = time.monotonic()

    def done(self) -> bool:
        """Draining and nothing left in flight, or the grace period is over."""
        return self.draining and (self.in_flight == 0 or time.monotonic() - self.since >= self.grace_s)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif self.draining:
            refusal = error_response(503, "this replica is shutting down; retry on another one", "unavailable")
            await refusal(scope, receive, send)
        else:
            self.in_flight += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.in_flight -= 1


class DrainingServer(uvicorn.Server):
    """uvicorn whose first stop signal starts `drain` instead of shutting down; a second one shuts down."""

    def __init__(self, config: uvicorn.Config, drain: Drain):
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig, frame) -> None:
        if self.drain.draining:
            super().handle_exit(sig, frame)
        else:
            self.drain.start()
