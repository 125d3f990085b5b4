"""Drill results as one table: printed by `hunyuan-trt drills`, written to reports/drills.md."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.goals import GoalResult, goal_table
from pipeline.outputs import write_text_atomic


def markdown(results: list[GoalResult], header: str = "") -> str:
    return "\n".join(["# Fault drills", "", *([header, ""] if header else []), goal_table(results, "drill")])


def write_report(results: list[GoalResult], path: Path, command: str) -> Path:
    """Atomic write of the table with the command and time that produced it."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = f"Produced by `{command}` on {stamp} (2-core CPU machine, CPU stand-in replicas)."
    return write_text_atomic(Path(path), markdown(results, header))
