"""Sample a running process with py-spy while a benchmark drives it; summarise where its time goes.

`Sampler` wraps `py-spy record --format raw` (folded stacks) on a PID and stops it with SIGINT, which makes
py-spy write its output. `summary` turns the folded stacks into the top self-time frames and the
inclusive share of the project's own frames, the two views that find a hotspot.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from pipeline.errors import PipelineError

RATE_HZ = 200


class Sampler:
    def __init__(self, pid: int, out: Path):
        # the dev extra installs py-spy next to this interpreter, which need not be on PATH (.venv/bin/hunyuan-trt)
        binary = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if binary is None:
            raise PipelineError("--profile-adapter needs py-spy: pip install py-spy (it is in the dev extra)")
        self.out = Path(out)
        self.argv = [binary, "record", "--pid", str(pid), "--format", "raw", "--output", str(self.out),
                     "--rate", str(RATE_HZ), "--nonblocking"]
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Sampler:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        if not self.out.is_file():
            raise PipelineError(f"py-spy wrote no profile ({err.decode(errors='replace').strip()[-200:]}); "
                                "it needs ptrace permission (root or CAP_SYS_PTRACE)")


def summary(folded: Path, own_prefix: str = "pipeline/", top: int = 12) -> dict:
    """{'samples', 'self': [(pct, frame)], 'own_inclusive': [(pct, frame)]} from py-spy's raw output."""
    self_time, inclusive, total = Counter(), Counter(), 0
    for line in Path(folded).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames, samples = stack.split(";"), int(count)
        total += samples
        self_time[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if total == 0:
        raise PipelineError(f"{folded}: py-spy recorded no samples")
    own = [(frame, n) for frame, n in inclusive.most_common() if own_prefix in frame
           and "__main__" not in frame and "commands/" not in frame]  # entry points include everything
    return {"samples": total, "self": _shares(self_time.most_common(top), total),
            "own_inclusive": _shares(own[:top], total)}


def _shares(counts: list[tuple[str, int]], total: int) -> list[tuple[float, str]]:
    return [(round(100 * n / total, 1), frame) for frame, n in counts]


def markdown(result: dict) -> str:
    lines = [f"{result['samples']} samples at {RATE_HZ} Hz.", "", "| self % | frame |", "|---:|---|"]
    lines += [f"| {pct} | `{frame}` |" for pct, frame in result["self"]]
    lines += ["", "| inclusive % | project frame |", "|---:|---|"]
    lines += [f"| {pct} | `{frame}` |" for pct, frame in result["own_inclusive"]]
    return "\n".join(lines) + "\n"
