"""The quantize stage at the real A13B layer widths, against plain `cp` of the same bytes in the same run.

Builds in a temp dir under /tmp a synthetic BF16 HF checkpoint (bench_convert's A13B widths, LAYERS layers)
and, from it, a synthetic checkpoint in Tencent's published FP8 layout (`make-tiny --published-fp8 --source`),
then times ROUNDS rounds alternating which goes first:
  int8-wo  `hunyuan-trt quantize --format int8-wo --method stream` of the BF16 checkpoint, vs `cp` + `sync`
           of the BF16 shards (the bytes it reads);
  published `hunyuan-trt quantize --from-published` of the FP8 checkpoint, vs `cp` + `sync` of its shards
           (the bytes it reads and writes: no weight changes, so it should be close to cp);
each in a child process under GNU time (peak RSS; includes interpreter start-up and fsync before the rename).
Prints GB/s of source bytes, the ratio cp_s / quantize_s and the peak RSS. The temp dir is deleted at the end.
ModelOpt (fp8) needs the whole model in memory and is not benchmarked here (docs/quantize.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench_convert import A13B_WIDTHS, peak_rss_bytes, source_bytes, time_cp, timed

from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

CLI = [sys.executable, "-c", "from pipeline.cli import main; main()"]
GNU_TIME = "/usr/bin/time"
CASES = {  # name -> (source directory name, quantize arguments)
    "int8-wo": ("hf", ["--format", "int8-wo", "--method", "stream"]),
    "published": ("published", ["--from-published"]),
}


def time_quantize(source: Path, args: list[str], work: Path) -> dict:
    out = work / "q"
    try:
        seconds, report = timed([GNU_TIME, "-v", *CLI, "quantize", "--model-dir", str(source), *args,
                                 "--out", str(out)])
        written = source_bytes(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"quantize_s": seconds, "written_gb": written / 1e9, "peak_rss_gib": peak_rss_bytes(report.stderr) / 2**30}


def run(layers: int, vocab: int, rounds: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-quantize-", dir="/tmp"))
    try:
        hf = work / "hf"
        hf.mkdir()
        write_checkpoint(tiny_config(num_hidden_layers=layers, vocab_size=vocab, **A13B_WIDTHS), hf, shards=4)
        timed([*CLI, "make-tiny", "--published-fp8", "--source", str(hf), "--out", str(work / "published")])
        summary = {"layers": layers, "cases": {}}
        for case, (directory, args) in CASES.items():
            source, results = work / directory, []
            size = source_bytes(source) / 1e9
            for index in range(rounds):
                cp_first = index % 2 == 0
                cp_s = time_cp(source, work) if cp_first else None
                result = time_quantize(source, args, work)
                result["cp_s"] = cp_s if cp_first else time_cp(source, work)
                result.update(source_gb=size, cp_first=cp_first, ratio=result["cp_s"] / result["quantize_s"])
                results.append(result)
            summary["cases"][case] = {"rounds": results, "median_ratio": statistics.median(r["ratio"] for r in results),
                                      "max_peak_rss_gib": max(r["peak_rss_gib"] for r in results)}
        return summary
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=1, help="decoder layers (1 layer ≈ 5 GB of bf16)")
    parser.add_argument("--vocab", type=int, default=16384, help="vocab size (the real 128167 adds 1 GB)")
    parser.add_argument("--rounds", type=int, default=2, help="cp/quantize rounds per case, alternating order")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    summary = run(args.layers, args.vocab, args.rounds)
    for case, result in summary["cases"].items():
        for number, r in enumerate(result["rounds"], 1):
            order = "cp first" if r["cp_first"] else "quantize first"
            print(f"{case} round {number} ({order}): source {r['source_gb']:.2f} GB | cp + sync {r['cp_s']:5.1f} s "
                  f"{r['source_gb'] / r['cp_s']:.3f} GB/s | quantize {r['quantize_s']:5.1f} s "
                  f"{r['source_gb'] / r['quantize_s']:.3f} GB/s -> {r['written_gb']:.2f} GB | ratio {r['ratio']:.2f} | "
                  f"peak RSS {r['peak_rss_gib']:.2f} GiB")
        print(f"{case}: median ratio quantize/cp = {result['median_ratio']:.2f}; peak RSS "
              f"{result['max_peak_rss_gib']:.2f} GiB (goal <= 2 GiB)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
