"""Our benchmark report from aiperf exports: a markdown table per thinking mode (one row per concurrency),
a JSON summary with the profile, the planner's numbers and the roofline bound, and PNG plots.

Written through `pipeline.outputs`, so a report directory is complete or absent, and an existing directory
that is not a report of ours is replaced only with force.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from pipeline.bench.results import Cell, stream_flag, visible_osl, workload_of
from pipeline.bench.roofline import decode_bound_tok_s
from pipeline.memory_plan import make_plan
from pipeline.outputs import BENCH_REPORT, replaced_directory
from pipeline.profiles import load_profile

# (column header, aiperf metric tag, statistic, number format)
COLUMNS = (
    ("TTFT p50 ms", "time_to_first_token", "p50", "{:.1f}"),
    ("TTFT p90 ms", "time_to_first_token", "p90", "{:.1f}"),
    ("TTFT p99 ms", "time_to_first_token", "p99", "{:.1f}"),
    ("ITL p50 ms", "inter_token_latency", "p50", "{:.2f}"),
    ("ITL p90 ms", "inter_token_latency", "p90", "{:.2f}"),
    ("ITL p99 ms", "inter_token_latency", "p99", "{:.2f}"),
    ("latency p50 ms", "request_latency", "p50", "{:.0f}"),
    ("latency p90 ms", "request_latency", "p90", "{:.0f}"),
    ("latency p99 ms", "request_latency", "p99", "{:.0f}"),
    ("output tok/s", "output_token_throughput", "avg", "{:.1f}"),
    ("req/s", "request_throughput", "avg", "{:.2f}"),
    ("goodput req/s", "goodput", "avg", "{:.2f}"),
    ("errors %", "request_error_rate", "avg", "{:.1f}"),
)
# columns that describe a token stream: not printed for a flagged row (see results.stream_flag)
STREAM_TAGS = {"inter_token_latency", "output_token_throughput"}


def hardware_label(profile_name: str) -> str:
    profile, _ = load_profile(profile_name)
    if profile.backend == "cpu":
        return f"CPU stand-in ({profile_name}): CPU numbers, not GPU numbers"
    return f"{profile.num_gpus}x {profile.accelerator} ({profile_name})"


def cell_row(cell: Cell, bound: float) -> dict:
    """One table row; a flagged cell's stream columns are None (they measured a few chunks, not a stream)."""
    flag = stream_flag(cell)
    row = {"concurrency": cell.concurrency, "visible_osl": visible_osl(cell),
           "requested_osl": workload_of(cell)["osl"], "flag": flag}
    for _, tag, stat, _ in COLUMNS:
        row[f"{tag}.{stat}"] = None if flag and tag in STREAM_TAGS else cell.stat(tag, stat)
    output = row["output_token_throughput.avg"]
    row["roofline_tok_s"] = round(bound, 1)
    row["pct_of_roofline"] = round(100 * output / bound, 2) if output is not None and bound else None
    return row


def summarize(profile_name: str, modes: dict[str, list[Cell]], command: str = "") -> dict:
    """The JSON summary: profile, planner numbers, roofline per concurrency and one row per cell.

    The workload (url, model, ISL/OSL, SLOs) is read back from aiperf's own record of the first cell.
    """
    profile, model_spec = load_profile(profile_name)
    plan = make_plan(profile_name, profile, model_spec)
    work = workload_of(next(iter(modes.values()))[0])
    context = work["isl"] + work["osl"] // 2  # mean context while decoding
    rows = {mode: [cell_row(cell, decode_bound_tok_s(profile, model_spec, cell.concurrency, context))
                   for cell in cells] for mode, cells in modes.items()}
    versions = sorted({cell.aiperf_version for cells in modes.values() for cell in cells})
    return {
        "profile": profile_name, "slug": profile.slug, "hardware": hardware_label(profile_name), "command": command,
        "url": work["url"], "model": work["model"], "isl": work["isl"], "osl": work["osl"],
        "goodput_slo": work["goodput"],
        "aiperf_version": ", ".join(versions), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plan": plan.to_dict(),
        "roofline": {"decode_ceiling_batch1_tok_s": plan.decode_ceiling_batch1_tok_s, "context_tokens": context,
                     "formula": "performance reference §4b: B / max(t_mem, t_cmp)"},
        "modes": rows,
    }


def _fmt(value, pattern: str, blank: str = "–") -> str:
    return blank if value is None else pattern.format(value)


def _visible(row: dict) -> str:
    seen = "usage-counted" if row.get("visible_osl") is None else f"{row['visible_osl']:.0f}"
    return f"{seen} / {row['requested_osl']}"


def _cells(row: dict) -> list[str]:
    blank = "FLAGGED" if row.get("flag") else "–"
    cells = [str(row["concurrency"]), _visible(row)]
    cells += [_fmt(row[f"{tag}.{stat}"], pattern, blank) for _, tag, stat, pattern in COLUMNS]
    return cells + [_fmt(row["roofline_tok_s"], "{:,.0f}"), _fmt(row["pct_of_roofline"], "{:.2f}", blank)]


def flag_note(rows: list[dict]) -> str:
    """The paragraph under a table with flagged rows ('' when there are none)."""
    flagged = [f"concurrency {row['concurrency']}: {row['flag']}" for row in rows if row.get("flag")]
    if not flagged:
        return ""
    return (f"**FLAGGED** ({'; '.join(flagged)}): these rows measured a few chunks, not a token stream, so ITL, "
            "token throughput and % of roofline are left out. Use prompts the model answers at length, or "
            "(CPU stand-in) `--plain-text`.\n")


def markdown(summary: dict) -> str:
    headers = ["concurrency", "visible / requested OSL", *(header for header, *_ in COLUMNS), "roofline tok/s",
               "% of roofline"]
    lines = [f"# Benchmark: {summary['profile']} ({summary['hardware']})", "",
             f"Target `{summary['url']}`, model `{summary['model']}`, ISL {summary['isl']} / OSL {summary['osl']}"
             f", goodput SLO `{summary['goodput_slo'] or 'none'}`, aiperf {summary['aiperf_version']}, "
             f"{summary['measured_at']}.", ""]
    if summary.get("command"):
        lines += [f"Measured with `{summary['command']}`.", ""]
    for mode, rows in summary["modes"].items():
        lines += [f"## thinking {mode}", "", "| " + " | ".join(headers) + " |",
                  "|" + "---:|" * len(headers)]
        lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
        note = flag_note(rows)
        lines += ["", note] if note else [""]
    return "\n".join(lines)


def write_report(summary: dict, out_dir: Path, extra_dirs: dict[str, Path] | None = None,
                 force: bool = False) -> Path:
    """summary.json, report.md, plots, and `extra_dirs` moved in (e.g. the raw aiperf exports)."""
    from pipeline.bench.plots import write_plots

    with replaced_directory(out_dir, BENCH_REPORT, force) as staging:
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (staging / "report.md").write_text(markdown(summary))
        write_plots(summary, staging)
        for name, source in (extra_dirs or {}).items():
            shutil.move(str(source), staging / name)
    return Path(out_dir)
