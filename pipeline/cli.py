"""The `hunyuan-trt` command line: one subcommand per stage, loaded lazily so `--help` stays fast.

Each stage lives in its own module under `pipeline.commands`; add a row to COMMANDS to register one.
A `PipelineError` from any stage is printed as one line and exits 2.
"""

from __future__ import annotations

import importlib

import click

from pipeline import __version__
from pipeline.errors import one_line_errors

# subcommand name -> "module:attribute" of its click command
COMMANDS = {
    "inspect": "pipeline.commands.inspect:inspect_cmd",
    "profiles": "pipeline.commands.profiles:profiles",
    "plan": "pipeline.commands.plan:plan",
    "bench-overhead": "pipeline.commands.bench:bench_overhead",
    "bench-engines": "pipeline.commands.bench:bench_engines",
    "drills": "pipeline.commands.drills:drills",
    "tiny": "pipeline.commands.tiny:tiny",
    "download": "pipeline.commands.download:download",
    "convert": "pipeline.commands.convert:convert_cmd",
    "verify": "pipeline.commands.verify:verify_cmd",
    "quantize": "pipeline.commands.quantize:quantize_cmd",
    "make-tiny": "pipeline.commands.make_tiny:make_tiny_cmd",
    "render": "pipeline.commands.render:render",
    "build": "pipeline.commands.build:build",
    "bundle-status": "pipeline.commands.bundle_status:bundle_status",
    "prep": "pipeline.commands.prep:prep",
    "serve": "pipeline.commands.serve:serve",
    "adapter": "pipeline.commands.adapter:adapter",
    "smoke": "pipeline.commands.smoke:smoke",
    "cpu-serve": "pipeline.cpu_backend.runner:cpu_serve",
    "demo": "pipeline.commands.demo:demo",
    "bench": "pipeline.commands.bench:bench",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def invoke(self, ctx):
        with one_line_errors():
            return super().invoke(ctx)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hunyuan-trt")
def main():
    """Hunyuan-A13B-Instruct from Hugging Face weights to a TensorRT-LLM service.

    Stages: inspect -> plan -> quantize | convert -> verify -> build -> serve -> smoke -> bench.
    """
