"""Overhead benchmark: the same aiperf workload direct to a CPU replica, through the adapter, and through
smg + adapter, in one run; added TTFT/ITL per hop and throughput ratios against direct.

Like with like: the replica is asked for plain text (`plain_text`: letters and digits only), so its raw
output holds no markup for the adapter to strip or hold back, and every path streams the same visible
tokens, one per chunk; aiperf counts the tokens it received. A path whose visible output is short fails the
comparison instead of reporting a hop cost measured on different streams.

The per-hop latency goals at concurrency 1 are judged on the paired probe (`paired`: the paths take turns
request by request, so load drift between aiperf runs does not enter the difference); aiperf gives the
tables and the throughput ratio at the highest concurrency.

Goals (issue "Bench and faults"): added p50 <= 2 ms per hop; throughput >= 0.9x direct at the highest
concurrency. On the 2-core development machine the client, the replica, the adapter and smg share the cores,
so the numbers include their CPU contention; they bound the overhead from above.
"""

from __future__ import annotations

import json
import secrets
import shutil
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.bench.aiperf import THINKING_KWARGS, Workload, run_aiperf
from pipeline.bench.paired import Sample, StreamClient, added, cpu_seconds, probe
from pipeline.bench.plain_text import plain_text_bias
from pipeline.bench.pyspy import Sampler, summary
from pipeline.bench.pyspy import markdown as profile_table
from pipeline.bench.results import VISIBLE_FLOOR, Cell, load_cells, visible_osl
from pipeline.goals import GoalResult, goal_table
from pipeline.model import SERVED_MODEL_NAME
from pipeline.outputs import OVERHEAD_REPORT, replaced_directory
from pipeline.topology import Topology, cpu_backend

HOP_GOAL_MS = 2.0
THROUGHPUT_GOAL = 0.9
# (label, metric tag, statistic) compared between paths
LATENCIES = (("TTFT p50", "time_to_first_token", "p50"), ("TTFT p99", "time_to_first_token", "p99"),
             ("ITL p50", "inter_token_latency", "p50"), ("ITL p99", "inter_token_latency", "p99"))
PATHS = ("direct", "adapter", "gateway+adapter")
HOPS = (("adapter", "direct"), ("gateway+adapter", "adapter"))  # (path, the path it adds one hop to)
PROBE_FIELDS = (("first visible byte", "first_byte_ms"), ("chunk gap", "gap_ms"))
PROBE_WARMUP = 2  # unrecorded turns per round of the paired probe
PROMPT_WORD = "benchmark "  # the paired probe's prompt: this word repeated up to about ISL characters


@dataclass(frozen=True)
class OverheadPlan:
    concurrency: tuple[int, ...] = (1, 16)
    isl: int = 128
    osl: int = 32
    requests_per_user: int = 6
    repeats: int = 3  # rounds over the three paths; each statistic is the median over the rounds
    paired_requests: int = 30  # per path and round in the paired probe


@dataclass
class Measured:
    cells: dict[str, list[Cell]]  # aiperf, per path: one median cell per concurrency
    paired: list[dict[str, list[Sample]]]  # the paired probe, one entry per round
    adapter_cpu_ms: list[float]  # per round: the adapter process's CPU ms per request it served in the probe


def median_cell(cells: list[Cell]) -> Cell:
    """One cell whose every statistic is the median of the same statistic over `cells` (same concurrency)."""
    metrics = {}
    for tag in cells[0].metrics:
        stats = {stat for cell in cells for stat, value in cell.metrics.get(tag, {}).items()
                 if isinstance(value, (int, float))}
        metrics[tag] = {stat: statistics.median(cell.metrics[tag][stat] for cell in cells
                                                if isinstance(cell.metrics.get(tag, {}).get(stat), (int, float)))
                        for stat in stats}
    return Cell(cells[0].concurrency, metrics, cells[0].aiperf_version, cells[0].config)


def probe_body(plan: OverheadPlan, logit_bias: dict) -> dict:
    """The paired probe's request: the aiperf workload's shape (thinking off, plain text, OSL via ignore_eos)."""
    prompt = (PROMPT_WORD * (plan.isl // len(PROMPT_WORD) + 1))[:plan.isl]
    return {"model": SERVED_MODEL_NAME, "messages": [{"role": "user", "content": prompt}], "max_tokens": plan.osl,
            "ignore_eos": True, "stream": True, "chat_template_kwargs": THINKING_KWARGS["off"], "logit_bias": logit_bias}


def _probe_round(urls: dict[str, str], key: str, paths, body: dict, requests: int) -> dict[str, list[Sample]]:
    clients = {path: StreamClient(urls[path], key if "gateway" in path else None) for path in paths}
    try:
        return probe(clients, body, requests, PROBE_WARMUP)
    finally:
        for client in clients.values():
            client.close()


def measure(model_dir: Path, work: Path, tokenizer: Path, plan: OverheadPlan,
            profile_adapter: bool = False) -> Measured:
    """Per round: the aiperf workload against each path of one replica + adapter + smg chain, then the paired
    probe over the three paths; `repeats` rounds.

    With `profile_adapter`, one more adapter-only probe round follows with py-spy sampling the adapter
    (work/adapter.folded); it is not part of the medians, since sampling slows the process it samples."""
    key = secrets.token_urlsafe(24)
    rounds: dict[str, list[list[Cell]]] = {path: [] for path in PATHS}
    paired, adapter_cpu = [], []
    with Topology(cpu_backend(model_dir), work / "logs", replicas=1, adapters=True, gateway_key=key) as chain:
        urls = {"direct": chain.replicas[0].url, "adapter": chain.adapters[0].url, "gateway+adapter": chain.gateway.url}
        base = Workload(url="", model=SERVED_MODEL_NAME, tokenizer=tokenizer, concurrency=plan.concurrency, isl=plan.isl,
                        osl=plan.osl, requests_per_user=plan.requests_per_user, goodput="",
                        logit_bias=plain_text_bias(tokenizer))
        for round_index in range(plan.repeats):
            for path in PATHS:
                work_item = replace(base, url=urls[path], api_key=key if "gateway" in path else None)
                out = work / "aiperf" / f"{path.replace('+', '-')}-{round_index}"
                rounds[path].append(load_cells(run_aiperf(work_item, out)))
            adapter_pid, before = chain.adapters[0].process.pid, cpu_seconds(chain.adapters[0].process.pid)
            paired.append(_probe_round(urls, key, PATHS, probe_body(plan, base.logit_bias), plan.paired_requests))
            served = 2 * (plan.paired_requests + PROBE_WARMUP)  # requests of the adapter and the gateway paths
            adapter_cpu.append(1000 * (cpu_seconds(adapter_pid) - before) / served)
        if profile_adapter:
            with Sampler(chain.adapters[0].process.pid, work / "adapter.folded"):
                _probe_round(urls, key, ("adapter",), probe_body(plan, base.logit_bias), plan.paired_requests)
    cells = {path: [median_cell(list(cells)) for cells in zip(*runs, strict=True)] for path, runs in rounds.items()}
    return Measured(cells, paired, adapter_cpu)


def _by_concurrency(cells: list[Cell]) -> dict[int, Cell]:
    return {cell.concurrency: cell for cell in cells}


def comparison_rows(measured: dict[str, list[Cell]]) -> list[dict]:
    """One row per path and concurrency: latencies, output tok/s, and deltas against the previous hop."""
    rows, previous = [], None
    for path in PATHS:
        cells = _by_concurrency(measured[path])
        direct = _by_concurrency(measured["direct"])
        for level, cell in cells.items():
            row = {"path": path, "concurrency": level,
                   "output_tok_s": cell.stat("output_token_throughput"),
                   "errors_pct": cell.stat("request_error_rate") or 0.0, "visible_osl": visible_osl(cell),
                   "ratio_to_direct": cell.stat("output_token_throughput") / direct[level].stat("output_token_throughput")}
            for label, tag, stat in LATENCIES:
                row[label] = cell.stat(tag, stat)
                hop = _by_concurrency(measured[previous])[level].stat(tag, stat) if previous else None
                row[f"{label} added"] = None if hop is None else cell.stat(tag, stat) - hop
            rows.append(row)
        previous = path
    return rows


def paired_rows(rounds: list[dict[str, list[Sample]]]) -> list[dict]:
    """One row per path: medians over rounds of each round's median, and of each round's paired differences
    against the path one hop shorter."""
    rows = []
    for path in PATHS:
        row = {"path": path, "chunks": statistics.median(s.chunks for samples in rounds for s in samples[path])}
        for _, field in PROBE_FIELDS:
            row[field] = statistics.median(statistics.median(getattr(s, field) for s in r[path]) for r in rounds)
            base = dict(HOPS).get(path)
            row[f"{field} added"] = (statistics.median(added(r, path, base, field) for r in rounds)
                                     if base else None)
        rows.append(row)
    return rows


def same_stream_goal(rows: list[dict], probe_rows: list[dict], osl: int) -> GoalResult:
    """Every path streamed (nearly) the requested OSL of visible tokens, in aiperf's count and in the paired
    probe's chunks: the hops were compared like with like."""
    seen = [(f"{row['path']} c={row['concurrency']}", row["visible_osl"]) for row in rows]
    seen += [(f"{row['path']} probe chunks", row["chunks"]) for row in probe_rows]
    passed = all(value is not None and value >= VISIBLE_FLOOR * osl for _, value in seen)
    measured = ", ".join(f"{name}: {'usage-counted' if value is None else format(value, '.1f')}" for name, value in seen)
    return GoalResult("overhead: visible tokens per request, every path", f">= {VISIBLE_FLOOR:.0%} of OSL {osl}",
                      measured, passed)


def goals(rows: list[dict], probe_rows: list[dict], osl: int) -> list[GoalResult]:
    top = max(row["concurrency"] for row in rows)
    results = [same_stream_goal(rows, probe_rows, osl)]
    for row in probe_rows:
        for label, field in PROBE_FIELDS:
            if row[f"{field} added"] is not None:
                results.append(GoalResult(f"overhead: {row['path']} hop, {label} p50, c=1 (paired)",
                                          f"<= {HOP_GOAL_MS:g} ms added", f"{row[f'{field} added']:+.2f} ms",
                                          row[f"{field} added"] <= HOP_GOAL_MS))
    for row in rows:
        if row["path"] != "direct" and row["concurrency"] == top:
            results.append(GoalResult(f"overhead: {row['path']} throughput, c={top}", f">= {THROUGHPUT_GOAL:g}x direct",
                                       f"{row['ratio_to_direct']:.3f}x ({row['output_tok_s']:.0f} tok/s)",
                                       row["ratio_to_direct"] >= THROUGHPUT_GOAL))
    return results


def markdown(rows: list[dict]) -> str:
    headers = ["path", "concurrency", *(label for label, *_ in LATENCIES), "TTFT p50 added", "ITL p50 added",
               "output tok/s", "x direct", "visible tokens", "errors %"]
    lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
    for row in rows:
        added = [("–" if row[f"{k} added"] is None else f"{row[f'{k} added']:+.2f}") for k in ("TTFT p50", "ITL p50")]
        cells = [row["path"], str(row["concurrency"]), *(f"{row[label]:.2f}" for label, *_ in LATENCIES), *added,
                 f"{row['output_tok_s']:.1f}", f"{row['ratio_to_direct']:.3f}",
                 "–" if row["visible_osl"] is None else f"{row['visible_osl']:.1f}", f"{row['errors_pct']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def probe_markdown(probe_rows: list[dict]) -> str:
    headers = ["path", "visible chunks", "first visible byte p50 ms", "added", "chunk gap p50 ms", "added"]
    lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
    for row in probe_rows:
        cells = [row["path"], f"{row['chunks']:.0f}"]
        for _, field in PROBE_FIELDS:
            extra = row[f"{field} added"]
            cells += [f"{row[field]:.2f}", "–" if extra is None else f"{extra:+.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(out: Path, plan: OverheadPlan, measured: Measured, work: Path, command: str = "",
                 force: bool = False) -> Path:
    """overhead.md (aiperf comparison, paired probe, goals, the adapter profile when `work` holds one),
    overhead.json and the raw aiperf exports moved in from `work`."""
    rows, probe_rows = comparison_rows(measured.cells), paired_rows(measured.paired)
    text = (f"# Overhead: direct vs adapter vs smg + adapter (CPU stand-in)\n\nISL {plan.isl} / OSL {plan.osl}, "
            f"thinking off, plain-text output (letters and digits), {plan.repeats} rounds. Measured with "
            f"`{command}`.\n\n"
            f"## aiperf (median of the rounds; added = against the path one hop shorter)\n\n{markdown(rows)}\n"
            f"## Paired probe, concurrency 1 ({plan.paired_requests} requests per path and round, paths taking "
            f"turns; median over rounds of each round's median)\n\n{probe_markdown(probe_rows)}\n"
            f"Adapter process CPU per request it served in the probe (request, {plan.osl} chunks, end): "
            f"{', '.join(f'{ms:.2f}' for ms in measured.adapter_cpu_ms)} ms per round.\n\n"
            f"## Goals\n\n{goal_table(goals(rows, probe_rows, plan.osl))}")
    with replaced_directory(out, OVERHEAD_REPORT, force) as staging:
        if (work / "adapter.folded").exists():
            shutil.move(str(work / "adapter.folded"), staging / "adapter.folded")
            text += f"\n## Adapter profile (py-spy)\n\n{profile_table(summary(staging / 'adapter.folded'))}"
        (staging / "overhead.md").write_text(text)
        (staging / "overhead.json").write_text(json.dumps({"plan": plan.__dict__, "rows": rows, "paired": probe_rows,
                                                          "adapter_cpu_ms_per_request": measured.adapter_cpu_ms,
                                                          "paired_samples": [{path: [sample.__dict__ for sample in samples]
                                                                              for path, samples in r.items()}
                                                                             for r in measured.paired]}, indent=2) + "\n")
        shutil.move(str(work / "aiperf"), staging / "aiperf")
    return Path(out)
