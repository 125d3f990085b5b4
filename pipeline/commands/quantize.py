"""`hunyuan-trt quantize`: a BF16 HF checkpoint → a quantized HF-layout checkpoint the pinned TensorRT-LLM loads.

`--profile NAME` runs the step the profile needs between its download and the weights it serves, exactly as the
model-prep Job does (`pipeline.download.quantize_step` / `quantize_argv`), on the default download into the
default directory beside it; build-engine runs it before `build`."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
from click.core import ParameterSource

from pipeline.profiles import ENGINE_NAMES
from pipeline.quantize.formats import FORMATS

METHODS = sorted({method for fmt in FORMATS.values() for method in fmt.methods})
FORMAT_HELP = "; ".join(f"{fmt.name}: {fmt.about} [{' or '.join(fmt.methods) or 'checked, not written'}]" for fmt in FORMATS.values())
# flags --profile sets itself (the model-prep Job's), so none of these may be given with it
FROM_PROFILE = {"model_dir": "--model-dir", "fmt": "--format", "method": "--method",
                "from_published": "--from-published", "calib_file": "--calib-file", "calib_size": "--calib-size",
                "out": "--out"}


@click.command("quantize")
@click.option("--profile", "-p", default=None,
              help="Quantize what `make download PROFILE=NAME` fetched into the weights format the profile serves, "
                   "with the model-prep Job's flags, into <download dir>-<weights> (kept when current); nothing "
                   "to do when the profile serves the download as it is. Replaces --model-dir/--format/--out.")
@click.option("--engine", type=click.Choice(ENGINE_NAMES), default=None,
              help="With --profile: the engine that serves it (its checkpoint); overrides YAML key `engine`.")
@click.option("--revision", default=None,
              help="With --profile: the commit of the download (default: the pinned one, as `download` uses).")
@click.option("--where", is_flag=True,
              help="With --profile: quantize nothing, print the directory build-engine builds from (this step's "
                   "output, or the download when served as it is), or fail with the command that fetches it.")
@click.option("--model-dir", type=click.Path(path_type=Path),
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
@click.option("--out", type=click.Path(path_type=Path), help="Output directory (replaced atomically).")
@click.option("--force", is_flag=True, help="Replace --out even when it is not a quantized checkpoint written by quantize.")
@click.option("--keep-current", is_flag=True,
              help="Leave --out as it is when it already holds this conversion (same source checkpoint, format, "
                   "method, tool and TensorRT-LLM pin, every file at its size); calibrated outputs are always redone.")
@click.pass_context
def quantize_cmd(ctx, profile, engine, revision, where, **options):
    """Write the quantized weights, config.json (A13B key style + quantization_config), hf_quant_config.json,
    the tokenizer files and quantization_manifest.json; the layout is checked against the pinned loader facts
    before the directory appears."""
    from pipeline.errors import PipelineError

    if profile is None:
        if engine or revision or where:
            raise PipelineError("--engine, --revision, --where: only with --profile NAME (they pick its download)")
        missing = [FROM_PROFILE[key] for key in ("model_dir", "out") if options[key] is None]
        if missing:
            raise PipelineError(f"{' and '.join(missing)}: required (or --profile NAME, which derives them)")
        return _quantize(**options)
    given = [flag for key, flag in FROM_PROFILE.items() if ctx.get_parameter_source(key) != ParameterSource.DEFAULT]
    if given:
        raise PipelineError(f"--profile {profile}: takes no {', '.join(given)} (the model dir, flags and output "
                            "come from the profile, as the model-prep Job runs it)")
    argv = _profile_argv(profile, engine, revision, where)
    if argv:
        argv += [flag for flag, on in (("--force", options["force"]),
                                       ("--trust-remote-code", options["trust_remote_code"])) if on]
        click.echo(f"hunyuan-trt quantize {shlex.join(argv)}", err=True)
        parsed = quantize_cmd.make_context("quantize", argv).params  # the flags mean what they mean to the Job
        _quantize(**{key: parsed[key] for key in options})


def _profile_argv(name: str, engine: str | None, revision: str | None, where: bool) -> list[str] | None:
    """The quantize arguments profile `name` needs on its default download (None: nothing to run)."""
    from pipeline.download import quantize_argv, quantize_step, require_model_dir, served_model_dir
    from pipeline.engines.registry import engine_profile

    _, served, spec = engine_profile(name, {"engine": engine} if engine else None)
    download = require_model_dir(name, served, spec, revision)
    step, out = quantize_step(served), served_model_dir(served, revision)
    if where:
        click.echo(out)
        return None
    if step is None:
        click.echo(f"nothing to quantize: {name} serves {served.weights} weights as downloaded ({download})")
        return None
    return quantize_argv(str(download), step.args, str(out))


def _quantize(model_dir, fmt, method, from_published, calib_file, calib_size, trust_remote_code, out, force,
              keep_current):
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
