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


ENGINE_PANELS = (("TTFT p50 (ms)", "time_to_first_token.p50"), ("ITL p50 (ms)", "inter_token_latency.p50"),
                 ("output tokens/s", "output_token_throughput.avg"))


def write_engine_plot(comparison: dict, modes: list[str], path: Path) -> Path:
    """One figure, a line per engine (colour) and thinking mode (style) in each panel; the profile's roofline
    as a black line in the throughput panel (log scale: a GPU roofline is far above a CPU stand-in)."""
    engines = comparison["engines"]
    levels = sorted({row["concurrency"] for e in engines.values() for rows in e["modes"].values() for row in rows})
    fig, axes = plt.subplots(1, len(ENGINE_PANELS), figsize=(15, 4))
    for axis, (label, key) in zip(axes, ENGINE_PANELS, strict=True):
        for colour, (engine, summary) in enumerate(engines.items()):
            for mode in modes:
                axis.plot(*_series(summary["modes"].get(mode, []), key), MODE_STYLES.get(mode, ":"),
                          color=f"C{colour}", marker="o", label=f"{engine}, thinking {mode}")
        axis.set(xlabel="concurrency", ylabel=label, title=label.split(" (")[0])
    roofline = next(iter(engines.values()))["modes"][modes[0]]
    axes[-1].plot(*_series(roofline, "roofline_tok_s"), "-", color="black", label=f"roofline {comparison['profile']}")
    axes[-1].set_yscale("log")
    for axis in axes:
        _axes_style(axis, levels)
    fig.suptitle(f"{comparison['hardware']}: the same load against each engine")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
