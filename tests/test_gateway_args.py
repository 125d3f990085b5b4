"""The smg argv builder: tuned flags from the table, overrides, and no secret on the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.errors import PipelineError
from pipeline.gateway import API_KEY_ENV, GATEWAY_FLAGS, gateway_args, launcher_argv, mark_down_bound_s

WORKERS = ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]


def flag_value(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_every_table_row_reaches_the_argv():
    args = gateway_args(WORKERS, port=30000, metrics_port=29000)
    assert args[0] == "launch"
    for flag in GATEWAY_FLAGS:
        assert flag.name in args
        if flag.value is not None:
            assert flag_value(args, flag.name) == flag.value
    assert args[args.index("--worker-urls") + 1:args.index("--worker-urls") + 3] == WORKERS
    assert flag_value(args, "--host") == "127.0.0.1" and flag_value(args, "--prometheus-host") == "127.0.0.1"
    assert flag_value(args, "--policy") == "cache_aware"
    assert int(flag_value(args, "--health-check-interval-secs")) < 60  # smg's default is 60 s


def test_overrides_replace_table_values_and_unknown_flags_are_refused():
    args = gateway_args(WORKERS, overrides={"--policy": "round_robin"})
    assert flag_value(args, "--policy") == "round_robin"
    with pytest.raises(PipelineError, match="--polcy"):
        gateway_args(WORKERS, overrides={"--polcy": "x"})
    with pytest.raises(PipelineError, match="worker"):
        gateway_args([])


def test_mark_down_bound_follows_the_health_check_flags():
    assert mark_down_bound_s() == 2 * 2 + 2  # interval x failure threshold + timeout
    assert mark_down_bound_s({"--health-check-interval-secs": "1"}) == 1 * 2 + 2


@pytest.mark.integration
def test_no_api_key_in_argv_and_launcher_refuses_without_one():
    argv = launcher_argv(gateway_args(WORKERS))
    assert "--api-key" not in argv
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert API_KEY_ENV in done.stderr
    assert sys.executable == argv[0]


@pytest.mark.integration
def test_every_flag_is_known_to_the_installed_smg():
    help_text = subprocess.run([sys.executable, "-m", "smg.launch_router", "--help"], capture_output=True,
                               text=True, timeout=60).stdout
    for flag in GATEWAY_FLAGS:
        assert flag.name in help_text, flag.name
