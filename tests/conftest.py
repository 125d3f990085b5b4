"""Shared fixtures: a CLI runner and a scratch profiles directory."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.profiles import profiles_dir

REPO = Path(__file__).resolve().parent.parent

# Test modules that need torch, in-process (converter, reference forward, tiny model) or in a child they start (the
# CPU backend, tinygen, the demo and drills). `make test-py312` runs the suite on Python 3.12 without torch, as the
# GPU image's own torch cannot come from PyPI; there these modules are left out instead of failing.
NEEDS_TORCH = ["test_build_cpu_stack.py", "test_convert_errors.py", "test_convert_kill.py", "test_convert_layout.py",
               "test_convert_memory.py", "test_convert_verify.py", "test_convert_wrong_split.py",
               "test_cpu_backend_sampling.py", "test_cpu_backend_server.py", "test_demo_pipeline.py",
               "test_drills_bad_input.py", "test_drills_converter_crash.py", "test_drills_replica_kill.py",
               "test_drills_rolling_restart.py",
               "test_gateway_failover.py", "test_k8s_server_contract.py", "test_tiny_config.py",
               "test_tiny_model.py", "test_tiny_template.py"]
collect_ignore = [] if importlib.util.find_spec("torch") else NEEDS_TORCH


@pytest.fixture
def run_cli():
    """Invoke `hunyuan-trt ARGS...` in-process; returns click's Result."""
    runner = CliRunner()

    def invoke(*args, **kwargs):
        return runner.invoke(main, [str(a) for a in args], **kwargs)

    return invoke


@pytest.fixture
def profiles_copy(tmp_path, monkeypatch):
    """A writable copy of engine_configs/, selected through HUNYUAN_TRT_PROFILES_DIR."""
    target = tmp_path / "engine_configs"
    shutil.copytree(profiles_dir(), target)
    monkeypatch.setenv("HUNYUAN_TRT_PROFILES_DIR", str(target))
    return target
