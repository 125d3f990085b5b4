"""Overhead benchmark: the same aiperf workload direct to a CPU replica, through the adapter, and through
smg + adapter, in one run; added TTFT/ITL per hop and throughput ratios against direct.

Like with like: the replica is asked for plain text (`plain_text`: letters and digits only), so its raw
output holds no markup for the adapter to strip or hold back, and every path streams the same visible
tokens, one per chunk; aiperf counts the tokens it received. A path whose visible output is short fails the
comparison instead of reporting a hop cost measured on different streams.

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

from pipeline.bench.aiperf import Workload, run_aiperf
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


@dataclass(frozen=True)
class OverheadPlan:
    concurrency: tuple[int, ...] = (1, 16)
    isl: int = 128
    osl: int = 32
    requests_per_user: int = 6
    repeats: int = 2  # rounds over the three paths; each statistic is the median over the rounds


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


def measure(model_dir: Path, work: Path, tokenizer: Path, plan: OverheadPlan,
            profile_adapter: bool = False) -> dict[str, list[Cell]]:
    """Run the workload against each path of one replica + adapter + smg chain, round-robin `repeats` times.

    With `profile_adapter`, one more adapter-only run follows with py-spy sampling the adapter
    (work/adapter.folded); it is not part of the medians, since sampling slows the process it samples."""
    key = secrets.token_urlsafe(24)
    rounds: dict[str, list[list[Cell]]] = {path: [] for path in PATHS}
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
        if profile_adapter:
            with Sampler(chain.adapters[0].process.pid, work / "adapter.folded"):
                run_aiperf(replace(base, url=urls["adapter"]), work / "aiperf" / "adapter-profiled")
    return {path: [median_cell(list(cells)) for cells in zip(*runs, strict=True)] for path, runs in rounds.items()}


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


def same_stream_goal(rows: list[dict], osl: int) -> GoalResult:
    """Every path streamed (nearly) the requested OSL of visible tokens: the hops were compared like with like."""
    seen = [row["visible_osl"] for row in rows]
    passed = all(value is not None and value >= VISIBLE_FLOOR * osl for value in seen)
    measured = ", ".join(f"{row['path']} c={row['concurrency']}: "
                         f"{'usage-counted' if row['visible_osl'] is None else format(row['visible_osl'], '.1f')}"
                         for row in rows)
    return GoalResult("overhead: visible tokens per request, every path", f">= {VISIBLE_FLOOR:.0%} of OSL {osl}",
                      measured, passed)


def goals(rows: list[dict], osl: int) -> list[GoalResult]:
    top = max(row["concurrency"] for row in rows)
    results = [same_stream_goal(rows, osl)]
    for row in rows:
        if row["path"] == "direct":
            continue
        for label in ("TTFT p50", "ITL p50"):
            added = row[f"{label} added"]
            results.append(GoalResult(f"overhead: {row['path']} hop, {label}, c={row['concurrency']}",
                                       f"<= {HOP_GOAL_MS:g} ms added", f"{added:+.2f} ms", added <= HOP_GOAL_MS))
        if row["concurrency"] == top:
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


def write_report(out: Path, plan: OverheadPlan, rows: list[dict], work: Path, force: bool = False) -> Path:
    """overhead.md (comparison, goals, the adapter profile when `work` holds one), overhead.json and the raw
    aiperf exports moved in from `work`."""
    text = (f"# Overhead: direct vs adapter vs smg + adapter (CPU stand-in)\n\nISL {plan.isl} / OSL {plan.osl}, "
            f"thinking off, plain-text output (letters and digits), median of {plan.repeats} rounds per path.\n\n"
            f"{markdown(rows)}\n## Goals\n\n{goal_table(goals(rows, plan.osl))}")
    with replaced_directory(out, OVERHEAD_REPORT, force) as staging:
        if (work / "adapter.folded").exists():
            shutil.move(str(work / "adapter.folded"), staging / "adapter.folded")
            text += f"\n## Adapter profile (py-spy)\n\n{profile_table(summary(staging / 'adapter.folded'))}"
        (staging / "overhead.md").write_text(text)
        (staging / "overhead.json").write_text(json.dumps({"plan": plan.__dict__, "rows": rows}, indent=2) + "\n")
        shutil.move(str(work / "aiperf"), staging / "aiperf")
    return Path(out)
