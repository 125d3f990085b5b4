"""A scripted stand-in for trtllm-serve that replays conformance.yaml in trtllm-serve's response shapes.

Run: python replay_upstream.py --port N [--host 127.0.0.1] [--model /models/hunyuan]
The last user message selects what to send:
  "case:NAME [chunk:N]"  the case's raw text as `content` with the case's finish reason, streamed in N-character
                         pieces (default 3), or in the case's own chunks with "chunk:given"; with `logprobs: true`
                         every piece carries one logprob entry (its text as the token), streamed and not
  "error:STATUS"         an error in trtllm-serve's shape ({"object": "error", ...}) with that status
  "hang"                 streams one piece (or, not streamed, answers nothing) until the client goes away
                         (counted as cancelled), 30 s at most
  "broken"               streams one piece, then breaks the connection off mid-stream
  "garbage"              a 200 that is not a chat completion (non-streamed), or a stream with a non-JSON event
Debug endpoints: GET /debug/last_request (the last chat body), GET /debug/cancelled, POST /debug/exit?code=N.
Used by the adapter, serve and smoke tests only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

CASES = {c["name"]: c for c in yaml.safe_load((Path(__file__).parent / "conformance.yaml").read_text())["cases"]}
STATE = {"last_request": None, "cancelled": 0, "model": "/models/hunyuan"}


def _selector(body: dict) -> dict:
    text = next((m.get("content", "") for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
    words = dict(word.split(":", 1) for word in text.split() if ":" in word)
    return {"case": words.get("case"), "chunk": words.get("chunk", "3"), "error": words.get("error"),
            **{word: word in text.split() for word in ("hang", "garbage", "broken")}}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"object": "error", "message": message, "type": "BadRequestError", "param": None,
                         "code": status}, status)


def _chunk(delta: dict, finish=None, logprobs=None) -> str:
    delta = {"reasoning_content": None, **delta}  # explicit nulls, as pydantic dumps without exclude_none
    data = {"id": "chatcmpl-replay", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": STATE["model"], "choices": [{"index": 0, "delta": delta, "logprobs": logprobs,
                                                  "finish_reason": finish, "stop_reason": None}]}
    return f"data: {json.dumps(data)}\n\n"


def _pieces(case: dict, chunk: str) -> list[str]:
    raw = _raw(case)
    if chunk == "given" and "chunks" in case:
        return case["chunks"]
    size = 3 if chunk == "given" else int(chunk)
    return [raw[start:start + size] for start in range(0, len(raw), size)]


def _raw(case: dict) -> str:
    return case["raw"] if "raw" in case else "".join(case["chunks"])


def _entry(index: int, piece: str) -> dict:
    """One logprob entry per piece (the replay's "token"), with a distinct value to check order by."""
    return {"token": piece, "logprob": -(index + 1) / 1000, "bytes": list(piece.encode()), "top_logprobs": []}


async def _stream(pieces: list[str], finish: str, usage: bool, logprobs: bool):
    yield _chunk({"role": "assistant", "content": ""})
    for index, piece in enumerate(pieces):
        entries = {"content": [_entry(index, piece)]} if logprobs else None
        yield _chunk({"content": piece}, logprobs=entries)
    yield _chunk({"content": ""}, finish)
    if usage:
        tokens = len(pieces)
        data = {"id": "chatcmpl-replay", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": STATE["model"], "choices": [],
                "usage": {"prompt_tokens": 5, "completion_tokens": tokens, "total_tokens": 5 + tokens}}
        yield f"data: {json.dumps(data)}\n\n"
    yield "data: [DONE]\n\n"


async def _hang():
    finished = False
    try:
        yield _chunk({"role": "assistant", "content": "<think>\nwaiting"})
        for _ in range(600):
            await asyncio.sleep(0.05)
            yield ": keep-alive\n\n"
        finished = True
    finally:
        if not finished:
            STATE["cancelled"] += 1


async def _hang_unstreamed(request) -> Response:
    for _ in range(600):
        if await request.is_disconnected():
            STATE["cancelled"] += 1
            return Response(status_code=499)
        await asyncio.sleep(0.05)
    return _error(504, "hang: nobody left")


async def _broken():
    yield _chunk({"role": "assistant", "content": "<answer>\npartial"})
    # Let the piece reach the adapter before the break: when both arrive in one read, aiohttp raises the broken
    # payload before handing out the bytes buffered ahead of it, and the test would see no partial content.
    await asyncio.sleep(0.3)
    raise RuntimeError("scripted: the stream breaks off here")


async def _garbage():
    yield "data: not-json\n\n"
    yield _chunk({"role": "assistant", "content": "<answer>\nok\n</answer>"}, "stop")
    yield "data: [DONE]\n\n"


async def chat(request):
    body = await request.json()
    STATE["last_request"] = body
    pick = _selector(body)
    if pick["error"]:
        return _error(int(pick["error"]), f"scripted error {pick['error']}")
    if pick["hang"]:
        return StreamingResponse(_hang(), media_type="text/event-stream") if body.get("stream") \
            else await _hang_unstreamed(request)
    if pick["broken"]:
        return StreamingResponse(_broken(), media_type="text/event-stream")
    if pick["garbage"] and not body.get("stream"):
        return PlainTextResponse("not json")
    if pick["garbage"]:
        return StreamingResponse(_garbage(), media_type="text/event-stream")
    case = CASES.get(pick["case"])
    if case is None:
        return _error(400, f"unknown case {pick['case']!r}")
    finish = case.get("finish", "stop")
    pieces = _pieces(case, pick["chunk"])
    logprobs = bool(body.get("logprobs"))
    if body.get("stream"):
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_stream(pieces, finish, usage, logprobs), media_type="text/event-stream")
    entries = {"content": [_entry(i, piece) for i, piece in enumerate(pieces)]} if logprobs else None
    return JSONResponse({
        "id": "chatcmpl-replay", "object": "chat.completion", "created": int(time.time()), "model": STATE["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": _raw(case), "reasoning_content": None,
                                             "tool_calls": []}, "logprobs": entries, "finish_reason": finish,
                     "stop_reason": None}],
        "usage": {"prompt_tokens": 5, "completion_tokens": len(pieces), "total_tokens": 5 + len(pieces)}})


async def completions(request):
    body = await request.json()
    text = _raw(CASES["slow_basic"])
    if body.get("stream"):
        async def pieces():
            for start in range(0, len(text), 8):
                data = {"id": "cmpl-replay", "object": "text_completion", "model": STATE["model"],
                        "choices": [{"index": 0, "text": text[start:start + 8], "finish_reason": None}]}
                yield f"data: {json.dumps(data)}\n\n"
            yield "data: [DONE]\n\n"
        return StreamingResponse(pieces(), media_type="text/event-stream")
    return JSONResponse({"id": "cmpl-replay", "object": "text_completion", "model": STATE["model"],
                         "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]})


async def models(request):
    return JSONResponse({"object": "list", "data": [{"id": STATE["model"], "object": "model", "created": 0,
                                                     "owned_by": "tensorrt_llm"}]})


async def debug_exit(request):
    os._exit(int(request.query_params.get("code", "3")))


ROUTES = [
    Route("/health", lambda request: Response(status_code=200)),
    Route("/v1/models", models),
    Route("/v1/chat/completions", chat, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/prometheus/metrics", lambda request: PlainTextResponse("trtllm_num_requests_running 0\n")),
    Route("/debug/last_request", lambda request: JSONResponse(STATE["last_request"])),
    Route("/debug/cancelled", lambda request: JSONResponse({"cancelled": STATE["cancelled"]})),
    Route("/debug/exit", debug_exit, methods=["POST"]),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default=STATE["model"])
    args = parser.parse_args()
    STATE["model"] = args.model
    uvicorn.run(Starlette(routes=ROUTES), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
