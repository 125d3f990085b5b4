"""The side-by-side engine report: the same aiperf load against several labelled endpoints (one per engine),
one table per thinking mode with TTFT / ITL / throughput per concurrency per engine, one plot with a line per
engine, and the profile's roofline. Each engine's rows are `report.summarize`'s, so the numbers, flags and
roofline are computed exactly as in the single-endpoint report.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from pipeline.bench.report import flag_note, summarize
from pipeline.bench.results import Cell
from pipeline.errors import PipelineError
from pipeline.outputs import ENGINES_REPORT, replaced_directory

LABEL = re.compile(r"[a-z][a-z0-9_.-]*")
# (column header, summary row key, number format)
COLUMNS = (
    ("TTFT p50 ms", "time_to_first_token.p50", "{:.1f}"),
    ("TTFT p90 ms", "time_to_first_token.p90", "{:.1f}"),
    ("ITL p50 ms", "inter_token_latency.p50", "{:.2f}"),
    ("ITL p90 ms", "inter_token_latency.p90", "{:.2f}"),
    ("output tok/s", "output_token_throughput.avg", "{:.1f}"),
    ("req/s", "request_throughput.avg", "{:.2f}"),
    ("errors %", "request_error_rate.avg", "{:.1f}"),
    ("roofline tok/s", "roofline_tok_s", "{:,.0f}"),
    ("% of roofline", "pct_of_roofline", "{:.2f}"),
)
SHARED = ("profile", "slug", "hardware", "isl", "osl", "goodput_slo", "plan", "roofline")  # same for every engine


def parse_urls(text: str) -> dict[str, str]:
    """'trtllm=http://a:8000,vllm=http://b:8000' -> {label: url}, in the order given."""
    urls: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        label, _, url = part.partition("=")
        if not LABEL.fullmatch(label) or not url.startswith(("http://", "https://")) or label in urls:
            raise PipelineError(f"--urls '{part}': expected LABEL=http(s)://HOST:PORT with a distinct lowercase "
                                "label per endpoint, e.g. trtllm=http://10.0.0.1:8000,vllm=http://10.0.0.2:8000")
        urls[label] = url.rstrip("/")
    if not urls:
        raise PipelineError("--urls: expected at least one LABEL=URL")
    return urls


def compare(profile: str, engines: dict[str, dict[str, list[Cell]]], command: str = "") -> dict:
    """One summary per engine (report.summarize), the fields they share lifted to the top."""
    summaries = {label: summarize(profile, modes, command) for label, modes in engines.items()}
    first = next(iter(summaries.values()))
    mismatched = [label for label, s in summaries.items() if (s["isl"], s["osl"]) != (first["isl"], first["osl"])]
    if mismatched:
        raise PipelineError(f"engines {', '.join(mismatched)}: their aiperf exports ran another ISL/OSL than "
                            f"{next(iter(summaries))} ({first['isl']}/{first['osl']}); compare the same load")
    return {**{key: first[key] for key in SHARED}, "command": command, "measured_at": first["measured_at"],
            "engines": {label: {key: s[key] for key in ("url", "model", "aiperf_version", "modes")}
                        for label, s in summaries.items()}}


def modes_of(comparison: dict) -> list[str]:
    return list(dict.fromkeys(mode for e in comparison["engines"].values() for mode in e["modes"]))


def _cells(label: str, row: dict) -> list[str]:
    blank = "FLAGGED" if row.get("flag") else "–"
    values = [blank if row[key] is None else pattern.format(row[key]) for _, key, pattern in COLUMNS]
    return [label, str(row["concurrency"]), *values]


def markdown(comparison: dict) -> str:
    headers = ["engine", "concurrency", *(header for header, *_ in COLUMNS)]
    lines = [f"# Engine benchmark: {comparison['profile']} ({comparison['hardware']})", "",
             f"The same aiperf load against each engine: ISL {comparison['isl']} / OSL {comparison['osl']}, "
             f"goodput SLO `{comparison['goodput_slo'] or 'none'}`, {comparison['measured_at']}. Roofline: "
             f"{comparison['roofline']['formula']} for profile `{comparison['profile']}` at "
             f"{comparison['roofline']['context_tokens']} context tokens.", ""]
    if comparison.get("command"):
        lines += [f"Measured with `{comparison['command']}`.", ""]
    lines += ["| engine | target | model | aiperf |", "|---|---|---|---|"]
    lines += [f"| {label} | `{e['url']}` | `{e['model']}` | {e['aiperf_version']} |"
              for label, e in comparison["engines"].items()]
    for mode in modes_of(comparison):
        lines += ["", f"## thinking {mode}", "", "| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
        notes = []
        for label, engine in comparison["engines"].items():
            rows = engine["modes"].get(mode, [])
            lines += ["| " + " | ".join(_cells(label, row)) + " |" for row in rows]
            notes += [f"{label}: {note}" for note in [flag_note(rows)] if note]
        lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"


def write_comparison(comparison: dict, out_dir: Path, extra_dirs: dict[str, Path], force: bool = False) -> Path:
    """summary.json, engines.md, engines.png and `extra_dirs` moved in (the raw aiperf exports as
    aiperf/<engine>/<mode>/, the CPU chains' logs)."""
    from pipeline.bench.plots import write_engine_plot

    with replaced_directory(out_dir, ENGINES_REPORT, force) as staging:
        (staging / "summary.json").write_text(json.dumps(comparison, indent=2) + "\n")
        (staging / "engines.md").write_text(markdown(comparison))
        write_engine_plot(comparison, modes_of(comparison), staging / "engines.png")
        for name, source in extra_dirs.items():
            shutil.move(str(source), staging / name)
    return Path(out_dir)
