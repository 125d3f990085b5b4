"""Outputs never delete what they do not own (issue #17 item 2), and are complete or absent (issue #16 item 1).

Per command: an existing --out that the command did not write is refused without --force and left as it was;
its own earlier output is replaced; with --force the root, home, current directory, the model directory and
its ancestors are still refused. A writer killed mid-way leaves the old output complete.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.model import TINY_MODEL_DIR
from pipeline.outputs import (
    BENCH_REPORT,
    BUNDLE,
    CHECKPOINT,
    OVERLAY,
    OutputKind,
    check_target,
    replaced_directory,
)

FIXTURE = Path(__file__).parent / "fixtures" / "bench_aiperf"
OWN = OutputKind("test output", "marker.txt", "written by the test")


def foreign_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("years of work")
    return path


def assert_refused(result, *needles):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert all(needle in result.output for needle in needles), result.output


def assert_untouched(path: Path):
    assert sorted(p.name for p in path.iterdir()) == ["thesis.tex"]
    assert (path / "thesis.tex").read_text() == "years of work"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --- the helper itself ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["root", "home", "cwd", "model", "model parent"])
def test_protected_paths_are_refused_even_with_force(tmp_path, monkeypatch, where):
    model = tmp_path / "models" / "a13b"
    model.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    out = {"root": Path("/"), "home": Path.home(), "cwd": Path("."), "model": model, "model parent": model.parent}
    with pytest.raises(PipelineError, match="refused even with --force"):
        check_target(out[where], CHECKPOINT, force=True, inputs=[model])


def test_own_output_is_replaced_a_foreign_one_only_with_force(tmp_path):
    out = tmp_path / "out"
    with replaced_directory(out, OWN) as temp:
        (temp / "marker.txt").write_text("written by the test, run 1")
    with replaced_directory(out, OWN) as temp:
        (temp / "marker.txt").write_text("written by the test, run 2")
    assert (out / "marker.txt").read_text().endswith("run 2")
    foreign = foreign_dir(tmp_path / "foreign")
    with pytest.raises(PipelineError, match="--force"), replaced_directory(foreign, OWN):
        pass
    assert_untouched(foreign)
    with replaced_directory(foreign, OWN, force=True) as temp:
        (temp / "marker.txt").write_text("written by the test")
    assert sorted(p.name for p in foreign.iterdir()) == ["marker.txt"]


def test_a_failing_writer_leaves_the_old_output_and_no_temp(tmp_path):
    out = tmp_path / "out"
    with replaced_directory(out, OWN) as temp:
        (temp / "marker.txt").write_text("written by the test, old")
    with pytest.raises(RuntimeError), replaced_directory(out, OWN) as temp:
        (temp / "marker.txt").write_text("written by the test, new")
        raise RuntimeError("writer failed")
    assert (out / "marker.txt").read_text().endswith("old")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipeline.outputs import OutputKind, replaced_directory
    kind = OutputKind("test output", "marker.txt", "written by the test")
    with replaced_directory(Path(sys.argv[1]), kind) as temp:
        for i in range(100):
            (temp / f"part{i}.bin").write_bytes(b"new" * 1000)
        (temp / "marker.txt").write_text("written by the test, new")
        print("half-way", flush=True)
        time.sleep(60)
""")


@pytest.mark.integration
def test_a_writer_killed_mid_way_leaves_the_old_output_complete(tmp_path):
    out = tmp_path / "out"
    with replaced_directory(out, OWN) as temp:
        (temp / "marker.txt").write_text("written by the test, old")
        (temp / "data.bin").write_bytes(b"old" * 1000)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "half-way"
        partial = [p for p in tmp_path.iterdir() if ".partial-" in p.name]
        assert len(partial) == 1 and len(list(partial[0].iterdir())) == 101  # the new output was well under way
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    finally:
        writer.kill()
        writer.stdout.close()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with replaced_directory(out, OWN) as temp:  # the next run cleans up what the killed writer left
        (temp / "marker.txt").write_text("written by the test, next")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_old_output_moved_aside_by_a_killed_writer_is_restored(tmp_path):
    out = tmp_path / "out"
    aside = tmp_path / f".out.old-{dead_pid()}-abcd1234"  # killed between "move old aside" and "rename new in"
    aside.mkdir()
    (aside / "marker.txt").write_text("written by the test, old")
    with pytest.raises(RuntimeError), replaced_directory(out, OWN):
        raise RuntimeError("this run fails too")
    assert (out / "marker.txt").read_text().endswith("old")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- per command -------------------------------------------------------------------------------------------

def synthetic_model(directory: Path) -> Path:
    pytest.importorskip("torch")
    from pipeline.synthetic_checkpoint import tiny_config, write_checkpoint

    directory.mkdir(parents=True)
    write_checkpoint(tiny_config(), directory, seed=4)
    return directory


def copied_tiny_model(directory: Path) -> Path:
    return Path(shutil.copytree(TINY_MODEL_DIR, directory))


# command -> (its argv before --out, given the model directory; the model it reads, or None; what it writes)
COMMANDS = {
    "convert": (lambda model: ["convert", "--model-dir", model, "--profile", "cpu-tiny"], synthetic_model, CHECKPOINT),
    "build": (lambda model: ["build", "--profile", "cpu-tiny", "--model-dir", model], copied_tiny_model, BUNDLE),
    "render": (lambda model: ["render", "k8s", "--profile", "cpu-tiny"], None, OVERLAY),
    "bench": (lambda model: ["bench", "--from-export", FIXTURE, "--profile", "cpu-tiny"], None, BENCH_REPORT),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_command_replaces_only_what_it_owns(run_cli, tmp_path, monkeypatch, command):
    argv, make_model, kind = COMMANDS[command]
    model = make_model(tmp_path / "models" / "m") if make_model else None
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a protection that failed would hit a scratch home
    (tmp_path / "home").mkdir()

    def run(out, *flags):
        return run_cli(*argv(model), "--out", out, *flags)

    foreign = foreign_dir(tmp_path / "foreign")
    assert_refused(run(foreign), "--force")
    assert_untouched(foreign)

    out = tmp_path / "out"
    assert run(out).exit_code == 0
    if kind.replaces_own:
        assert run(out).exit_code == 0, "its own earlier output is replaced without --force"
    else:
        assert_refused(run(out), "already exists; pass --force")
    assert run(out, "--force").exit_code == 0

    protected = {"the root directory": Path("/"), "the home directory": Path.home(), "the current directory": Path(".")}
    if model:
        protected |= {"the model directory": model, "the model directory ": model.parent}
        files = sorted(p.name for p in model.iterdir())
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    for what, path in protected.items():
        assert_refused(run(path, "--force"), what.strip(), "refused even with --force")
    if model:
        assert sorted(p.name for p in model.iterdir()) == files
