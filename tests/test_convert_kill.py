"""A converter killed with SIGKILL mid-write leaves no directory that looks complete, and the next run
cleans up after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

# ~25 MB of bf16 experts per layer, 8 layers: long enough to be caught mid-write
WIDTHS = {"hidden_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 128,
          "intermediate_size": 512, "num_experts": 16, "moe_topk": 2, "vocab_size": 1024, "torch_dtype": "bfloat16"}


def command(hf, out):
    return [sys.executable, "-c", "from pipeline.cli import main; main()", "convert", "--model-dir", str(hf),
            "--profile", "cpu-tiny", "--tp", "2", "--ep", "2", "--workers", "1", "--out", str(out)]


def wait_for_partial_rank_file(tmp_path, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        for partial in tmp_path.glob(".out.partial-*"):
            rank = partial / "rank0.safetensors"
            if rank.is_file() and rank.stat().st_size > 0:
                return partial
        time.sleep(0.002)
    raise AssertionError(f"no partial rank file appeared (converter exit code {process.poll()})")


def test_sigkill_mid_write_leaves_only_a_hidden_partial_dir(tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    write_checkpoint(tiny_config(num_hidden_layers=8, **WIDTHS), hf, shards=4)
    out = tmp_path / "out"
    process = subprocess.Popen(command(hf, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        partial = wait_for_partial_rank_file(tmp_path, process)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not out.exists() and not (partial / "manifest.json").exists()
    subprocess.run(command(hf, out), check=True, capture_output=True)
    assert (out / "manifest.json").is_file() and not partial.exists()
