"""The adapter's HTTP side: Starlette in front, one pooled aiohttp client session to the upstream.

POST /v1/chat/completions is parsed (see `transform`); GET /v1/models gets the served model name when
one is configured; every other path (/health, /v1/completions, /prometheus/metrics, /metrics, ...) is
passed through byte for byte, streaming. Upstream errors keep their status with an OpenAI error body;
an unreachable upstream is a 502. When the client disconnects, the response generator is cancelled and
closing the upstream response (its connection) aborts the upstream request. aiohttp's client was picked
over httpx for its C HTTP parser: about 5x less CPU per proxied request on the development machines.
"""

from __future__ import annotations

import contextlib
import json

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pipeline.adapter.transform import (
    RequestError,
    StreamTransformer,
    apply_thinking_controls,
    openai_error,
    transform_completion,
)

HOP_HEADERS = {"host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "content-length"}
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
# Upstream pool size: aiohttp's default of 100 connections would queue requests inside the adapter once 100
# are in flight (each stream holds one); 4096 leaves admission to the backend (max_batch_size + its queue).
UPSTREAM_CONNECTIONS = 4096
# Idle pooled upstream connections are kept this long (aiohttp's default: 15 s). trtllm-serve closes idle
# connections after 5 s (TIMEOUT_KEEP_ALIVE, tensorrt_llm/serve/openai_server.py), so it bounds reuse first.
UPSTREAM_IDLE_S = 60
# Keep-alive towards our clients: above their pools' idle timeouts (smg 1.13: --upstream-pool-idle-timeout-secs
# 3 s, smg/router_args.py; cloud load balancers commonly 60 s), so a client always closes an idle connection
# first and never reuses one that the adapter is closing.
CLIENT_KEEP_ALIVE_S = 75


def _forward_headers(headers) -> dict:
    return {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS and k.lower() != "accept-encoding"}


def error_response(status: int, message: str, kind: str = "invalid_request_error", param=None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}}, status)


def _dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _finish(upstream: aiohttp.ClientResponse, completed: bool) -> None:
    """Give a fully read connection back to the pool; close one left mid-stream (aborts the upstream request)."""
    if completed:
        upstream.release()
    else:
        upstream.close()


class Adapter:
    def __init__(self, upstream: str, served_model_name: str | None = None, timeout: float | None = None):
        self.upstream = upstream.rstrip("/")
        self.model_name = served_model_name
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10.0)
        self.client: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        connector = aiohttp.TCPConnector(limit=UPSTREAM_CONNECTIONS, keepalive_timeout=UPSTREAM_IDLE_S)
        async with aiohttp.ClientSession(self.upstream, connector=connector, timeout=self.timeout,
                                         skip_auto_headers=("Accept-Encoding", "User-Agent")) as client:
            self.client = client
            yield

    async def _send(self, request: Request, path: str, body: bytes, json_body: bool = False) -> aiohttp.ClientResponse:
        query = f"?{request.url.query}" if request.url.query else ""
        headers = _forward_headers(request.headers)
        if json_body:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            headers["content-type"] = "application/json"
        return await self.client.request(request.method, path + query, data=body or None, headers=headers)

    async def chat(self, request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
            if not isinstance(payload, dict):
                raise RequestError("body", "expected a JSON object")
            apply_thinking_controls(payload)
        except RequestError as error:
            return error_response(400, str(error), param=error.param)
        except ValueError as error:
            return error_response(400, f"body: invalid JSON ({error})")
        body = _dumps(payload).encode()
        try:
            upstream = await self._send(request, "/v1/chat/completions", body, json_body=True)
        except aiohttp.ClientError as error:
            return error_response(502, f"upstream {self.upstream} unreachable: {error}", "upstream_error")
        if upstream.status >= 400:
            return await self._error(upstream)
        if not payload.get("stream"):
            async with upstream:
                raw = await upstream.read()
            try:
                data = transform_completion(json.loads(raw), self.model_name)
            except (ValueError, AttributeError, TypeError):
                return error_response(502, f"upstream sent an unreadable completion: {raw[:200]!r}", "upstream_error")
            return JSONResponse(data, upstream.status)
        return StreamingResponse(self._sse(upstream), media_type="text/event-stream", headers=SSE_HEADERS)

    async def _error(self, upstream: aiohttp.ClientResponse) -> JSONResponse:
        async with upstream:
            body = await upstream.read()
        return JSONResponse(openai_error(upstream.status, body), upstream.status)

    async def _sse(self, upstream: aiohttp.ClientResponse):
        """Re-emit upstream SSE events transformed; one write per upstream read, however many events it held."""
        transformer, pending, completed = StreamTransformer(self.model_name), b"", False
        try:
            async for part in upstream.content.iter_any():
                pending += part.replace(b"\r\n", b"\n")
                *events, pending = pending.split(b"\n\n")
                out = "".join(self._event(transformer, event.decode()) for event in events)
                if out:
                    yield out
            if pending.strip():
                yield self._event(transformer, pending.decode())
            if tail := transformer.flush():
                yield f"data: {_dumps(tail)}\n\n"
            completed = True
        finally:
            _finish(upstream, completed)

    @staticmethod
    def _event(transformer: StreamTransformer, event: str) -> str:
        """One SSE event (possibly several lines) -> its transformed text ('' when nothing is left to send)."""
        out = []
        for line in event.split("\n"):
            if not line.startswith("data:"):
                out.append(f"{line}\n" if line else "")
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                tail = transformer.flush()
                out.append((f"data: {_dumps(tail)}\n\n" if tail else "") + "data: [DONE]\n\n")
            else:
                out.append(Adapter._chunk(transformer, data, line))
        return "".join(out)

    @staticmethod
    def _chunk(transformer: StreamTransformer, data: str, line: str) -> str:
        try:
            chunk = transformer.chunk(json.loads(data))
        except (ValueError, AttributeError, TypeError):
            return f"{line}\n\n"  # not a chat chunk: relay it untouched
        return f"data: {_dumps(chunk)}\n\n" if chunk is not None else ""

    async def models(self, request: Request) -> Response:
        response = await self.passthrough(request)
        if not self.model_name or response.status_code != 200:
            return response
        data = json.loads(b"".join([part async for part in response.body_iterator]))
        for entry in data.get("data") or []:
            entry["id"] = self.model_name
        return JSONResponse(data)

    async def passthrough(self, request: Request) -> Response:
        try:
            upstream = await self._send(request, request.url.path, await request.body())
        except aiohttp.ClientError as error:
            return error_response(502, f"upstream {self.upstream} unreachable: {error}", "upstream_error")
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
        return StreamingResponse(self._raw(upstream), upstream.status, headers=headers)

    @staticmethod
    async def _raw(upstream: aiohttp.ClientResponse):
        completed = False
        try:
            async for part in upstream.content.iter_any():
                yield part
            completed = True
        finally:
            _finish(upstream, completed)


def create_app(upstream: str, served_model_name: str | None = None, timeout: float | None = None) -> Starlette:
    adapter = Adapter(upstream, served_model_name, timeout)
    routes = [
        Route("/v1/chat/completions", adapter.chat, methods=["POST"]),
        Route("/v1/models", adapter.models, methods=["GET"]),
        Route("/{path:path}", adapter.passthrough, methods=METHODS),
    ]
    return Starlette(routes=routes, lifespan=adapter.lifespan)


def server_config(upstream: str, host: str, port: int, served_model_name: str | None = None,
                  log_level: str = "warning"):
    """The uvicorn.Config that serves the adapter (`hunyuan-trt adapter` and `hunyuan-trt serve`)."""
    import uvicorn

    return uvicorn.Config(create_app(upstream, served_model_name), host=host, port=port, log_level=log_level,
                          access_log=False, timeout_keep_alive=CLIENT_KEEP_ALIVE_S)
