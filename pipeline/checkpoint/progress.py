"""A thread-safe byte progress line on stderr: done/total, percent, rate and ETA."""

from __future__ import annotations

import sys
import threading
import time

GB = 1e9


class Progress:
    def __init__(self, total: int, label: str, stream=None):
        self.total, self.label = max(total, 1), label
        self.stream = stream or sys.stderr
        self.interval = 0.5 if self.stream.isatty() else 5.0
        self.done = 0
        self.start = self.last = time.monotonic()
        self.lock = threading.Lock()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate else float("inf")
        return (f"{self.label}: {self.done / GB:.2f}/{self.total / GB:.2f} GB {100 * self.done / self.total:3.0f}% "
                f"{rate / 1e6:.0f} MB/s ETA {eta:.0f}s")

    def update(self, nbytes: int) -> None:
        with self.lock:
            self.done += nbytes
            now = time.monotonic()
            if now - self.last >= self.interval:
                self.last = now
                end = "\r" if self.stream.isatty() else "\n"
                print(self.line(), end=end, file=self.stream, flush=True)

    def close(self) -> None:
        print(self.line(), file=self.stream, flush=True)
