"""The import direction of docs/architecture.md holds: each unit of `pipeline/` imports only what its section's
`May import:` line names, and nothing but `pipeline/cli.py` imports `pipeline.commands`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "pipeline"
DOC = REPO / "docs" / "architecture.md"


def allowed_imports(doc: str) -> dict[str, set[str]]:
    """unit -> the units its section's `May import:` line names (a line may wrap onto the next)."""
    allowed = {}
    for section in re.split(r"^### ", doc, flags=re.M)[1:]:
        unit = re.match(r"`pipeline\.(\w+)`", section)[1]
        names = re.search(r"^May import: (.*?)(?:\n\n|\Z)", section, re.M | re.S)[1]
        allowed[unit] = set() if names.strip() == "(nothing)" else {n.strip() for n in names.split(",")}
    return allowed


def unit_of(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def imported_units(path: Path) -> set[str]:
    """The top-level `pipeline` units a file imports (the package root itself, e.g. `__version__`, left out)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = ([f"pipeline.{alias.name}" for alias in node.names] if node.module == "pipeline"
                       else [node.module])
        else:
            continue
        found |= {m.split(".")[1] for m in modules if m.startswith("pipeline.")}
    return {unit for unit in found if (PACKAGE / unit).is_dir() or (PACKAGE / f"{unit}.py").is_file()}


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_unit_has_a_section():
    units = {unit_of(p) for p in SOURCES}
    missing = units - set(allowed_imports(DOC.read_text()))
    assert not missing, f"docs/architecture.md: add a section with a `May import:` line for {sorted(missing)}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_architecture(path):
    unit = unit_of(path)
    allowed = allowed_imports(DOC.read_text()).get(unit, set())
    unexpected = imported_units(path) - allowed - {unit}
    assert not unexpected, f"pipeline/{path.relative_to(PACKAGE)} imports {sorted(unexpected)}; docs/architecture.md " \
                           f"lets pipeline.{unit} import only {sorted(allowed)}"


def test_only_the_cli_imports_the_commands():
    importers = [str(p.relative_to(REPO)) for p in SOURCES
                 if "commands" in imported_units(p) and unit_of(p) not in ("commands", "cli")]
    assert importers == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from pipeline.commands.plan import plan\nimport pipeline.topology as t\nfrom pipeline import errors\n")
    assert imported_units(bad) == {"commands", "topology", "errors"}
