"""`hunyuan-trt adapter`: the OpenAI front (reasoning + tool calls) for a running trtllm-serve."""

from __future__ import annotations

from dataclasses import fields

import click

from pipeline.errors import PipelineError
from pipeline.request_limits import RequestLimits


def limit_options(command):
    """One --max-... flag per request limit (profile key of the same name, env HUNYUAN_TRT_<KEY>)."""
    for field in reversed(fields(RequestLimits)):
        flag = "--" + field.name.replace("_", "-")
        command = click.option(flag, field.name, type=click.IntRange(min=1), default=field.default,
                               show_default=True, envvar=f"HUNYUAN_TRT_{field.name.upper()}",
                               help=f"Request limit; profile key `{field.name}`.")(command)
    return command


@click.command()
@click.option("--upstream", required=True, envvar="HUNYUAN_TRT_UPSTREAM",
              help="Base URL of trtllm-serve (or the CPU stand-in), e.g. http://127.0.0.1:8001.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), required=True, help="Port to listen on.")
@click.option("--served-model-name", default=None,
              help="Model id to report in /v1/models and responses (trtllm-serve reports its model path).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@limit_options
def adapter(upstream, host, port, served_model_name, log_level, **limits):
    """Serve an OpenAI API that splits Hunyuan's <think>/<answer> text and parses <tool_calls>."""
    if not upstream.startswith(("http://", "https://")):
        raise PipelineError(f"--upstream: expected an http(s) URL; got {upstream!r}")
    import uvicorn

    from pipeline.adapter.app import server_config

    uvicorn.Server(server_config(upstream, host, port, served_model_name, log_level,
                                       RequestLimits(**limits))).run()
