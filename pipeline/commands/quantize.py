"""`hunyuan-trt quantize`: a BF16 HF checkpoint → a quantized HF-layout checkpoint the pinned TensorRT-LLM loads."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.quantize.formats import FORMATS

METHODS = sorted({method for fmt in FORMATS.values() for method in fmt.methods})
FORMAT_HELP = "; ".join(f"{fmt.name}: {fmt.about} [{' or '.join(fmt.methods) or 'checked, not written'}]" for fmt in FORMATS.values())


@click.command("quantize")
@click.option("--model-dir", required=True, type=click.Path(path_type=Path),
              help="BF16 Hugging Face checkpoint (or, with --from-published, Tencent's FP8 checkpoint).")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="fp8", show_default=True, help=FORMAT_HELP)
@click.option("--method", type=click.Choice(METHODS),
              help="modelopt: NVIDIA ModelOpt calibrates and exports (model in GPU/CPU memory); stream: per-tensor, "
                   "bounded memory (weight-only formats) [default: the format's first]")
@click.option("--from-published", is_flag=True,
              help="Relabel Tencent's published FP8 checkpoint (AngelSlim per-tensor scales) without recalibrating.")
@click.option("--calib-file", type=click.Path(path_type=Path),
              help="JSONL calibration prompts: {\"messages\": [...], \"tools\"?, \"enable_thinking\"?} or {\"text\": ...}.")
@click.option("--calib-size", type=int, help="Use the first N calibration samples [default: all].")
@click.option("--trust-remote-code", is_flag=True, help="Load the model's own tokenizer code (Tencent's HYTokenizer).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output directory (replaced atomically).")
@click.option("--force", is_flag=True, help="Replace --out even when it is not a quantized checkpoint written by quantize.")
@click.option("--keep-current", is_flag=True,
              help="Leave --out as it is when it already holds this conversion (same source checkpoint, format, "
                   "method, tool and TensorRT-LLM pin, every file at its size); calibrated outputs are always redone.")
def quantize_cmd(model_dir, fmt, method, from_published, calib_file, calib_size, trust_remote_code, out, force,
                 keep_current):
    """Write the quantized weights, config.json (A13B key style + quantization_config), hf_quant_config.json,
    the tokenizer files and quantization_manifest.json; the layout is checked against the pinned loader facts
    before the directory appears."""
    from pipeline.errors import PipelineError
    from pipeline.quantize.stage import QuantizeRequest, quantize

    if from_published and (method or calib_file or calib_size):
        raise PipelineError("--from-published: takes no --method, --calib-file or --calib-size (nothing is calibrated)")
    result = quantize(QuantizeRequest(model_dir, out, fmt, method, from_published, calib_file, calib_size,
                                      trust_remote_code, force, keep_current))
    if result.status == "up-to-date":
        click.echo(f"up to date: {out} already holds {result.format.name} by {result.method} from this checkpoint")
        return
    calibrated = result.calibration
    if calibrated:
        click.echo(f"calibrated on {calibrated['samples']} {calibrated['prompts']} samples ({calibrated['tokens']} tokens)")
    gigabytes = result.bytes / 1e9
    click.echo(f"wrote {out}: {result.format.name} ({result.format.quant_algo}) by {result.method} "
               f"[{result.quantizer}], {gigabytes:.3f} GB in {result.seconds:.1f} s; layout matches the "
               "TensorRT-LLM loader facts")
