"""pyproject.toml's requirements resolve against the pinned GPU image's packages (docker/trtllm-image-freeze.json).

Offline, under two pre-release policies, since NGC's torch is a pre-release (2.10.0a0+b4e4ee81d3.nv25.12):
- "installed": an installed pre-release satisfies any specifier it falls inside (PEP 440's default for installed
  versions; measured with pip 26.3: `torch>=2.9` accepts an installed 2.10.0a0, but rejects NGC 25.10's 2.9.0a0 with
  ResolutionImpossible, see docs/trtllm_pin.md);
- "explicit": a pre-release counts only when the specifier itself names one (uv's default, and any fresh resolve).
A floor must work under both, so it names a pre-release (`torch>=2.9.0a0`).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
FREEZE = json.loads((REPO / "docker" / "trtllm-image-freeze.json").read_text())
IMAGE_EXTRAS = ("serve",)  # docker/Dockerfile installs '.[serve]'


def project_requirements() -> list[Requirement]:
    spec = importlib.util.spec_from_file_location("requirements_tool", REPO / "tools" / "requirements.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return [Requirement(line) for line in tool.requirements(list(IMAGE_EXTRAS), without=set())]


def by_name(table: dict) -> dict:
    return {canonicalize_name(name): entry for name, entry in table.items()}


POLICIES = {
    "installed": lambda spec, version: spec.contains(version, prereleases=True),
    "explicit": lambda spec, version: spec.contains(version, prereleases=bool(spec.prereleases)),
}


def unsatisfied(requirements: list[Requirement], packages: dict | None = None, ranges: dict | None = None) -> list[str]:
    """Requirements the image cannot meet: an exact image version outside the specifier under either pre-release
    policy, or a range disjoint from the image's own constraint."""
    packages = by_name(FREEZE["packages"] if packages is None else packages)
    ranges = by_name(FREEZE["ranges"] if ranges is None else ranges)
    problems = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name in packages:
            version = Version(packages[name]["version"])
            refused = [policy for policy, admits in POLICIES.items() if not admits(requirement.specifier, version)]
            if refused:
                problems.append(f"{requirement}: the image has {name} {version} ({' and '.join(refused)} policy)")
        elif name in ranges and not overlaps(requirement.specifier, SpecifierSet(ranges[name]["specifier"])):
            problems.append(f"{requirement}: the image constrains {name} to {ranges[name]['specifier']}")
    return problems


def overlaps(ours: SpecifierSet, theirs: SpecifierSet) -> bool:
    """True when some version named by either specifier set satisfies both (enough for floor/ceiling ranges)."""
    candidates = [Version(spec.version) for spec in (*ours, *theirs) if spec.operator != "!="]
    return any(ours.contains(v, prereleases=True) and theirs.contains(v, prereleases=True) for v in candidates)


def test_project_requirements_resolve_against_the_image():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert unsatisfied(project_requirements()) == []
    assert SpecifierSet(pyproject["project"]["requires-python"]).contains(FREEZE["python"]["version"])


@pytest.mark.parametrize("line,reason", [
    # the floor before the pin: pip admits the installed pre-release, an explicit-opt-in resolver does not
    ("torch>=2.9", "the image has torch 2.10.0a0+b4e4ee81d3.nv25.12 (explicit policy)"),
    ("torch>=2.11", "the image has torch"),
    ("transformers>=5", "the image has transformers 4.57.3"),
    ("numpy>=2", "the image constrains numpy to <2"),
    ("fastapi>=0.122", "the image constrains fastapi"),
])
def test_requirements_the_image_cannot_meet_are_reported(line, reason):
    assert reason in unsatisfied([Requirement(line)])[0]


def test_the_freeze_agrees_with_its_own_ranges():
    ranges = by_name(FREEZE["ranges"])
    for name, entry in by_name(FREEZE["packages"]).items():
        if name in ranges:
            assert SpecifierSet(ranges[name]["specifier"]).contains(Version(entry["version"])), name
    for table in (FREEZE["packages"], FREEZE["ranges"]):
        assert all(entry["source"] for entry in table.values())


def test_the_old_floor_fails_on_the_previous_ngc_torch_under_both_policies():
    """NGC 25.10's torch (the 1.2.0-era image) is below 2.9 in every reading: pip's ResolutionImpossible, reproduced."""
    previous = {"torch": {"version": "2.9.0a0+nv25.10"}}
    assert "(installed and explicit policy)" in unsatisfied([Requirement("torch>=2.9")], previous)[0]
    assert unsatisfied([Requirement("torch>=2.9.0a0")], previous) == []


def engine_image(engine: str) -> tuple[dict, dict]:
    """(packages, ranges) of an engine's official image from its facts file: the wheel METADATA's requirements on
    torch and transformers (docker/Dockerfile.<engine> installs the engine wheel's own pins)."""
    facts = json.loads((REPO / "pipeline" / "engines" / "facts" / f"{engine}.json").read_text())
    packages, ranges = {}, {}
    for name, entry in facts["requirements"].items():
        specifier = Requirement(entry["requirement"]).specifier
        exact = [spec.version for spec in specifier if spec.operator == "=="]
        if exact:
            packages[name] = {"version": exact[0]}
        else:
            ranges[name] = {"specifier": str(specifier)}
    return packages, ranges


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_project_requirements_resolve_against_each_engine_image(engine):
    packages, ranges = engine_image(engine)
    assert {"torch", "transformers"} <= packages.keys() | ranges.keys()
    assert unsatisfied(project_requirements(), packages, ranges) == []


@pytest.mark.parametrize("engine,line", [("vllm", "torch<2.14"), ("vllm", "transformers>=5.23"),
                                         ("sglang", "transformers<5.19")])
def test_a_requirement_an_engine_image_cannot_meet_is_reported(engine, line):
    assert unsatisfied([Requirement(line)], *engine_image(engine))
