"""`hunyuan-trt cpu-serve MODEL_DIR`: the CPU stand-in for trtllm-serve (profile cpu-tiny)."""

from __future__ import annotations

import logging
from pathlib import Path

import click


@click.command("cpu-serve")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (trtllm-serve --host)")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port (trtllm-serve --port)")
@click.option("--served_model_name", "served_model_name", default="tencent/Hunyuan-A13B-Instruct", show_default=True,
              help="Model id reported by /v1/models and in responses")
@click.option("--max_batch_size", default=8, show_default=True, type=click.IntRange(min=1),
              help="Requests generated at the same time (profile key max_batch_size)")
@click.option("--max_seq_len", default=1024, show_default=True, type=click.IntRange(min=2),
              help="Prompt + output tokens per sequence, capped by max_position_embeddings (profile key max_seq_len)")
@click.option("--max_queue", default=64, show_default=True, type=click.IntRange(min=0),
              help="Requests allowed to wait for a slot; beyond that the server answers 429")
def cpu_serve(model_dir, host, port, served_model_name, max_batch_size, max_seq_len, max_queue):
    """Serve a small Hugging Face Hunyuan checkpoint on CPU with trtllm-serve's HTTP surface."""
    from pipeline.cpu_backend.runner import ServeOptions, serve

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(ServeOptions(model_dir, host, port, served_model_name, max_batch_size, max_seq_len, max_queue))
