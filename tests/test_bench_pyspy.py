"""py-spy folded stacks -> the frames where a process spends its time."""

from __future__ import annotations

import pytest

from pipeline.bench.pyspy import Sampler, markdown, summary
from pipeline.errors import PipelineError

FOLDED = """\
<module> (pipeline/__main__.py:5);run (asyncio/runners.py:118) 60
<module> (pipeline/__main__.py:5);adapter (pipeline/commands/adapter.py:33);_sse (pipeline/adapter/app.py:118);feed (pipeline/adapter/parser.py:242) 25
<module> (pipeline/__main__.py:5);adapter (pipeline/commands/adapter.py:33);_sse (pipeline/adapter/app.py:118);dumps (json/encoder.py:200) 15
"""


def test_summary_ranks_self_time_and_project_frames(tmp_path):
    folded = tmp_path / "p.folded"
    folded.write_text(FOLDED)
    result = summary(folded)
    assert result["samples"] == 100
    assert result["self"][0] == (60.0, "run (asyncio/runners.py:118)")
    assert result["own_inclusive"][0] == (40.0, "_sse (pipeline/adapter/app.py:118)")
    assert (25.0, "feed (pipeline/adapter/parser.py:242)") in result["own_inclusive"]
    assert not any("commands/" in frame or "__main__" in frame for _, frame in result["own_inclusive"])
    assert "| 40.0 | `_sse (pipeline/adapter/app.py:118)` |" in markdown(result)


def test_empty_profile_is_a_clear_error(tmp_path):
    (tmp_path / "p.folded").write_text("")
    with pytest.raises(PipelineError, match="no samples"):
        summary(tmp_path / "p.folded")


def test_missing_py_spy_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))  # nor next to the interpreter
    with pytest.raises(PipelineError, match="pip install py-spy"):
        Sampler(1, tmp_path / "out.folded")


def test_py_spy_next_to_the_interpreter_is_found_without_path(monkeypatch, tmp_path):
    """`.venv/bin/hunyuan-trt bench-overhead --profile-adapter` runs with .venv/bin off PATH."""
    binary = tmp_path / "py-spy"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    assert Sampler(1, tmp_path / "out.folded").argv[0] == str(binary)
