"""HTTP surface of the CPU stand-in: the trtllm-serve routes, request handling and SSE framing.

Routes: GET /health, /health_generate, /version, /v1/models, /prometheus/metrics;
POST /v1/chat/completions, /v1/completions (streamed with a final `data: [DONE]`, or not).

A generation request is validated, checked against the request limits, admitted (or refused with 429)
before its prompt is tokenized, bounded in characters before tokenizing (see `Engine.check_prompt_chars`)
and tokenized off the event loop, so a large or malformed request never stalls the other requests.
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
from pipeline.cpu_backend.service import Generation, Piece, Seat, Service

DISCONNECT_POLL_S = 0.2
log = logging.getLogger(__name__)


class Reply:
    """Builds trtllm-serve-shaped response bodies for one request (chat or text completion)."""

    KINDS = {  # kind -> (id prefix, object, chunk object)
        "chat": ("chatcmpl-", "chat.completion", "chat.completion.chunk"),
        "text": ("cmpl-", "text_completion", "text_completion"),
    }

    def __init__(self, kind: str, model: str, prompt_tokens: int, logprobs: bool = False):
        prefix, self.object, self.chunk_object = self.KINDS[kind]
        self.kind, self.model, self.prompt_tokens, self.logprobs = kind, model, prompt_tokens, logprobs
        self.id, self.created = prefix + uuid.uuid4().hex, int(time.time())
        self.offsets: dict[int, int] = {}  # text offset per choice, for completion logprobs

    def _envelope(self, obj: str, choices: list, usage: dict | None = None) -> dict:
        body = {"id": self.id, "object": obj, "created": self.created, "model": self.model, "choices": choices}
        if usage is not None:
            body["usage"] = usage
        return body

    def usage(self, completion_tokens: int) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": self.prompt_tokens + completion_tokens}

    def choice(self, index: int, piece: Piece, finish: Finish | None, stream: bool, first: bool = False) -> dict:
        end = {"finish_reason": finish and finish.reason, "stop_reason": finish and finish.stop_reason}
        logprobs = self._logprobs(index, piece.logprobs) if self.logprobs else None
        if self.kind == "text":
            return {"index": index, "text": piece.text, "logprobs": logprobs, **end}
        if not stream:
            message = {"role": "assistant", "content": piece.text, "reasoning_content": None, "tool_calls": []}
            return {"index": index, "message": message, "logprobs": logprobs, **end}
        text = piece.text
        delta = {"role": "assistant", "content": text} if first else ({"content": text} if text else {})
        return {"index": index, "delta": delta, "logprobs": logprobs, **end}

    def _logprobs(self, index: int, entries: list) -> dict:
        """Chat: {"content": entries}; text completions: OpenAI's legacy parallel lists."""
        if self.kind == "chat":
            return {"content": entries}
        offsets = []
        for entry in entries:
            offsets.append(self.offsets.get(index, 0))
            self.offsets[index] = offsets[-1] + len(entry["token"])
        return {"tokens": [e["token"] for e in entries], "token_logprobs": [e["logprob"] for e in entries],
                "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
                "text_offset": offsets}

    def full(self, pieces: dict[int, Piece], finishes: dict[int, Finish]) -> dict:
        choices = [self.choice(i, pieces.get(i, Piece("")), finishes[i], stream=False) for i in sorted(finishes)]
        return self._envelope(self.object, choices, self.usage(sum(f.completion_tokens for f in finishes.values())))

    def chunk(self, choice: dict) -> str:
        return sse(self._envelope(self.chunk_object, [choice]))

    def usage_chunk(self, completion_tokens: int) -> str:
        return sse(self._envelope(self.chunk_object, [], self.usage(completion_tokens)))


def sse(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def error_response(exc: RequestError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def internal_error(exc: Exception) -> RequestError:
    log.exception("request failed")
    return RequestError(f"internal error: {exc}", status=500, err_type="InternalServerError")


async def stream_events(reply: Reply, events: AsyncIterator, include_usage: bool) -> AsyncIterator[str]:
    """SSE frames for a streamed request; a failure mid-stream ends it with an error event, never a cut."""
    started, tokens = set(), 0
    try:
        async for index, item in events:
            first = reply.kind == "chat" and index not in started
            started.add(index)
            if isinstance(item, Finish):
                tokens += item.completion_tokens
                if first:
                    yield reply.chunk(reply.choice(index, Piece(""), None, stream=True, first=True))
                yield reply.chunk(reply.choice(index, Piece(""), item, stream=True))
            else:
                yield reply.chunk(reply.choice(index, item, None, stream=True, first=first))
        if include_usage:
            yield reply.usage_chunk(tokens)
    except RequestError as exc:
        yield sse(exc.body())
    except Exception as exc:  # noqa: BLE001 - reported to the client as an error event, logged with its trace
        yield sse(internal_error(exc).body())
    finally:
        await events.aclose()
    yield "data: [DONE]\n\n"


class GenerationStream(StreamingResponse):
    """A streamed generation that gives its seat back however the response ends, also when the client
    left before the first byte and the event iterator never started."""

    def __init__(self, content, seat: Seat):
        super().__init__(content, media_type="text/event-stream")
        self.seat = seat

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()
            self.seat.abandon()


async def collect(request: Request, events: AsyncIterator, reply: Reply) -> Response:
    """Drain a non-streamed request; if the client goes away meanwhile, cancel its generation."""
    pieces: dict[int, Piece] = {}
    finishes: dict[int, Finish] = {}

    async def drain():
        async for index, item in events:
            if isinstance(item, Finish):
                finishes[index] = item
            else:
                whole = pieces.setdefault(index, Piece(""))
                whole.text += item.text
                whole.logprobs += item.logprobs

    task = asyncio.ensure_future(drain())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if not task.done() and await request.is_disconnected():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return Response(status_code=499)
        task.result()
    finally:
        await events.aclose()
    return JSONResponse(reply.full(pieces, finishes))


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="hunyuan-trt CPU backend", docs_url=None, redoc_url=None, openapi_url=None)
    engine = service.engine

    @app.exception_handler(RequestError)
    async def _request_error(_, exc: RequestError):
        return error_response(exc)

    @app.exception_handler(Exception)
    async def _internal_error(_, exc: Exception):
        return error_response(internal_error(exc))

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

    def chat_prompt(req: ChatRequest) -> list[list[int]]:
        """Worker thread: the chat template and the tokenizer, after the character bound (the template
        copies every message's text, tool calls and the tools' schemas into the prompt; their JSON is an
        upper bound on what it copies)."""
        messages = [m.flat() for m in req.messages]
        engine.check_prompt_chars(len(json.dumps([messages, req.tools], ensure_ascii=False)), "messages")
        return [engine.chat_prompt(messages, req.tools, req.chat_template_kwargs or {}, req.add_generation_prompt)]

    def text_prompts(req: CompletionRequest) -> list[list[int]]:
        """Worker thread: every prompt bounded in characters, then tokenized."""
        prompts = req.prompts()
        engine.check_prompt_chars(sum(len(p) for p in prompts if isinstance(p, str)), "prompt")
        return [engine.text_prompt(p) for p in prompts]

    async def respond(req, kind: str, tokenize, request: Request | None) -> Response:
        """Limits, admission, tokenization off the event loop, then the generation, streamed or not."""
        arrival = time.monotonic()
        service.check_limits(req, len(req.prompts()) if kind == "text" else 1)
        seat = service.admission.admit()
        try:
            prompts = await asyncio.to_thread(tokenize, req)
            reply = Reply(kind, service.served_name, sum(len(p) for p in prompts), req.logprob_count() is not None)
            generation = Generation(service.jobs(req, prompts), seat, arrival, reply.prompt_tokens)
        except BaseException:
            seat.abandon()
            raise
        events = service.run(generation)
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return GenerationStream(stream_events(reply, events, include_usage), seat)
        try:
            return await collect(request, events, reply)
        finally:
            seat.abandon()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await respond(parse_body(await request.body(), ChatRequest), "chat", chat_prompt, request)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await respond(parse_body(await request.body(), CompletionRequest), "text", text_prompts, request)

    @app.get("/health_generate")
    async def health_generate(request: Request):
        probe = ChatRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=1, temperature=0.0)
        try:
            response = await respond(probe, "chat", chat_prompt, request)
        except RequestError as exc:
            return Response(f"Generation health check failed: {exc.message}", status_code=500)
        ok = response.status_code == 200
        return Response("Generation health check OK" if ok else "Generation health check failed",
                        status_code=200 if ok else 500)

    return app
