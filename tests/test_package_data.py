"""A non-editable install (what the Dockerfiles do) carries every data file the package reads at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from pipeline.profiles import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def source_files() -> list[str]:
    """The files a clean clone has (tracked or new, not ignored): no egg-info or build folder to borrow from."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=True)
    return [name for name in listed.stdout.splitlines() if (REPO_ROOT / name).is_file()]


def test_wheel_holds_every_tracked_data_file(tmp_path):
    tree, wheels = tmp_path / "src", tmp_path / "wheels"
    names = source_files()
    for name in names:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, tree / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(tree)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    data = {name for name in names if name.startswith("pipeline/") and not name.endswith(".py")}
    missing = sorted(data - shipped)
    assert not missing, f"pyproject [tool.setuptools.package-data] leaves out {missing[:10]}"
