"""Overhead comparison on recorded aiperf cells: per-hop deltas, throughput ratios, goals that can fail,
and the median over rounds."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from pipeline.bench.overhead import comparison_rows, goals, median_cell
from pipeline.bench.results import Cell, load_cells

FIXTURE = Path(__file__).parent / "fixtures" / "bench_aiperf" / "aiperf" / "off"


def shifted(cells: list[Cell], ttft_ms: float = 0.0, throughput: float = 1.0, visible: float | None = None) -> list[Cell]:
    """Copies of `cells` with TTFT p50 raised by `ttft_ms`, output throughput scaled by `throughput` and, when
    given, `visible` tokens per request counted by the client."""
    out = []
    for cell in cells:
        metrics = copy.deepcopy(cell.metrics)
        metrics["time_to_first_token"]["p50"] += ttft_ms
        metrics["output_token_throughput"]["avg"] *= throughput
        if visible is not None:
            metrics["output_sequence_length"]["avg"] = visible
        out.append(Cell(cell.concurrency, metrics, cell.aiperf_version, cell.config))
    return out


@pytest.fixture(scope="module")
def direct():
    """The fixture's cells as a client-counted run (the overhead bench never uses the server's usage)."""
    cells = load_cells(FIXTURE)
    for cell in cells:
        cell.config["endpoint"]["use_server_token_count"] = False
    return cells


def test_rows_report_added_latency_per_hop_and_ratio_to_direct(direct):
    measured = {"direct": direct, "adapter": shifted(direct, 1.5, 0.95), "gateway+adapter": shifted(direct, 2.5, 0.92)}
    rows = {(row["path"], row["concurrency"]): row for row in comparison_rows(measured)}
    assert rows[("adapter", 16)]["TTFT p50 added"] == pytest.approx(1.5)
    assert rows[("gateway+adapter", 16)]["TTFT p50 added"] == pytest.approx(1.0)  # against the adapter, not direct
    assert rows[("gateway+adapter", 16)]["ratio_to_direct"] == pytest.approx(0.92)
    assert rows[("direct", 1)]["TTFT p50 added"] is None
    assert rows[("adapter", 4)]["errors_pct"] == direct[1].stat("request_error_rate")
    assert all(result.passed for result in goals(list(rows.values()), [], 32))


def test_throughput_goal_fails_when_a_hop_slows_the_replica(direct):
    """The latency goals per hop are judged on the paired probe (tests/test_bench_paired.py); aiperf's rows
    carry the throughput goal at the highest concurrency."""
    measured = {"direct": direct, "adapter": shifted(direct, 0.0, 0.85), "gateway+adapter": shifted(direct, 0.0, 0.85)}
    failed = [result.name for result in goals(comparison_rows(measured), [], 32) if not result.passed]
    assert failed == ["overhead: adapter throughput, c=16", "overhead: gateway+adapter throughput, c=16"]


def test_median_cell_takes_each_statistic_over_rounds(direct):
    rounds = [shifted(direct, delta)[0] for delta in (0.0, 10.0, 4.0)]
    combined = median_cell(rounds)
    assert combined.stat("time_to_first_token", "p50") == pytest.approx(direct[0].stat("time_to_first_token", "p50") + 4)
    assert combined.concurrency == direct[0].concurrency


def test_comparison_fails_when_a_path_streams_fewer_visible_tokens(direct):
    """The adapter path strips markup the direct path streams: the hops were not compared like with like."""
    measured = {"direct": direct, "adapter": shifted(direct, visible=3.0), "gateway+adapter": shifted(direct, visible=3.0)}
    results = {result.name: result for result in goals(comparison_rows(measured), [], 32)}
    same = results["overhead: visible tokens per request, every path"]
    assert not same.passed and "adapter c=1: 3.0" in same.measured and "direct c=1: 32.0" in same.measured
    assert all(result.passed for name, result in results.items() if name != same.name)
