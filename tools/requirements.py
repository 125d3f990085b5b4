"""Print pyproject.toml's requirements (base + the given extras), one per line, leaving out named packages.

    python tools/requirements.py --extras serve,dev --without torch

Used by `make test-py312` to install everything but torch on Python 3.12 (the GPU image's Python).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements(extras: list[str], without: set[str]) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = project["dependencies"] + [line for extra in extras for line in project["optional-dependencies"][extra]]
    return [line for line in lines if canonicalize_name(Requirement(line).name) not in without]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default="", help="comma-separated extras to include")
    parser.add_argument("--without", default="", help="comma-separated package names to leave out")
    args = parser.parse_args()
    extras = [e for e in args.extras.split(",") if e]
    without = {canonicalize_name(name) for name in args.without.split(",") if name}
    print("\n".join(requirements(extras, without)))


if __name__ == "__main__":
    main()
