"""The adapter hop alone: a stub upstream that answers every chat request at once with CHUNKS plain-text SSE
chunks GAP_MS apart, measured direct and through the real adapter process, the two taking turns (the paired
probe of `hunyuan-trt bench-overhead`, pipeline/bench/paired.py).

With no model behind it the stub's own time to first byte is well under a millisecond and steady, so the
difference is the adapter's: its HTTP server, the parse and the upstream client, plus waiting for a core on a
busy machine. Also prints the CPU time per request of the adapter and of the stub (Linux /proc; the stub, a
minimal asyncio server writing the same chunks, serves the requests of both paths and is counted per request), and with --cprofile FILE runs the
adapter under cProfile on a CPU-time clock (preemption by other processes is not counted) and prints its top
functions. Usage:

    .venv/bin/python benchmarks/adapter_hop.py [--requests 100] [--rounds 3] [--cprofile /tmp/adapter.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pipeline.bench.paired import StreamClient, added, cpu_seconds, probe
from pipeline.procs import ManagedProcess, free_port, wait_http
from pipeline.topology import adapter_argv

CHUNKS, GAP_MS = 32, 5.0
CHUNK = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub"}


def _frame(data: str) -> bytes:
    body = f"data: {data}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(body), body)


def _chunk(index: int) -> str:
    delta = {"role": "assistant", "content": "a"} if index == 0 else {"content": "a"}
    finish = "length" if index == CHUNKS - 1 else None
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, "stop_reason": None}
    return json.dumps({**CHUNK, "choices": [choice]})


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:  # one request after another on a kept-alive connection, until the client closes it
        lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        length = next((int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:")), 0)
        await reader.readexactly(length)
        if lines[0].startswith("GET"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            continue
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for index in range(CHUNKS):
            writer.write(_frame(_chunk(index)))
            await writer.drain()
            await asyncio.sleep(GAP_MS / 1000)
        writer.write(_frame("[DONE]") + b"0\r\n\r\n")
        await writer.drain()


async def _stub(port: int) -> None:
    async def handle(reader, writer):
        try:
            await _serve_connection(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def _profiled_adapter(out: str, argv: list[str]) -> None:
    """Child mode: `hunyuan-trt ARGV` under cProfile on process CPU time; the stats go to `out` at SIGINT."""
    from pipeline.cli import main as cli

    profile = cProfile.Profile(time.process_time)
    profile.enable()
    try:
        cli(argv, standalone_mode=False)
    finally:
        profile.disable()
        profile.dump_stats(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="requests per path and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cprofile", metavar="FILE", help="profile the adapter (CPU time) into FILE")
    parser.add_argument("--serve-stub", type=int, help=argparse.SUPPRESS)  # child mode: the stub on this port
    parser.add_argument("--profiled-adapter", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.serve_stub:
        asyncio.run(_stub(args.serve_stub))
        return
    if args.profiled_adapter:
        _profiled_adapter(args.profiled_adapter[0], args.profiled_adapter[1:])
        return
    stub_port, adapter_port = free_port(), free_port()
    stub_url = f"http://127.0.0.1:{stub_port}"
    with tempfile.TemporaryDirectory() as logs:
        with ManagedProcess([sys.executable, __file__, "--serve-stub", str(stub_port)], Path(logs) / "stub.log") as stub, \
                ManagedProcess(_adapter(stub_url, adapter_port, args.cprofile), Path(logs) / "adapter.log") as adapter:
            wait_http(f"{stub_url}/health", timeout=30, process=stub.process)
            wait_http(f"http://127.0.0.1:{adapter_port}/health", timeout=60, process=adapter.process)
            clients = {"stub": StreamClient(stub_url), "adapter": StreamClient(f"http://127.0.0.1:{adapter_port}")}
            body = {"model": "stub", "messages": [{"role": "user", "content": "hop"}], "stream": True}
            for round_index in range(args.rounds):
                before = {name: cpu_seconds(process.pid) for name, process in (("adapter", adapter), ("stub", stub))}
                samples = probe(clients, body, args.requests)
                served = {"adapter": args.requests + 2, "stub": 2 * (args.requests + 2)}  # + 2 warm-up turns
                cpu_ms = {name: 1000 * (cpu_seconds(process.pid) - before[name]) / served[name]
                          for name, process in (("adapter", adapter), ("stub", stub))}
                medians = {path: statistics.median(s.first_byte_ms for s in samples[path]) for path in clients}
                print(f"round {round_index + 1}: first byte p50 stub {medians['stub']:.2f} ms, adapter "
                      f"{medians['adapter']:.2f} ms; added (paired median) "
                      f"{added(samples, 'adapter', 'stub', 'first_byte_ms'):+.2f} ms first byte, "
                      f"{added(samples, 'adapter', 'stub', 'gap_ms'):+.3f} ms chunk gap; "
                      f"CPU per request ({CHUNKS} chunks): adapter {cpu_ms['adapter']:.2f} ms, stub {cpu_ms['stub']:.2f} ms")
            if args.cprofile:
                adapter.kill(signal.SIGINT)  # uvicorn shuts down; the child writes the profile
                adapter.process.wait(30)
    if args.cprofile:
        pstats.Stats(args.cprofile).sort_stats("tottime").print_stats(25)


def _adapter(upstream: str, port: int, cprofile: str | None) -> list[str]:
    argv = adapter_argv(upstream, port)
    if not cprofile:
        return argv
    return [sys.executable, __file__, "--profiled-adapter", cprofile, *argv[argv.index("adapter"):]]


if __name__ == "__main__":
    main()
