"""`hunyuan-trt bench`: drive NVIDIA's aiperf against an OpenAI endpoint and write our report.

One aiperf sweep per thinking mode (chat_template_kwargs enable_thinking false/true) over the concurrency
levels; then a markdown table, PNG plots and summary.json with the profile's planner numbers and roofline.
`--from-export DIR` re-renders a report from the aiperf exports kept in an earlier report directory.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import click
import requests

from pipeline.bench.aiperf import THINKING_KWARGS, Workload, check_tokenizer, run_aiperf
from pipeline.bench.plain_text import plain_text_bias
from pipeline.bench.report import summarize, write_report
from pipeline.bench.results import load_cells
from pipeline.errors import PipelineError
from pipeline.model import TINY_MODEL_DIR
from pipeline.outputs import BENCH_REPORT, ENGINES_REPORT, OVERHEAD_REPORT, check_target
from pipeline.profiles import load_profile

DEFAULT_GOODPUT = "time_to_first_token:2000 inter_token_latency:200"  # CPU-scale SLOs; pass your own on GPUs


def parse_ints(option: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise PipelineError(f"{option} '{text}': expected comma-separated integers, e.g. 1,4,16") from None
    if not values or min(values) < 1:
        raise PipelineError(f"{option} '{text}': every value must be >= 1")
    return values


def parse_modes(text: str) -> tuple[str, ...]:
    modes = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [mode for mode in modes if mode not in THINKING_KWARGS]
    if not modes or unknown:
        raise PipelineError(f"--thinking '{text}': expected a comma-separated subset of {', '.join(THINKING_KWARGS)}")
    return modes


def command_line(argv: list[str]) -> str:
    """The command as typed (`hunyuan-trt ...`), an --api-key value masked, for the report."""
    shown = ["***" if previous == "--api-key" else arg for previous, arg in zip(["", *argv], argv, strict=False)]
    return shlex.join(["hunyuan-trt", *(arg if not arg.startswith("--api-key=") else "--api-key=***" for arg in shown)])


def recorded_command(from_export: Path) -> str:
    """The command that measured an earlier report (its summary.json), '' when it recorded none."""
    try:
        return json.loads((from_export / "summary.json").read_text()).get("command", "")
    except (OSError, ValueError, AttributeError):
        return ""


def measuring_command(from_export: Path | None) -> str:
    """The command for the report: the one that measured an earlier report's exports, or this one."""
    return recorded_command(from_export) if from_export else command_line(sys.argv[1:])


def subdirs(path: Path) -> dict[str, Path]:
    return {child.name: child for child in sorted(path.iterdir()) if child.is_dir()}


@contextlib.contextmanager
def report_work(out: Path, kind, force: bool, model_dir: Path, from_export: Path | None):
    """Check --out, then a scratch directory beside it holding aiperf/ (a copy of --from-export's when given)."""
    check_target(out, kind, force, [model_dir])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bench-", dir=out.parent) as tmp:
        work = Path(tmp)
        if from_export:
            shutil.copytree(from_export / "aiperf", work / "aiperf")
        yield work


def served_model(url: str, api_key: str | None) -> str:
    """The first model id the endpoint lists under /v1/models."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = requests.get(f"{url.rstrip('/')}/v1/models", headers=headers, timeout=10)
        return response.json()["data"][0]["id"]
    except (requests.RequestException, ValueError, KeyError, IndexError, TypeError):
        raise PipelineError(f"--url {url}: GET /v1/models did not list a model; is the server up, and is "
                            "--api-key right? (or pass --model)") from None


def default_tokenizer(profile_name: str) -> Path:
    profile, _ = load_profile(profile_name)
    if profile.hf_config == "tiny":
        return TINY_MODEL_DIR
    raise PipelineError(f"--tokenizer is required for profile '{profile_name}': pass the HF model directory")


def run_modes(base: Workload, modes: tuple[str, ...], work_dir: Path) -> dict[str, Path]:
    dirs = {}
    for mode in modes:
        click.echo(f"aiperf: thinking {mode}, concurrency {','.join(map(str, base.concurrency))} -> {base.url}")
        work = Workload(**{**base.__dict__, "thinking": mode})
        dirs[mode] = run_aiperf(work, work_dir / mode)
    return dirs


def live_exports(url: str, api_key: str | None, shape: dict, work_dir: Path) -> dict[str, Path]:
    """Run aiperf once per thinking mode against `url`; `shape` holds the workload options of the command."""
    tokenizer = check_tokenizer(shape["tokenizer"] or default_tokenizer(shape["profile"]))
    base = Workload(url=url.rstrip("/"), model=shape["model"] or served_model(url, api_key), tokenizer=tokenizer,
                    concurrency=parse_ints("--concurrency", shape["concurrency"]), isl=shape["isl"], osl=shape["osl"],
                    requests_per_user=shape["requests_per_user"], goodput=shape["goodput"], api_key=api_key,
                    trust_remote_code=shape["trust_remote_code"],
                    logit_bias=plain_text_bias(tokenizer) if shape["plain_text"] else None)
    return run_modes(base, parse_modes(shape["thinking"]), work_dir)


def chain_exports(replicas: int, model_dir: Path, api_key: str | None, shape: dict, aiperf_dir: Path, log_dir: Path,
                  **backend_flags) -> dict[str, Path]:
    """Start the demo's chain (CPU replicas, each behind an adapter, behind smg) and benchmark its gateway;
    `backend_flags` go to every replica (e.g. surface="vllm")."""
    from pipeline.topology import Topology, cpu_backend

    key = api_key or secrets.token_urlsafe(24)
    click.echo(f"starting {replicas} CPU replica(s) + adapters behind smg (logs in {log_dir}) ...")
    with Topology(cpu_backend(model_dir, **backend_flags), log_dir, replicas=replicas, adapters=True,
                  gateway_key=key) as chain:
        return live_exports(chain.gateway.url, key, shape, aiperf_dir)


def workload_options(command):
    """The load options `bench` and `bench-engines` share (the `shape` they pass to live_exports), and --api-key."""
    options = [
        click.option("--profile", "-p", default="cpu-tiny", show_default=True, envvar="HUNYUAN_TRT_PROFILE",
                     help="Profile the endpoint serves (planner numbers and roofline in the summary)."),
        click.option("--concurrency", default="1,4,16", show_default=True, help="Comma-separated concurrency levels."),
        click.option("--isl", default=128, show_default=True, type=click.IntRange(min=1),
                     help="Input tokens per request."),
        click.option("--osl", default=64, show_default=True, type=click.IntRange(min=1),
                     help="Output tokens per request."),
        click.option("--goodput", default=DEFAULT_GOODPUT, show_default=True,
                     help="aiperf SLOs for goodput, 'metric:value ...' in ms (empty: none)."),
        click.option("--thinking", default="off,on", show_default=True, help="Thinking modes to measure: off, on."),
        click.option("--requests-per-user", default=8, show_default=True, type=click.IntRange(min=1),
                     help="Requests per concurrent user at each level."),
        click.option("--model", default=None, help="Model name to request (default: the first id of /v1/models)."),
        click.option("--tokenizer", type=click.Path(path_type=Path), default=None,
                     help="HF model directory with the tokenizer (default: the embedded tiny model for cpu profiles)."),
        click.option("--trust-remote-code", is_flag=True,
                     help="Let aiperf run the tokenizer's custom code (real A13B)."),
        click.option("--plain-text", is_flag=True,
                     help="Ask for output of letters and digits only (logit_bias), so every generated token is "
                          "visible and answers run to --osl (the CPU stand-in's tiny model answers in a few tokens "
                          "otherwise)."),
        click.option("--api-key", envvar="HUNYUAN_TRT_API_KEY", default=None,
                     help="Bearer key (env HUNYUAN_TRT_API_KEY)."),
        click.option("--model-dir", type=click.Path(path_type=Path), default=TINY_MODEL_DIR,
                     show_default="the embedded hunyuan-tiny", help="Model the CPU replicas serve."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def check_shape(shape: dict) -> None:
    """Fail on a bad profile or load before any load is sent."""
    load_profile(shape["profile"])
    parse_ints("--concurrency", shape["concurrency"])
    parse_modes(shape["thinking"])


@click.command()
@click.option("--url", envvar="HUNYUAN_TRT_URL", help="OpenAI-compatible base URL (gateway, adapter or server).")
@click.option("--cpu-chain", type=click.IntRange(min=1), default=None,
              help="Instead of --url: start N CPU replicas behind adapters and smg (the demo's chain) and measure it.")
@workload_options
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Report directory (default: reports/bench/<profile>).")
@click.option("--force", is_flag=True,
              help="Replace --out even if it is not a benchmark report (never /, home or the current directory).")
@click.option("--from-export", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Re-render from DIR/aiperf/<mode>/ of an earlier report instead of running aiperf.")
def bench(url, cpu_chain, model_dir, api_key, out, force, from_export, **shape):
    """Benchmark an endpoint with aiperf: TTFT, ITL, latency percentiles, throughput and goodput per concurrency."""
    profile = shape["profile"]
    out = out or Path("reports/bench") / Path(profile).stem
    check_shape(shape)
    if sum(map(bool, (url, cpu_chain, from_export))) != 1:
        raise PipelineError("give exactly one of --url URL, --cpu-chain N or --from-export DIR")
    with report_work(out, BENCH_REPORT, force, model_dir, from_export) as work:
        if from_export:
            dirs = subdirs(work / "aiperf")
        elif cpu_chain:
            dirs = chain_exports(cpu_chain, model_dir, api_key, shape, work / "aiperf", work / "logs")
        else:
            dirs = live_exports(url, api_key, shape, work / "aiperf")
        cells = {mode: load_cells(path) for mode, path in dirs.items()}
        summary = summarize(profile, cells, measuring_command(from_export))
        write_report(summary, out, {"aiperf": work / "aiperf"}, force)
    click.echo((out / "report.md").read_text())
    click.echo(f"report: {out}/report.md, plots: {out}/throughput.png {out}/latency.png, summary: {out}/summary.json")


def surface_names(text: str) -> list[str]:
    from pipeline.cpu_backend.surfaces import SURFACES

    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in SURFACES]
    if not names or unknown or len(set(names)) != len(names):
        raise PipelineError(f"--cpu-surfaces '{text}': expected distinct names among {', '.join(SURFACES)}")
    return names


def engine_exports(urls: dict[str, str], cpu_surfaces: list[str], model_dir: Path, api_key: str | None, shape: dict,
                   work: Path) -> dict[str, dict[str, Path]]:
    """label -> {mode: aiperf dir}: the endpoints one after another, or one CPU stand-in per surface (each behind
    the adapter and smg, started and stopped in turn so that no two share the CPUs)."""
    if urls:
        return {label: live_exports(url, api_key, shape, work / "aiperf" / label) for label, url in urls.items()}
    return {name: chain_exports(1, model_dir, api_key, shape, work / "aiperf" / name, work / "logs" / name,
                                surface=name) for name in cpu_surfaces}


@click.command("bench-engines")
@click.option("--urls", envvar="HUNYUAN_TRT_URLS",
              help="Endpoints to compare, LABEL=URL,... e.g. trtllm=http://10.0.0.1:8000,vllm=http://10.0.0.2:8000.")
@click.option("--cpu-surfaces", default=None,
              help="Instead of --urls: a CPU stand-in per engine surface (e.g. trtllm,vllm,sglang), each behind the "
                   "adapter and smg, measured one after another. Proves the wiring, not the engines.")
@workload_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/bench/engines"), show_default=True,
              help="Report directory: engines.md, engines.png, summary.json, aiperf/<engine>/<mode>/ (and the CPU "
                   "chains' logs/<engine>/).")
@click.option("--force", is_flag=True,
              help="Replace --out even if it is not an engine report (never /, home or the current directory).")
@click.option("--from-export", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Re-render from DIR/aiperf/<engine>/<mode>/ of an earlier engine report instead of running aiperf.")
def bench_engines(urls, cpu_surfaces, model_dir, api_key, out, force, from_export, **shape):
    """The same aiperf load against each engine's endpoint: one report, a line per engine, the profile's roofline."""
    from pipeline.bench.engines import compare, markdown, parse_urls, write_comparison

    check_shape(shape)
    if sum(map(bool, (urls, cpu_surfaces, from_export))) != 1:
        raise PipelineError("give exactly one of --urls LABEL=URL,..., --cpu-surfaces NAMES or --from-export DIR")
    endpoints = parse_urls(urls) if urls else {}
    surfaces = surface_names(cpu_surfaces) if cpu_surfaces else []
    with report_work(out, ENGINES_REPORT, force, model_dir, from_export) as work:
        if from_export:
            dirs = {label: subdirs(engine) for label, engine in subdirs(work / "aiperf").items()}
        else:
            dirs = engine_exports(endpoints, surfaces, model_dir, api_key, shape, work)
        cells = {label: {mode: load_cells(path) for mode, path in modes.items()} for label, modes in dirs.items()}
        comparison = compare(shape["profile"], cells, measuring_command(from_export))
        kept = {name: work / name for name in ("aiperf", "logs") if (work / name).is_dir()}
        write_comparison(comparison, out, kept, force)
    click.echo(markdown(comparison))
    click.echo(f"report: {out}/engines.md, plot: {out}/engines.png, summary: {out}/summary.json")


@click.command("bench-overhead")
@click.option("--model-dir", type=click.Path(path_type=Path), default=TINY_MODEL_DIR,
              show_default="the embedded hunyuan-tiny", help="Model the CPU replica serves (and its tokenizer).")
@click.option("--concurrency", default="1,16", show_default=True, help="Comma-separated concurrency levels.")
@click.option("--isl", default=128, show_default=True, type=click.IntRange(min=1), help="Input tokens per request.")
@click.option("--osl", default=32, show_default=True, type=click.IntRange(min=1), help="Output tokens per request.")
@click.option("--requests-per-user", default=6, show_default=True, type=click.IntRange(min=1),
              help="Requests per concurrent user at each level.")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(min=1),
              help="Rounds over the three paths; the report shows the median of each statistic.")
@click.option("--paired-requests", default=30, show_default=True, type=click.IntRange(min=2),
              help="Requests per path and round in the paired probe (concurrency 1, the paths taking turns).")
@click.option("--profile-adapter", is_flag=True,
              help="Sample the adapter with py-spy during the adapter run; top frames go into overhead.md.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/bench/overhead"), show_default=True,
              help="Directory for overhead.md, overhead.json and the raw aiperf exports.")
@click.option("--force", is_flag=True,
              help="Replace --out even if it is not an overhead report (never /, home or the current directory).")
def bench_overhead(model_dir, concurrency, isl, osl, requests_per_user, repeats, paired_requests, profile_adapter,
                   out, force):
    """The same aiperf load direct to a CPU replica, via the adapter, via smg + adapter: added latency per hop."""
    from pipeline.bench.overhead import OverheadPlan, measure, write_report
    from pipeline.topology import check_model_dir

    plan = OverheadPlan(parse_ints("--concurrency", concurrency), isl, osl, requests_per_user, repeats, paired_requests)
    tokenizer = check_tokenizer(check_model_dir(model_dir))
    check_target(out, OVERHEAD_REPORT, force, [model_dir])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".overhead-", dir=out.parent) as tmp:
        measured = measure(model_dir, Path(tmp), tokenizer, plan, profile_adapter)
        write_report(out, plan, measured, Path(tmp), command_line(sys.argv[1:]), force)
    click.echo((out / "overhead.md").read_text())
