"""Facts found by scanning source: registry dicts, Prometheus metric constructors, HTTP routes, anchors.

Each scan returns JSON-ready data whose every entry carries `source` (path:line in the wheel).
"""

from __future__ import annotations

import ast

from .evaluate import Evaluator, Unresolved
from .wheel import WheelSource

METRIC_KINDS = {"gauge": "gauge", "counter": "counter", "histogram": "histogram", "summary": "summary",
                "info": "info", "enum": "enum"}
ROUTE_METHODS = {"get", "post", "put", "delete", "patch", "api_route", "add_get", "add_post"}


def registry_keys(source: WheelSource, module_name: str, variable: str) -> dict[str, str]:
    """{key: path:line} for the string keys of a module-level or class-level dict literal."""
    module = source.module(module_name)
    for node in ast.walk(module.tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == variable for t in targets) and isinstance(node.value, ast.Dict):
            return {k.value: module.cite(k) for k in node.value.keys if isinstance(k, ast.Constant)}
    raise KeyError(f"{module.path}: no dict literal named {variable}")


def metrics(source: WheelSource, package: str, prefix: str) -> dict[str, dict]:
    """Every Prometheus metric constructed with a constant name starting with `prefix`."""
    ev = Evaluator(source)
    found: dict[str, dict] = {}
    for module in source.modules_under(package):
        if "/test" in module.path:
            continue
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            kind = _metric_kind(node.func)
            name_node = next((k.value for k in node.keywords if k.arg == "name"), node.args[0] if node.args else None)
            if kind is None or name_node is None:
                continue
            try:
                name = ev.value(module, name_node)
            except Unresolved:
                continue
            if isinstance(name, str) and name.startswith(prefix):
                found.setdefault(name, {"kind": kind, "source": module.cite(node)})
    return dict(sorted(found.items()))


def _metric_kind(func: ast.expr) -> str | None:
    text = ast.unparse(func).split(".")[-1].lower().strip("_")
    for suffix in ("_cls", "cls"):
        text = text.removesuffix(suffix)
    return METRIC_KINDS.get(text)


def routes(source: WheelSource, package: str) -> dict[str, list[str]]:
    """{path: [file:line, ...]} for every FastAPI/aiohttp route registered with a constant path."""
    found: dict[str, list[str]] = {}
    for module in source.modules_under(package):
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ROUTE_METHODS and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                    and node.args[0].value.startswith("/"):
                found.setdefault(node.args[0].value, []).append(module.cite(node))
    return dict(sorted(found.items()))


def endpoint(found_routes: dict[str, list[str]], path: str, server_file: str) -> dict:
    """{path, source} for a route `server_file` registers (KeyError when the engine dropped it)."""
    cites = [c for c in found_routes.get(path, []) if c.startswith(server_file + ":")]
    if not cites:
        raise KeyError(f"{server_file}: registers no route {path}")
    return {"path": path, "source": cites[0]}


def anchor(source: WheelSource, module_name: str, needle: str) -> str:
    """path:line of the first line of a module containing `needle` (KeyError if the fact moved)."""
    module = source.module(module_name)
    return module.cite(module.line_of(needle))


def requirement(source: WheelSource, package: str) -> dict:
    spec, line = source.requirement(package)
    return {"requirement": spec, "source": f"{source.metadata_path}:{line}"}
