"""Convert throughput at the real A13B layer widths, against plain `cp` of the same bytes in the same run.

Builds a synthetic HF checkpoint in a temp dir under /tmp (hidden 4096, 32 q / 8 kv heads of 128, 64 experts
of width 3072, LAYERS layers, bf16, several shards), then times ROUNDS rounds alternating which goes first
(the disk is shared with other work, so one round is noisy), each run cold: before it, dirty pages are
synced and the source files are dropped from the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`; outputs
are deleted after each run), and `fincore` confirms that none of the source is resident:
  cp      `cp --reflink=never` of the shard files + `sync` of the copies (bytes on disk);
  convert `hunyuan-trt convert --tp 2 --ep 2` in a child process (includes interpreter start-up; the
          converter fsyncs every file before its atomic rename);
and prints GB/s of source bytes for both, the ratio convert/cp (also on the converter's own write time), and
the converter's peak RSS (GNU `/usr/bin/time -v`). Everything under the temp dir is deleted at the end, also
on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

GNU_TIME = "/usr/bin/time"  # GNU time (Debian package `time`): peak RSS of the converter
A13B_WIDTHS = {"hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
               "intermediate_size": 3072, "num_experts": 64, "moe_topk": 8, "max_position_embeddings": 32768,
               "torch_dtype": "bfloat16"}


def source_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.safetensors"))


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return time.monotonic() - start, done


def peak_rss_bytes(time_report: str) -> int:
    """From GNU time -v. Not ru_maxrss of our own child: Linux carries the parent's peak across fork/exec,
    and this process has just generated gigabytes; time's child is forked from the small `time` process."""
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_report).group(1)) * 1024


def resident_bytes(paths: list[Path]) -> int:
    """Page-cache bytes of `paths` (util-linux `fincore`), to prove a run starts cold."""
    report = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, paths)],
                            check=True, capture_output=True, text=True).stdout
    return sum(int(line) for line in report.split())


def drop_cache(directory: Path) -> None:
    """Sync, then drop every file under `directory` from the page cache; fails loudly if any stays."""
    os.sync()
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    left = resident_bytes(files)
    if left > 1 << 20:
        raise SystemExit(f"bench-convert: {left} bytes of {directory} stay in the page cache; the run would be warm")


def time_cp(hf: Path, work: Path) -> float:
    """`cp` of the shard files, then `sync` of the copies: the same bytes, on disk."""
    copy = work / "cp"
    copy.mkdir()
    drop_cache(hf)
    try:
        files = sorted(str(p) for p in hf.glob("*.safetensors"))
        seconds = timed(["cp", "--reflink=never", *files, str(copy)])[0]
        return seconds + timed(["sync", *(str(p) for p in copy.iterdir())])[0]
    finally:
        shutil.rmtree(copy)


def time_convert(hf: Path, work: Path, workers: int) -> dict:
    out = work / "trt"
    drop_cache(hf)
    try:
        seconds, report = timed([GNU_TIME, "-v", sys.executable, "-c", "from pipeline.cli import main; main()",
                                 "convert", "--model-dir", str(hf), "--profile", "h200x2", "--tp", "2", "--ep", "2",
                                 "--workers", str(workers), "--out", str(out)])
        written = sum(p.stat().st_size for p in out.iterdir())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    internal = float(re.search(r" in ([0-9.]+) s ", report.stdout).group(1))  # the converter's own write time
    return {"convert_s": seconds, "convert_write_s": internal, "written_gb": written / 1e9,
            "peak_rss_gib": peak_rss_bytes(report.stderr) / 2**30}


def run(layers: int, vocab: int, shards: int, workers: int, rounds: int) -> dict:
    """Generate, then `rounds` rounds of cp and convert, alternating which goes first (the disk is shared)."""
    work = Path(tempfile.mkdtemp(prefix="bench-convert-", dir="/tmp"))
    try:
        hf = work / "hf"
        hf.mkdir()
        write_checkpoint(tiny_config(num_hidden_layers=layers, vocab_size=vocab, **A13B_WIDTHS), hf, shards=shards)
        size = source_bytes(hf) / 1e9
        results = []
        for index in range(rounds):
            cp_first = index % 2 == 0
            cp_s = time_cp(hf, work) if cp_first else None
            result = time_convert(hf, work, workers)
            result["cp_s"] = cp_s if cp_first else time_cp(hf, work)
            result.update(source_gb=size, cp_gb_s=size / result["cp_s"], convert_gb_s=size / result["convert_s"],
                          ratio=result["cp_s"] / result["convert_s"],
                          ratio_write_only=result["cp_s"] / result["convert_write_s"], cp_first=cp_first)
            results.append(result)
        return {"layers": layers, "workers": workers, "rounds": results,
                "median_ratio": statistics.median(r["ratio"] for r in results),
                "max_peak_rss_gib": max(r["peak_rss_gib"] for r in results)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=3, help="decoder layers (1 layer ≈ 5 GB of bf16; "
                        "the default 3 is more than half of a 23 GiB machine's RAM, so the page cache cannot hold it)")
    parser.add_argument("--vocab", type=int, default=16384, help="vocab size (the real 128167 adds 1 GB)")
    parser.add_argument("--shards", type=int, default=8, help="safetensors shard files of the source")
    parser.add_argument("--workers", type=int, default=2, help="convert --workers")
    parser.add_argument("--rounds", type=int, default=2, help="cp/convert rounds, alternating which runs first")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    summary = run(args.layers, args.vocab, args.shards, args.workers, args.rounds)
    first = summary["rounds"][0]
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    print(f"source: {first['source_gb']:.2f} GB = {first['source_gb'] / ram_gb:.2f} x RAM ({args.layers} layer(s) at "
          f"A13B widths, cold page cache before every run), converted to "
          f"{first['written_gb']:.2f} GB at tp=2/ep=2, {args.workers} workers")
    for number, r in enumerate(summary["rounds"], 1):
        order = "cp first" if r["cp_first"] else "convert first"
        print(f"round {number} ({order}): cp + sync {r['cp_s']:5.1f} s {r['cp_gb_s']:.3f} GB/s | convert "
              f"{r['convert_s']:5.1f} s {r['convert_gb_s']:.3f} GB/s (writing {r['convert_write_s']:.1f} s) | "
              f"ratio {r['ratio']:.2f} (writing only {r['ratio_write_only']:.2f}) | peak RSS {r['peak_rss_gib']:.2f} GiB")
    print(f"median cold ratio convert/cp = {summary['median_ratio']:.2f} (goal >= 0.9); "
          f"peak RSS {summary['max_peak_rss_gib']:.2f} GiB (goal <= 2 GiB)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
