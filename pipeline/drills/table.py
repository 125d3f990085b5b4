"""Drill results as one table: printed by `hunyuan-trt drills`, written to reports/drills.md."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.goals import GoalResult, goal_table
from pipeline.outputs import write_text_atomic


def markdown(results: list[GoalResult], header: str = "") -> str:
    return "\n".join(["# Fault drills", "", *([header, ""] if header else []), goal_table(results, "drill")])


def write_report(results: list[GoalResult], path: Path, command: str) -> Path:
    """Atomic write of the table with the command and time that produced it."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = "/".join(f"{value:.1f}" for value in os.getloadavg())
    header = (f"Produced by `{command}` on {stamp} ({os.cpu_count()}-core CPU machine shared with other work: load "
              f"average {load} (1/5/15 min) when it ended; CPU stand-in replicas).")
    return write_text_atomic(Path(path), markdown(results, header))
