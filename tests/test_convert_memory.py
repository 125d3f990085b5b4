"""Streaming: the converter's peak RSS must not grow with the model (5× the layers, same peak).

The child reports VmHWM (peak RSS of its own address space). ru_maxrss would not do: Linux carries the
parent's peak across fork/exec, and the parent here has just generated the checkpoint.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# ~25 MB of bf16 experts per layer: 16 experts x 3 x 512 x 512
WIDTHS = {"hidden_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 128,
          "intermediate_size": 512, "num_experts": 16, "moe_topk": 2, "vocab_size": 1024, "torch_dtype": "bfloat16"}


def peak_rss_of_convert(tmp_path, layers: int) -> int:
    hf = tmp_path / f"hf{layers}"
    hf.mkdir()
    write_checkpoint(tiny_config(num_hidden_layers=layers, **WIDTHS), hf, shards=layers)
    code = ("from pipeline.cli import main\n"
            "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
            "print('peak', open('/proc/self/status').read().split('VmHWM:')[1].split()[0])")
    done = subprocess.run([sys.executable, "-c", code, "convert", "--model-dir", str(hf), "--profile", "cpu-tiny",
                           "--tp", "2", "--ep", "2", "--workers", "1", "--out", str(tmp_path / f"out{layers}")],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.split("peak")[-1]) * 1024  # VmHWM is in kB


def test_peak_rss_does_not_grow_with_model_size(tmp_path):
    small, large = peak_rss_of_convert(tmp_path, 1), peak_rss_of_convert(tmp_path, 5)
    layer_bytes = 16 * 3 * 512 * 512 * 2
    assert large - small < layer_bytes / 2, (small, large)
    assert large < small + 4 * layer_bytes  # would fail if the model were held in memory
