"""Goals and what was measured against them, as one markdown table: the fault drills' report and the
overhead benchmark's goals."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GoalResult:
    name: str
    goal: str
    measured: str
    passed: bool
    details: list[str] = field(default_factory=list)  # failures worth reading, one line each


def goal_table(results: list[GoalResult], subject: str = "check") -> str:
    """`| subject | goal | measured | result |` rows, then a "## Details" list of the failures' lines."""
    lines = [f"| {subject} | goal | measured | result |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.goal} | {r.measured} | {'PASS' if r.passed else 'FAIL'} |" for r in results]
    failures = [(r.name, detail) for r in results for detail in r.details]
    if failures:
        lines += ["", "## Details", ""] + [f"- {name}: {detail}" for name, detail in failures]
    return "\n".join(lines) + "\n"
