"""Drill results as one table: printed by `hunyuan-trt drills`, written to reports/drills.md."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class DrillResult:
    drill: str
    goal: str
    measured: str
    passed: bool
    details: list[str] = field(default_factory=list)  # failures worth reading, one line each


def markdown(results: list[DrillResult], header: str = "") -> str:
    lines = ["# Fault drills", "", *([header, ""] if header else []),
             "| drill | goal | measured | result |", "|---|---|---|---|"]
    lines += [f"| {r.drill} | {r.goal} | {r.measured} | {'PASS' if r.passed else 'FAIL'} |" for r in results]
    failures = [(r.drill, detail) for r in results for detail in r.details]
    if failures:
        lines += ["", "## Details", ""] + [f"- {drill}: {detail}" for drill, detail in failures]
    return "\n".join(lines) + "\n"


def write_report(results: list[DrillResult], path: Path, command: str) -> Path:
    """Atomic write of the table with the command and time that produced it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = f"Produced by `{command}` on {stamp} (2-core CPU machine, CPU stand-in replicas)."
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(markdown(results, header))
    temporary.replace(path)
    return path
