"""The adapter's HTTP side: Starlette in front, one pooled httpx client to the upstream trtllm-serve.

POST /v1/chat/completions is parsed (see `transform`); GET /v1/models gets the served model name when
one is configured; every other path (/health, /v1/completions, /prometheus/metrics, /metrics, ...) is
passed through byte for byte, streaming. Upstream errors keep their status with an OpenAI error body;
an unreachable upstream is a 502. When the client disconnects, the response generator is cancelled and
closing the upstream response aborts the upstream request.
"""

from __future__ import annotations

import contextlib
import json

import httpx
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


def _forward_headers(headers) -> dict:
    return {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS and k.lower() != "accept-encoding"}


def error_response(status: int, message: str, kind: str = "invalid_request_error", param=None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}}, status)


def _dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class Adapter:
    def __init__(self, upstream: str, served_model_name: str | None = None, timeout: float | None = None):
        self.upstream = upstream.rstrip("/")
        self.model_name = served_model_name
        self.timeout = httpx.Timeout(timeout, connect=10.0)
        self.client: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        limits = httpx.Limits(max_connections=4096, max_keepalive_connections=512)
        async with httpx.AsyncClient(base_url=self.upstream, timeout=self.timeout, limits=limits) as client:
            self.client = client
            yield

    async def _send(self, request: Request, path: str, body: bytes) -> httpx.Response:
        upstream = self.client.build_request(request.method, path, params=request.query_params,
                                             headers=_forward_headers(request.headers), content=body)
        return await self.client.send(upstream, stream=True)

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
            upstream = await self._send(request, "/v1/chat/completions", body)
        except httpx.HTTPError as error:
            return error_response(502, f"upstream {self.upstream} unreachable: {error}", "upstream_error")
        if upstream.status_code >= 400:
            return await self._error(upstream)
        if not payload.get("stream"):
            data = json.loads(await upstream.aread())
            await upstream.aclose()
            return JSONResponse(transform_completion(data, self.model_name), upstream.status_code)
        return StreamingResponse(self._sse(upstream), media_type="text/event-stream", headers=SSE_HEADERS)

    async def _error(self, upstream: httpx.Response) -> JSONResponse:
        body = await upstream.aread()
        await upstream.aclose()
        return JSONResponse(openai_error(upstream.status_code, body), upstream.status_code)

    async def _sse(self, upstream: httpx.Response):
        transformer = StreamTransformer(self.model_name)
        try:
            async for line in upstream.aiter_lines():
                if not line.startswith("data:"):
                    if line:
                        yield line + "\n"
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    if tail := transformer.flush():
                        yield f"data: {_dumps(tail)}\n\n"
                    yield "data: [DONE]\n\n"
                    continue
                chunk = transformer.chunk(json.loads(data))
                if chunk is not None:
                    yield f"data: {_dumps(chunk)}\n\n"
            if tail := transformer.flush():
                yield f"data: {_dumps(tail)}\n\n"
        finally:
            await upstream.aclose()

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
        except httpx.HTTPError as error:
            return error_response(502, f"upstream {self.upstream} unreachable: {error}", "upstream_error")
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
        return StreamingResponse(self._raw(upstream), upstream.status_code, headers=headers)

    @staticmethod
    async def _raw(upstream: httpx.Response):
        try:
            async for part in upstream.aiter_raw():
                yield part
        finally:
            await upstream.aclose()


def create_app(upstream: str, served_model_name: str | None = None, timeout: float | None = None) -> Starlette:
    adapter = Adapter(upstream, served_model_name, timeout)
    routes = [
        Route("/v1/chat/completions", adapter.chat, methods=["POST"]),
        Route("/v1/models", adapter.models, methods=["GET"]),
        Route("/{path:path}", adapter.passthrough, methods=METHODS),
    ]
    return Starlette(routes=routes, lifespan=adapter.lifespan)
