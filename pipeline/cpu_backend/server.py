"""HTTP surface of the CPU stand-in: the trtllm-serve routes, request handling and SSE framing.

Routes: GET /health, /health_generate, /version, /v1/models, /prometheus/metrics;
POST /v1/chat/completions, /v1/completions (streamed with a final `data: [DONE]`, or not).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pipeline import __version__
from pipeline.cpu_backend.engine import Finish
from pipeline.cpu_backend.metrics import CONTENT_TYPE
from pipeline.cpu_backend.protocol import ChatRequest, CompletionRequest, RequestError, parse_body
from pipeline.cpu_backend.service import Service

DISCONNECT_POLL_S = 0.2
log = logging.getLogger(__name__)


class Reply:
    """Builds trtllm-serve-shaped response bodies for one request (chat or text completion)."""

    KINDS = {  # kind -> (id prefix, object, chunk object)
        "chat": ("chatcmpl-", "chat.completion", "chat.completion.chunk"),
        "text": ("cmpl-", "text_completion", "text_completion"),
    }

    def __init__(self, kind: str, model: str, prompt_tokens: int):
        prefix, self.object, self.chunk_object = self.KINDS[kind]
        self.kind, self.model, self.prompt_tokens = kind, model, prompt_tokens
        self.id, self.created = prefix + uuid.uuid4().hex, int(time.time())

    def _envelope(self, obj: str, choices: list, usage: dict | None = None) -> dict:
        body = {"id": self.id, "object": obj, "created": self.created, "model": self.model, "choices": choices}
        if usage is not None:
            body["usage"] = usage
        return body

    def usage(self, completion_tokens: int) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": self.prompt_tokens + completion_tokens}

    def choice(self, index: int, text: str, finish: Finish | None, stream: bool, first: bool = False) -> dict:
        end = {"finish_reason": finish and finish.reason, "stop_reason": finish and finish.stop_reason}
        if self.kind == "text":
            return {"index": index, "text": text, "logprobs": None, **end}
        if not stream:
            message = {"role": "assistant", "content": text, "reasoning_content": None, "tool_calls": []}
            return {"index": index, "message": message, "logprobs": None, **end}
        delta = {"role": "assistant", "content": text} if first else ({"content": text} if text else {})
        return {"index": index, "delta": delta, "logprobs": None, **end}

    def full(self, texts: dict[int, str], finishes: dict[int, Finish]) -> dict:
        choices = [self.choice(i, texts.get(i, ""), finishes[i], stream=False) for i in sorted(finishes)]
        return self._envelope(self.object, choices, self.usage(sum(f.completion_tokens for f in finishes.values())))

    def chunk(self, choice: dict) -> str:
        return sse(self._envelope(self.chunk_object, [choice]))

    def usage_chunk(self, completion_tokens: int) -> str:
        return sse(self._envelope(self.chunk_object, [], self.usage(completion_tokens)))


def sse(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def error_response(exc: RequestError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def stream_events(reply: Reply, events: AsyncIterator, include_usage: bool) -> AsyncIterator[str]:
    """SSE frames for a streamed request; closing this generator (client gone) cancels generation."""
    started, tokens = set(), 0
    try:
        async for index, item in events:
            first = reply.kind == "chat" and index not in started
            started.add(index)
            if isinstance(item, Finish):
                tokens += item.completion_tokens
                if first:
                    yield reply.chunk(reply.choice(index, "", None, stream=True, first=True))
                yield reply.chunk(reply.choice(index, "", item, stream=True))
            else:
                yield reply.chunk(reply.choice(index, item, None, stream=True, first=first))
        if include_usage:
            yield reply.usage_chunk(tokens)
    except RequestError as exc:
        yield sse(exc.body())
    finally:
        await events.aclose()
    yield "data: [DONE]\n\n"


async def collect(request: Request, events: AsyncIterator, reply: Reply) -> Response:
    """Drain a non-streamed request; if the client goes away meanwhile, cancel its generation."""
    texts: dict[int, str] = {}
    finishes: dict[int, Finish] = {}

    async def drain():
        async for index, item in events:
            if isinstance(item, Finish):
                finishes[index] = item
            else:
                texts[index] = texts.get(index, "") + item

    task = asyncio.ensure_future(drain())
    while not task.done():
        await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if not task.done() and await request.is_disconnected():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return Response(status_code=499)
    task.result()
    return JSONResponse(reply.full(texts, finishes))


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="hunyuan-trt CPU backend", docs_url=None, redoc_url=None, openapi_url=None)
    engine = service.engine

    @app.exception_handler(RequestError)
    async def _request_error(_, exc: RequestError):
        return error_response(exc)

    @app.exception_handler(Exception)
    async def _internal_error(_, exc: Exception):
        log.exception("request failed")
        return error_response(RequestError(f"internal error: {exc}", status=500, err_type="InternalServerError"))

    @app.get("/health")
    async def health():
        return Response(status_code=200)

    @app.get("/version")
    async def version():
        return {"version": f"{__version__}-cpu"}

    @app.get("/v1/models")
    async def models():
        card = {"id": service.served_name, "object": "model", "created": int(time.time()), "owned_by": "tensorrt_llm"}
        return {"object": "list", "data": [card]}

    @app.get("/prometheus/metrics")
    async def metrics():
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    async def run_chat(req: ChatRequest, request: Request | None) -> Response:
        arrival = time.monotonic()
        messages = [m.flat() for m in req.messages]
        prompt = engine.chat_prompt(messages, req.tools, req.chat_template_kwargs or {}, req.add_generation_prompt)
        return await respond(req, [prompt], Reply("chat", service.served_name, len(prompt)), request, arrival)

    async def respond(req, prompts: list[list[int]], reply: Reply, request: Request | None, arrival: float):
        jobs = service.jobs(req, prompts)
        service.admission.check_capacity()
        events = service.run(jobs, arrival)
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(stream_events(reply, events, include_usage), media_type="text/event-stream")
        return await collect(request, events, reply)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await run_chat(parse_body(await request.body(), ChatRequest), request)

    @app.post("/v1/completions")
    async def completions(request: Request):
        arrival = time.monotonic()
        req = parse_body(await request.body(), CompletionRequest)
        prompts = [engine.text_prompt(p) for p in req.prompts()]
        reply = Reply("text", service.served_name, sum(len(p) for p in prompts))
        return await respond(req, prompts, reply, request, arrival)

    @app.get("/health_generate")
    async def health_generate(request: Request):
        probe = ChatRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=1, temperature=0.0)
        try:
            response = await run_chat(probe, request)
        except RequestError as exc:
            return Response(f"Generation health check failed: {exc.message}", status_code=500)
        ok = response.status_code == 200
        return Response("Generation health check OK" if ok else "Generation health check failed",
                        status_code=200 if ok else 500)

    return app

