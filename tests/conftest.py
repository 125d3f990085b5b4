"""Shared fixtures: a CLI runner and a scratch profiles directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.profiles import profiles_dir

REPO = Path(__file__).resolve().parent.parent


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
