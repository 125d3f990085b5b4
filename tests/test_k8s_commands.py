"""Every `hunyuan-trt` invocation in the manifests and the compose file names a real subcommand and only
options that subcommand has, with its required options present, so a renamed flag fails here, not in a pod."""

from __future__ import annotations

import re
import shlex

import click
import pytest
import yaml

from pipeline.cli import COMMANDS, main
from pipeline.deploy.policy import containers, pod_specs
from pipeline.deploy.render import K8S_ROOT, golden_documents
from pipeline.profiles import REPO_ROOT

# images whose entrypoint is `hunyuan-trt`
CLI_IMAGES = ("/hunyuan-trt:", "/hunyuan-trt-cpu:", "/hunyuan-trt-vllm:", "/hunyuan-trt-sglang:")
RENDERED = sorted(p.stem for p in (K8S_ROOT / "rendered").glob("*.yaml"))  # every profile x engine
# Subcommands the manifests call that another branch adds (checked here as soon as they are registered).
ELSEWHERE = {"download": "branch convert"}
IN_SCRIPT = re.compile(r"\bhunyuan-trt ([^;&|]+)")


def cli_argv(container: dict) -> list[list[str]]:
    """argv (after `hunyuan-trt`) of the CLI calls of one container: through the image entrypoint (args),
    as the argv of a shell wrapper (after the last `hunyuan-trt`), or inside a shell script."""
    if "command" not in container:
        return [container["args"]]
    command = container["command"]
    if "hunyuan-trt" in command:
        return [command[len(command) - command[::-1].index("hunyuan-trt"):]]
    return [shlex.split(call) for part in command for call in IN_SCRIPT.findall(part)]


def invocations(name: str) -> list[list[str]]:
    """argv (after `hunyuan-trt`) of every CLI call in the containers of the CLI images."""
    return [argv for _, pod in pod_specs(golden_documents(name)) for c in containers(pod)
            if any(tag in c["image"] for tag in CLI_IMAGES) for argv in cli_argv(c)]


def check(argv: list[str]) -> list[str]:
    if argv[0] in ELSEWHERE and argv[0] not in COMMANDS:
        return []
    command = main.get_command(click.Context(main), argv[0])
    if command is None:
        return [f"unknown subcommand {argv[0]!r}"]
    options = {opt: param for param in command.params for opt in param.opts}
    given = {arg.split("=", 1)[0] for arg in argv[1:] if arg.startswith("--")}
    problems = [f"{argv[0]}: unknown option {opt}" for opt in sorted(given - set(options))]
    required = {p.opts[0] for p in command.params if getattr(p, "required", False)}
    aliases = {opt: p.opts[0] for opt, p in options.items()}
    problems += [f"{argv[0]}: missing required {opt}" for opt in sorted(required - {aliases.get(g) for g in given})]
    return problems


@pytest.mark.parametrize("name", RENDERED)
def test_manifest_invocations_match_the_cli(name):
    found = invocations(name)
    assert {argv[0] for argv in found} >= {"serve", "bundle-status", "inspect", "build", "smoke"}
    assert [problem for argv in found for problem in check(argv)] == []


def test_compose_invocations_match_the_cli():
    compose = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text())
    argvs = [compose["services"][name]["command"] for name in ("replica-0", "model-prep")]
    assert [argv[0] for argv in argvs] == ["serve", "prep"]
    assert [problem for argv in argvs for problem in check(argv)] == []


def test_the_check_catches_renamed_and_missing_options():
    assert check(["serve", "--bundel", "/models/x"]) == ["serve: unknown option --bundel",
                                                         "serve: missing required --bundle"]
    assert check(["no-such-stage"]) == ["unknown subcommand 'no-such-stage'"]
