"""A released wheel as source text: modules by dotted name, parsed once, cited as `path:line`.

The wheel is read in place (zipfile); nothing is imported or extracted.
"""

from __future__ import annotations

import ast
import hashlib
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


@dataclass(eq=False)
class Module:
    name: str  # dotted, e.g. vllm.engine.arg_utils
    path: str  # path inside the wheel, e.g. vllm/engine/arg_utils.py
    text: str
    tree: ast.Module = field(repr=False)

    @property
    def package(self) -> str:
        return self.name if self.path.endswith("__init__.py") else self.name.rpartition(".")[0]

    def cite(self, node_or_line) -> str:
        line = node_or_line if isinstance(node_or_line, int) else node_or_line.lineno
        return f"{self.path}:{line}"

    def line_of(self, needle: str) -> int:
        """1-based line of the first line containing `needle`; KeyError names the file when absent."""
        for number, line in enumerate(self.text.splitlines(), start=1):
            if needle in line:
                return number
        raise KeyError(f"{self.path}: no line contains {needle!r}")


class WheelSource:
    """Python sources of one wheel, keyed by module name."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._zip = zipfile.ZipFile(self.path)
        self._paths = {self._module_name(n): n for n in self._zip.namelist()
                       if n.endswith(".py") and ".dist-info/" not in n}
        self._modules: dict[str, Module] = {}

    @staticmethod
    def _module_name(path: str) -> str:
        name = path[:-3].replace("/", ".")
        return name.removesuffix(".__init__")

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @cached_property
    def metadata(self) -> str:
        name = next(n for n in self._zip.namelist() if n.endswith(".dist-info/METADATA"))
        return self._zip.read(name).decode()

    @property
    def metadata_path(self) -> str:
        return next(n for n in self._zip.namelist() if n.endswith(".dist-info/METADATA"))

    @cached_property
    def version(self) -> str:
        return next(line.split(":", 1)[1].strip() for line in self.metadata.splitlines()
                    if line.startswith("Version:"))

    def has(self, name: str) -> bool:
        return name in self._paths

    def module(self, name: str) -> Module:
        if name not in self._modules:
            if name not in self._paths:
                raise KeyError(f"{self.path.name}: no module {name}")
            path = self._paths[name]
            text = self._zip.read(path).decode()
            self._modules[name] = Module(name, path, text, ast.parse(text, filename=path))
        return self._modules[name]

    def modules_under(self, package: str):
        """Every module of `package` and its subpackages, in path order."""
        prefix = package + "."
        for name in sorted(self._paths):
            if name == package or name.startswith(prefix):
                yield self.module(name)

    def requirement(self, package: str) -> tuple[str, int]:
        """('torch==2.14.0', line) for the METADATA Requires-Dist line of `package`."""
        for number, line in enumerate(self.metadata.splitlines(), start=1):
            if line.startswith("Requires-Dist:"):
                spec = line.split(":", 1)[1].strip()
                base = spec.split(";")[0].strip()
                name = base.split("[")[0]
                for sep in "=<>!~ ":
                    name = name.split(sep)[0]
                if name.replace("_", "-").lower() == package.replace("_", "-").lower() and ";" not in spec:
                    return base, number
        raise KeyError(f"{self.metadata_path}: no unconditional Requires-Dist for {package}")
