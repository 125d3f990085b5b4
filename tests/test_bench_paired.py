"""The paired hop probe: its client times only visible chunks of a real SSE stream (a stub server on a free
loopback port), and its statistics take per-hop differences between requests made in turn."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.bench.overhead import goals, paired_rows
from pipeline.bench.paired import Sample, StreamClient, added, probe
from pipeline.errors import PipelineError

# role-only opener, a usage-only chunk and an empty delta carry nothing visible; 3 chunks do
EVENTS = [{"choices": [{"delta": {"role": "assistant"}}]}, {"choices": [{"delta": {"content": "a"}}]},
          {"choices": [{"delta": {"reasoning_content": "b"}}]}, {"choices": [{"delta": {}}]},
          {"choices": [{"delta": {"content": "c"}, "finish_reason": "length"}]}, {"choices": [], "usage": {}}]


class StubSSE(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the probe reuses its connection
    events = EVENTS
    seen_keys: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["content-length"]))
        StubSSE.seen_keys.append(self.headers.get("authorization"))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for data in [*(json.dumps(event) for event in self.events), "[DONE]"]:
            frame = f"data: {data}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubSSE)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.integration
def test_client_counts_only_visible_chunks_and_reuses_its_connection(stub_url):
    clients = {"direct": StreamClient(stub_url), "adapter": StreamClient(stub_url, api_key="sk-probe")}
    samples = probe(clients, {"stream": True}, requests=3, warmup=1)
    assert [len(samples[path]) for path in clients] == [3, 3]
    assert {sample.chunks for sample in samples["direct"] + samples["adapter"]} == {3}
    assert all(sample.first_byte_ms > 0 and sample.gap_ms >= 0 for sample in samples["direct"])
    assert "Bearer sk-probe" in StubSSE.seen_keys
    for client in clients.values():
        client.close()


@pytest.mark.integration
def test_a_stream_without_visible_text_is_an_error(stub_url, monkeypatch):
    monkeypatch.setattr(StubSSE, "events", EVENTS[:1])
    with pytest.raises(PipelineError, match="without visible text"):
        StreamClient(stub_url).sample(b"{}")


def samples(first_byte: list[float], gap: float = 10.0, chunks: int = 32) -> list[Sample]:
    return [Sample(value, gap, chunks) for value in first_byte]


def test_added_is_the_median_of_paired_differences_not_of_medians():
    # drift: the base path was measured slow on turns where the load was high, and the hop path right after it
    base = samples([10, 50, 11, 52, 12])
    hop = samples([11, 51.5, 12, 53, 13.5])
    assert added({"direct": base, "adapter": hop}, "adapter", "direct", "first_byte_ms") == pytest.approx(1.0)


def rounds(adapter_extra: float, gateway_extra: float, chunks: int = 32) -> list[dict[str, list[Sample]]]:
    out = []
    for drift in (0.0, 20.0, 5.0):
        direct = samples([40 + drift + i for i in range(5)])
        adapter = samples([s.first_byte_ms + adapter_extra for s in direct], chunks=chunks)
        gateway = samples([s.first_byte_ms + gateway_extra for s in adapter], chunks=chunks)
        out.append({"direct": direct, "adapter": adapter, "gateway+adapter": gateway})
    return out


def probe_goals(measured: list[dict]) -> dict:
    rows = [{"path": "direct", "concurrency": 16, "visible_osl": 32.0, "ratio_to_direct": 1.0, "output_tok_s": 1.0}]
    return {result.name: result.passed for result in goals(rows, paired_rows(measured), 32)}


def test_paired_rows_per_hop_and_goals():
    rows = {row["path"]: row for row in paired_rows(rounds(1.5, 0.5))}
    assert rows["direct"]["first_byte_ms added"] is None
    assert rows["adapter"]["first_byte_ms added"] == pytest.approx(1.5)
    assert rows["gateway+adapter"]["first_byte_ms added"] == pytest.approx(0.5)  # against the adapter path
    assert rows["adapter"]["first_byte_ms"] == pytest.approx(48.5)  # median over rounds of round medians
    assert all(probe_goals(rounds(1.5, 0.5)).values())


def test_paired_goal_fails_for_a_slow_hop_or_a_stream_with_fewer_chunks():
    results = probe_goals(rounds(2.5, 0.5))
    assert results["overhead: adapter hop, first visible byte p50, c=1 (paired)"] is False
    assert results["overhead: gateway+adapter hop, first visible byte p50, c=1 (paired)"] is True
    assert probe_goals(rounds(0.5, 0.5, chunks=3))["overhead: visible tokens per request, every path"] is False
