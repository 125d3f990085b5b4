"""Start the CPU stand-in under uvicorn; SIGTERM/SIGINT stop generation at once, then the server.

Its command line is trtllm-serve-like (`MODEL_DIR --host ... --port ... --max_batch_size ...`) and is defined
once, in FLAGS: the click command (`python -m pipeline.cpu_backend`, `hunyuan-trt cpu-serve`), the argv that
everybody else builds (`backend_argv`) and the bundle's flag check (`SCHEMA_FLAGS`) all come from it.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import click

from pipeline.cpu_backend.surfaces import SURFACES
from pipeline.errors import PipelineError, one_line_errors
from pipeline.model import SERVED_MODEL_NAME

log = logging.getLogger("pipeline.cpu_backend")

SHUTDOWN_GRACE_S = 3  # open connections get this long after SIGTERM; generation is cancelled first
MODULE = "pipeline.cpu_backend"
WEIGHT_SUFFIXES = (".safetensors", ".bin")  # what transformers' from_pretrained loads


@dataclass
class ServeOptions:
    model_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    served_model_name: str = SERVED_MODEL_NAME
    max_batch_size: int = 8
    max_seq_len: int = 1024
    max_queue: int = 64
    surface: str | None = None


# ServeOptions field -> (click type, help); the flag is --<field>, spelled like trtllm-serve's
FLAGS = {
    "host": (str, "Address to bind (trtllm-serve --host)"),
    "port": (click.IntRange(1, 65535), "Port (trtllm-serve --port)"),
    "served_model_name": (str, "Model id reported by /v1/models and in responses"),
    "max_batch_size": (click.IntRange(min=1), "Requests generated at the same time (profile key max_batch_size)"),
    "max_seq_len": (click.IntRange(min=2),
                    "Prompt + output tokens per sequence, capped by max_position_embeddings (profile key max_seq_len)"),
    "max_queue": (click.IntRange(min=0), "Requests allowed to wait for a slot; beyond that the server answers 429"),
    "surface": (click.Choice(SURFACES), "Present this engine's metrics path and series names (default: the stand-in's own)"),
}
# the flags as pipeline.trtllm.schema.check_argv reads them
SCHEMA_FLAGS = {f"--{name}": "int" if isinstance(kind, click.types.IntParamType) else "str"
                for name, (kind, _) in FLAGS.items()}


def backend_argv(model_dir, python: str = sys.executable, **flags) -> list[str]:
    """`python -m pipeline.cpu_backend MODEL_DIR --flag value ...` for the flags given, in FLAGS order; values may
    be placeholders such as {port} (the bundle's argv.json)."""
    unknown = sorted(set(flags) - set(FLAGS))
    if unknown:
        raise PipelineError(f"{MODULE}: unknown flag --{unknown[0]}; expected some of --{', --'.join(FLAGS)}")
    argv = [python, "-m", MODULE, str(model_dir)]
    for name in FLAGS:
        if flags.get(name) is not None:  # None: the flag is not given (its default applies)
            argv += [f"--{name}", str(flags[name])]
    return argv


def _with_flags(command):
    defaults = {field.name: field.default for field in fields(ServeOptions)}
    for name, (kind, text) in reversed(FLAGS.items()):
        command = click.option(f"--{name}", name, type=kind, default=defaults[name], show_default=True,
                               help=text)(command)
    return command


@click.command("cpu-serve")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_with_flags
def cpu_serve(model_dir, **flags):
    """Serve a small Hugging Face Hunyuan checkpoint on CPU with trtllm-serve's HTTP surface."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with one_line_errors():
        serve(ServeOptions(model_dir, **flags))


def check_checkpoint(model_dir: Path) -> None:
    """Refuse a directory without config.json or weights, or with a safetensors file whose header does not
    read, in one line and before torch and transformers are imported (which take seconds)."""
    from pipeline.checkpoint.st_format import read_header

    if not (model_dir / "config.json").is_file():
        raise PipelineError(f"{model_dir}/config.json: not found (expected a Hugging Face model directory)")
    weights = [path for suffix in WEIGHT_SUFFIXES for path in sorted(model_dir.glob(f"*{suffix}"))]
    if not weights:
        raise PipelineError(f"{model_dir}: cannot load the checkpoint: no weight files "
                            f"({', '.join('*' + s for s in WEIGHT_SUFFIXES)})")
    for path in weights:
        if path.suffix == ".safetensors":
            try:
                read_header(path)
            except PipelineError as error:
                raise PipelineError(f"{model_dir}: cannot load the checkpoint: {error}") from None


def serve(opts: ServeOptions) -> None:
    check_checkpoint(opts.model_dir)
    import torch
    import uvicorn

    from pipeline.cpu_backend.engine import Engine
    from pipeline.cpu_backend.server import create_app
    from pipeline.cpu_backend.service import Limits, Service
    from pipeline.cpu_backend.surfaces import present

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)  # concurrency comes from one thread per running request
    engine = Engine(opts.model_dir, opts.max_seq_len)
    service = Service(engine, opts.served_model_name, Limits(opts.max_batch_size, opts.max_queue))
    app = create_app(service)
    if opts.surface:
        present(app, service, opts.surface)
    config = uvicorn.Config(app, host=opts.host, port=opts.port, log_level="warning",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S, access_log=False)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            service.abort_all()
            super().handle_exit(sig, frame)

    log.warning("serving %s as %r on http://%s:%d (max_batch_size %d, max_queue %d, max_seq_len %d, surface %s)",
                opts.model_dir, opts.served_model_name, opts.host, opts.port, opts.max_batch_size,
                opts.max_queue, engine.max_seq_len, opts.surface or "the stand-in's own")
    try:
        Server(config).run()
    finally:
        service.close()
