"""The adapter's HTTP side: Starlette in front, one pooled aiohttp client session to the upstream.

Only the route table below is served, and only ever forwarded to the configured upstream: any other path,
including `//host:port/...` (which a URL join would send to that host), gets 404. (uvicorn reduces an
absolute-form target `http://host/path` to `/path` before the app sees it, so it too can only reach a
route of this table on the configured upstream.)

POST /v1/chat/completions is validated (`request`), rewritten for the backend (`thinking`, `tools`) and
its response parsed (`transform`); POST /v1/completions is validated and passed through; GET /v1/models
and /v1/models/{id} report the served model name when one is configured; the trtllm-serve status routes
are passed through byte for byte. Bodies over `max_request_bytes` get 413 before they are read. Upstream
errors keep their status with an OpenAI error body; an unreachable upstream is a 502. When the client
goes away, the upstream request is aborted by closing its connection: streams through Starlette's
disconnect watch, non-streamed requests through `_unless_gone`. aiohttp's client was picked over httpx
for its C HTTP parser: about 5x less CPU per proxied request on the development machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pipeline.adapter.request import ChatBody, CompletionBody, RequestError, load_json, parse
from pipeline.adapter.thinking import apply_thinking
from pipeline.adapter.tools import apply_tool_choice
from pipeline.adapter.transform import StreamTransformer, error_body, openai_error, transform_completion
from pipeline.request_limits import DEFAULT_LIMITS, RequestLimits

log = logging.getLogger("pipeline.adapter")

HOP_HEADERS = {"host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "content-length", "accept-encoding"}
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
# trtllm-serve's status routes, passed through as they are (tensorrt_llm/serve/openai_server.py)
PASSTHROUGH_GETS = ("/health", "/health_generate", "/version", "/metrics", "/perf_metrics", "/prometheus/metrics")
CLIENT_GONE = 499  # nginx's code for a request whose client closed the connection first
# The pool to the one upstream: one connection per in-flight request (a stream holds its connection),
# bounded well above trtllm-serve's max_batch_size + queue; idle connections kept for as long as
# `hunyuan-trt serve` keeps client connections (75 s), so bursts reuse them.
POOL_LIMIT, POOL_KEEPALIVE_S = 4096, 60
# Keep-alive towards our clients: above their pools' idle timeouts (smg 1.13: --upstream-pool-idle-timeout-secs
# 3 s, smg/router_args.py; cloud load balancers commonly 60 s), so a client always closes an idle connection
# first and never reuses one that the adapter is closing.
CLIENT_KEEP_ALIVE_S = 75


class ClientGone(Exception):
    """The client closed its connection before the response was ready."""


def error_response(status: int, message: str, kind: str = "invalid_request_error", param=None) -> JSONResponse:
    return JSONResponse(error_body(message, kind, status, param), status)


def _dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _finish(upstream: aiohttp.ClientResponse, completed: bool) -> None:
    """Give a fully read connection back to the pool; close one left mid-stream (aborts the upstream request)."""
    if completed:
        upstream.release()
    else:
        upstream.close()


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes (from
    Content-Length before reading anything, or while a chunked body arrives)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError("body", f"request body of {int(declared):,} bytes exceeds {limit:,} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError("body", f"request body exceeds {limit:,} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_gone(request: Request, work):
    """Await `work` (a coroutine); if the client disconnects first, cancel it and raise ClientGone."""
    task, gone = asyncio.ensure_future(work), asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise ClientGone
    return task.result()


def _error_event(message: str) -> str:
    log.warning("%s", message)
    return f"data: {_dumps(error_body(message, 'upstream_error', 502))}\n\n"


class Adapter:
    def __init__(self, upstream: str, served_model_name: str | None = None, timeout: float | None = None,
                 limits: RequestLimits = DEFAULT_LIMITS):
        self.upstream = upstream.rstrip("/")
        self.model_name = served_model_name
        self.limits = limits
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10.0)
        self.client: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        connector = aiohttp.TCPConnector(limit=POOL_LIMIT, keepalive_timeout=POOL_KEEPALIVE_S)
        async with aiohttp.ClientSession(self.upstream, connector=connector, timeout=self.timeout,
                                         skip_auto_headers=("Accept-Encoding", "User-Agent")) as client:
            self.client = client
            yield

    # the route table ------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self._guarded(self.chat), methods=["POST"]),
            Route("/v1/completions", self._guarded(self.completions), methods=["POST"]),
            Route("/v1/models", self._guarded(self.models), methods=["GET"]),
            Route("/v1/models/{model_id:path}", self._guarded(self.model), methods=["GET"]),
            *(Route(path, self._guarded(self.passthrough), methods=["GET"]) for path in PASSTHROUGH_GETS),
        ]

    @staticmethod
    def _guarded(handler):
        """Map refused requests, an unreachable upstream and a departed client to their responses."""
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestError as error:
                response = error_response(error.status, str(error), param=error.param)
                if error.status == 413:  # close instead of reading the rest of the body just to discard it
                    response.headers["connection"] = "close"
                return response
            except aiohttp.ClientError as error:
                return error_response(502, f"upstream {error.__class__.__name__}: {error}", "upstream_error")
            except ClientGone:
                return Response(status_code=CLIENT_GONE)
        return endpoint

    # POST routes -----------------------------------------------------------------------------------
    async def chat(self, request: Request) -> Response:
        payload = load_json(await read_body(request, self.limits.max_request_bytes))
        body = parse(ChatBody, payload, self.limits)
        apply_thinking(payload, body)
        policy = apply_tool_choice(payload, body)
        upstream = await _unless_gone(request, self._send(request, "/v1/chat/completions", _dumps(payload).encode()))
        if upstream.status >= 400:
            return await self._error(request, upstream)
        if body.stream:
            transformer = StreamTransformer(policy, self.model_name)
            return StreamingResponse(self._sse(upstream, transformer), media_type="text/event-stream",
                                     headers=SSE_HEADERS)
        raw = await _unless_gone(request, self._read(upstream))
        try:
            return JSONResponse(transform_completion(json.loads(raw), policy, self.model_name), upstream.status)
        except (ValueError, AttributeError, TypeError, RecursionError):
            return error_response(502, f"upstream sent an unreadable completion: {raw[:200]!r}", "upstream_error")

    async def completions(self, request: Request) -> Response:
        raw = await read_body(request, self.limits.max_request_bytes)
        parse(CompletionBody, load_json(raw), self.limits)
        upstream = await _unless_gone(request, self._send(request, "/v1/completions", raw))
        return await self._relay(request, upstream)

    # GET routes ------------------------------------------------------------------------------------
    async def models(self, request: Request) -> Response:
        upstream = await _unless_gone(request, self._send(request, "/v1/models"))
        if not self.model_name or upstream.status != 200:
            return await self._relay(request, upstream)
        data = json.loads(await self._read(upstream))
        for entry in data.get("data") or []:
            entry["id"] = self.model_name
        return JSONResponse(data)

    async def model(self, request: Request) -> Response:
        """GET /v1/models/{id}: the card of the served model (upstream's card, renamed), else 404."""
        response = await self.models(request)
        if response.status_code != 200:
            return response
        wanted = request.path_params["model_id"]
        for entry in json.loads(response.body).get("data") or []:
            if entry.get("id") == wanted:
                return JSONResponse(entry)
        return error_response(404, f"The model '{wanted}' does not exist", "NotFoundError", "model")

    async def passthrough(self, request: Request) -> Response:
        upstream = await _unless_gone(request, self._send(request, request.url.path))
        return await self._relay(request, upstream)

    # upstream I/O ----------------------------------------------------------------------------------
    async def _send(self, request: Request, path: str, body: bytes = b"") -> aiohttp.ClientResponse:
        """`path` is always a route-table path, so the request can only go to the configured upstream."""
        query = f"?{request.url.query}" if request.url.query else ""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        if body:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            headers["content-type"] = "application/json"
        return await self.client.request(request.method, path + query, data=body or None, headers=headers)

    @staticmethod
    async def _read(upstream: aiohttp.ClientResponse) -> bytes:
        completed = False
        try:
            raw = await upstream.read()
            completed = True
            return raw
        finally:
            _finish(upstream, completed)

    async def _error(self, request: Request, upstream: aiohttp.ClientResponse) -> JSONResponse:
        return JSONResponse(openai_error(upstream.status, await _unless_gone(request, self._read(upstream))),
                            upstream.status)

    async def _relay(self, request: Request, upstream: aiohttp.ClientResponse) -> Response:
        """The upstream response as it is: streamed when it is an event stream, else read whole (and
        abandoned if the client leaves meanwhile)."""
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
        if upstream.content_type == "text/event-stream":
            return StreamingResponse(self._raw(upstream), upstream.status, headers=headers)
        return Response(await _unless_gone(request, self._read(upstream)), upstream.status, headers=headers)

    @staticmethod
    async def _raw(upstream: aiohttp.ClientResponse):
        completed = False
        try:
            async for part in upstream.content.iter_any():
                yield part
            completed = True
        finally:
            _finish(upstream, completed)

    # server-sent events ----------------------------------------------------------------------------
    async def _sse(self, upstream: aiohttp.ClientResponse, transformer: StreamTransformer):
        """Re-emit upstream SSE events transformed; one write per upstream read, however many events it held."""
        pending, completed = b"", False
        try:
            async for part in upstream.content.iter_any():
                pending += part.replace(b"\r\n", b"\n")
                *events, pending = pending.split(b"\n\n")
                out = "".join(self._event(transformer, event.decode("utf-8", "replace")) for event in events)
                if out:
                    yield out
            if pending.strip():
                yield self._event(transformer, pending.decode("utf-8", "replace"))
            if tail := transformer.flush():
                yield f"data: {_dumps(tail)}\n\n"
            completed = True
        except aiohttp.ClientError as error:  # the upstream died mid-stream: say so instead of cutting silently
            yield _error_event(f"upstream stream broke off: {error.__class__.__name__}: {error}") + "data: [DONE]\n\n"
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
                out.append(Adapter._chunk(transformer, data))
        return "".join(out)

    @staticmethod
    def _chunk(transformer: StreamTransformer, data: str) -> str:
        """One `data:` payload: a transformed chunk, an upstream error in OpenAI's shape, or an OpenAI error
        event in place of anything that is not a chat chunk (the openai client cannot parse it)."""
        try:
            event = json.loads(data)
        except (ValueError, RecursionError):
            event = None
        if isinstance(event, dict) and ("error" in event or event.get("object") == "error"):
            return f"data: {_dumps(openai_error(502, data.encode()))}\n\n"
        if not isinstance(event, dict) or not isinstance(event.get("choices", []), list):
            return _error_event(f"upstream sent an unreadable stream event: {data[:200]!r}")
        chunk = transformer.chunk(event)
        return f"data: {_dumps(chunk)}\n\n" if chunk is not None else ""


def create_app(upstream: str, served_model_name: str | None = None, timeout: float | None = None,
               limits: RequestLimits = DEFAULT_LIMITS) -> Starlette:
    adapter = Adapter(upstream, served_model_name, timeout, limits)
    return Starlette(routes=adapter.routes(), lifespan=adapter.lifespan)


def server_config(upstream: str, host: str, port: int, served_model_name: str | None = None,
                  log_level: str = "warning", limits: RequestLimits = DEFAULT_LIMITS):
    """The uvicorn.Config that serves the adapter (`hunyuan-trt adapter` and `hunyuan-trt serve`)."""
    import uvicorn

    return uvicorn.Config(create_app(upstream, served_model_name, limits=limits), host=host, port=port,
                          log_level=log_level, access_log=False, timeout_keep_alive=CLIENT_KEEP_ALIVE_S)
