"""PNG plots of a benchmark summary: throughput vs concurrency, TTFT and ITL percentiles vs concurrency."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

LATENCY_PANELS = (("TTFT (ms)", "time_to_first_token"), ("ITL (ms)", "inter_token_latency"))
PERCENTILES = ("p50", "p90", "p99")
MODE_STYLES = {"off": "-", "on": "--"}  # line style per thinking mode; colour per percentile


def _axes_style(axis, levels: list[int]) -> None:
    axis.set_xscale("log", base=2)
    axis.set_xticks(levels, [str(level) for level in levels])
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize="small")


def _levels(summary: dict) -> list[int]:
    return sorted({row["concurrency"] for rows in summary["modes"].values() for row in rows})


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(row["concurrency"], row[key]) for row in rows if row.get(key) is not None]
    return [c for c, _ in points], [v for _, v in points]


def _throughput(summary: dict, path: Path) -> None:
    fig, (tokens, requests) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, rows in summary["modes"].items():
        style = MODE_STYLES.get(mode, ":")
        tokens.plot(*_series(rows, "output_token_throughput.avg"), style, marker="o", label=f"thinking {mode}")
        requests.plot(*_series(rows, "request_throughput.avg"), style, marker="o", label=f"thinking {mode}")
    tokens.set(xlabel="concurrency", ylabel="output tokens/s", title="Output throughput")
    requests.set(xlabel="concurrency", ylabel="requests/s", title="Request throughput")
    for axis in (tokens, requests):
        _axes_style(axis, _levels(summary))
    fig.suptitle(summary["hardware"])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _latency(summary: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, len(LATENCY_PANELS), figsize=(10, 4))
    for axis, (label, tag) in zip(axes, LATENCY_PANELS, strict=True):
        for mode, rows in summary["modes"].items():
            for colour, stat in enumerate(PERCENTILES):
                axis.plot(*_series(rows, f"{tag}.{stat}"), MODE_STYLES.get(mode, ":"), color=f"C{colour}",
                          marker="o", label=f"{stat}, thinking {mode}")
        axis.set(xlabel="concurrency", ylabel=label, title=f"{label.split()[0]} percentiles")
        _axes_style(axis, _levels(summary))
    fig.suptitle(summary["hardware"])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(summary: dict, out_dir: Path) -> list[Path]:
    paths = [Path(out_dir) / "throughput.png", Path(out_dir) / "latency.png"]
    _throughput(summary, paths[0])
    _latency(summary, paths[1])
    return paths
