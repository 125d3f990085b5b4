"""Every `hunyuan-trt` invocation in the manifests and the compose file names a real subcommand and only
options that subcommand has, with its required options present, so a renamed flag fails here, not in a pod."""

from __future__ import annotations

import shlex

import click
import pytest
import yaml

from pipeline.cli import main
from pipeline.deploy.policy import containers, pod_specs
from pipeline.deploy.render import K8S_ROOT
from pipeline.profiles import REPO_ROOT, profile_names

CLI_IMAGES = ("/hunyuan-trt:", "/hunyuan-trt-cpu:")  # images whose entrypoint is `hunyuan-trt`


def invocations(name: str) -> list[list[str]]:
    """argv (after `hunyuan-trt`) of every container that runs the CLI through the image entrypoint."""
    docs = yaml.safe_load_all((K8S_ROOT / "rendered" / f"{name}.yaml").read_text())
    return [c["args"] for _, pod in pod_specs(list(docs)) for c in containers(pod)
            if any(tag in c["image"] for tag in CLI_IMAGES) and "command" not in c]


def check(argv: list[str]) -> list[str]:
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


@pytest.mark.parametrize("name", profile_names())
def test_manifest_invocations_match_the_cli(name):
    found = invocations(name)
    assert {argv[0] for argv in found} >= {"serve", "inspect", "build", "smoke"}
    assert [problem for argv in found for problem in check(argv)] == []


def test_compose_invocations_match_the_cli():
    compose = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text())
    argvs = [compose["services"]["replica-0"]["command"]]
    script = compose["services"]["model-prep"]["command"][0]
    argvs += [shlex.split(part)[1:] for part in script.split("&&") if part.strip().startswith("hunyuan-trt")]
    assert [argv[0] for argv in argvs] == ["serve", "inspect", "build"]
    assert [problem for argv in argvs for problem in check(argv)] == []


def test_the_check_catches_renamed_and_missing_options():
    assert check(["serve", "--bundel", "/models/x"]) == ["serve: unknown option --bundel",
                                                         "serve: missing required --bundle"]
    assert check(["no-such-stage"]) == ["unknown subcommand 'no-such-stage'"]
