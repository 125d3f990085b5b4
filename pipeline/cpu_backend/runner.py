"""Start the CPU stand-in under uvicorn; SIGTERM/SIGINT stop generation at once, then the server."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("pipeline.cpu_backend")

SHUTDOWN_GRACE_S = 3  # open connections get this long after SIGTERM; generation is cancelled first


@dataclass
class ServeOptions:
    model_dir: Path
    host: str
    port: int
    served_model_name: str
    max_batch_size: int
    max_seq_len: int
    max_queue: int


def serve(opts: ServeOptions) -> None:
    import torch
    import uvicorn

    from pipeline.cpu_backend.engine import Engine
    from pipeline.cpu_backend.server import create_app
    from pipeline.cpu_backend.service import Limits, Service

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)  # concurrency comes from one thread per running request
    engine = Engine(opts.model_dir, opts.max_seq_len)
    service = Service(engine, opts.served_model_name, Limits(opts.max_batch_size, opts.max_queue))
    config = uvicorn.Config(create_app(service), host=opts.host, port=opts.port, log_level="warning",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S, access_log=False)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            service.abort_all()
            super().handle_exit(sig, frame)

    log.warning("serving %s as %r on http://%s:%d (max_batch_size %d, max_queue %d, max_seq_len %d)",
                opts.model_dir, opts.served_model_name, opts.host, opts.port, opts.max_batch_size,
                opts.max_queue, engine.max_seq_len)
    try:
        Server(config).run()
    finally:
        service.close()


def backend_argv(opts: ServeOptions) -> list[str]:
    """The argv contract of the cpu-tiny bundle: `python -m pipeline.cpu_backend MODEL_DIR --host ...`."""
    return [sys.executable, "-m", "pipeline.cpu_backend", str(opts.model_dir), "--host", opts.host,
            "--port", str(opts.port), "--served_model_name", opts.served_model_name,
            "--max_batch_size", str(opts.max_batch_size), "--max_seq_len", str(opts.max_seq_len),
            "--max_queue", str(opts.max_queue)]
