"""Convert throughput at the real A13B layer widths, against plain `cp` of the same bytes in the same run.

Builds a synthetic HF checkpoint in a temp dir under /tmp (hidden 4096, 32 q / 8 kv heads of 128, 64 experts
of width 3072, LAYERS layers, bf16, several shards), then times, on the same warm page cache:
  cp      `cp --reflink=never -r` of the shard files + `sync` of the copies (bytes on disk);
  convert `hunyuan-trt convert --tp 2 --ep 2` in a child process (includes interpreter start-up; the
          converter fsyncs every file before its atomic rename);
and prints GB/s of source bytes for both, the ratio convert/cp, and the converter's peak RSS (GNU
`/usr/bin/time -v`). Everything under the temp dir is deleted at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.tinygen import tiny_config, write_checkpoint

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


def run(layers: int, vocab: int, shards: int, workers: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-convert-", dir="/tmp"))
    try:
        hf = work / "hf"
        hf.mkdir()
        start = time.monotonic()
        write_checkpoint(tiny_config(num_hidden_layers=layers, vocab_size=vocab, **A13B_WIDTHS), hf, shards=shards)
        generated = time.monotonic() - start
        size = source_bytes(hf)
        copy = work / "cp"
        copy.mkdir()
        files = sorted(str(p) for p in hf.glob("*.safetensors"))
        cp_seconds = timed(["cp", "--reflink=never", *files, str(copy)])[0] + timed(
            ["sync", *(str(p) for p in copy.iterdir())])[0]
        shutil.rmtree(copy)
        out = work / "trt"
        convert_seconds, report = timed([GNU_TIME, "-v", sys.executable, "-c", "from pipeline.cli import main; main()", "convert",
                                 "--model-dir", str(hf), "--profile", "h200x2", "--tp", "2", "--ep", "2",
                                 "--workers", str(workers), "--out", str(out)])
        internal = float(re.search(r" in ([0-9.]+) s ", report.stdout).group(1))  # the converter's own write time
        written = sum(p.stat().st_size for p in out.iterdir())
        peak_rss = peak_rss_bytes(report.stderr)
        return {"layers": layers, "source_gb": size / 1e9, "written_gb": written / 1e9, "generate_s": generated,
                "cp_s": cp_seconds, "cp_gb_s": size / 1e9 / cp_seconds, "convert_s": convert_seconds,
                "convert_gb_s": size / 1e9 / convert_seconds, "ratio": cp_seconds / convert_seconds,
                "convert_write_s": internal, "ratio_write_only": cp_seconds / internal,
                "peak_rss_gib": peak_rss / 2**30, "workers": workers}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=1, help="decoder layers (1 layer ≈ 5 GB of bf16)")
    parser.add_argument("--vocab", type=int, default=16384, help="vocab size (the real 128167 adds 1 GB)")
    parser.add_argument("--shards", type=int, default=8, help="safetensors shard files of the source")
    parser.add_argument("--workers", type=int, default=2, help="convert --workers")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    result = run(args.layers, args.vocab, args.shards, args.workers)
    print(f"source: {result['source_gb']:.2f} GB ({args.layers} layer(s) at A13B widths), converted to "
          f"{result['written_gb']:.2f} GB at tp=2/ep=2")
    print(f"cp + sync : {result['cp_s']:6.1f} s  {result['cp_gb_s']:.3f} GB/s")
    print(f"convert   : {result['convert_s']:6.1f} s  {result['convert_gb_s']:.3f} GB/s  (ratio convert/cp = "
          f"{result['ratio']:.2f}, goal >= 0.8)")
    print(f"  of which writing: {result['convert_write_s']:.1f} s (ratio {result['ratio_write_only']:.2f}); the rest is "
          "interpreter start-up, imports and planning")
    print(f"peak RSS  : {result['peak_rss_gib']:.2f} GiB (goal <= 2 GiB)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
