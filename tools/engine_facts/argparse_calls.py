"""Replay the `add_argument` calls of a function body statically and describe every flag they register.

A flag comes out as a JSON-ready dict: `names` (every option string argparse registers), `type` (one of
TYPES), `nargs` (0 = no value), optional `choices`, `nullable`, `min`/`max`, `default` (a JSON value, or
{"expr": source text} when it is not a constant of the wheel), `deprecated`, and `source` (file:line of
the add_argument call). Local variables holding per-field kwargs tables (vLLM's `get_kwargs(Config)`)
and their mutations (`kw["x"]["type"] = ...`, `.remove(...)`, `del kw["x"]["nargs"]`) are followed.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable

from .evaluate import ClassRef, Evaluator, Unresolved
from .wheel import Module

# What the checker can verify for a value; every type callable must map to one of these.
TYPES = {"int", "float", "str", "json", "json_or_str", "human_int", "human_int_or_auto", "any"}
BASE_TYPE_CALLABLES = {"int": "int", "float": "float", "str": "str", "json.loads": "json"}
WRAPPERS_NULLABLE = {"optional_type"}
WRAPPERS_PLAIN = {"parse_type"}
NO_VALUE_ACTIONS = {"store_true", "store_false", "store_const", "count", "help", "version"}
BOOLEAN_OPTIONAL = {"argparse.BooleanOptionalAction", "BooleanOptionalAction"}


def expr_default(module: Module, ev: Evaluator, node: ast.expr):
    """A JSON value for a default, or {"expr": text} when it is not a constant of the wheel."""
    try:
        value = ev.value(module, node)
    except Unresolved:
        return {"expr": ast.unparse(node)}
    return value if _is_json(value) else {"expr": ast.unparse(node)}


def _is_json(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return value is None or isinstance(value, (bool, int, float, str))


class Recorder:
    """Collects flags from one or more function bodies of one module."""

    def __init__(self, ev: Evaluator, module: Module, type_callables: dict[str, str],
                 factories: dict[str, Callable] | None = None):
        self.ev = ev
        self.module = module
        self.type_callables = {**BASE_TYPE_CALLABLES, **type_callables}
        self.factories = factories or {}  # callee text -> fn(call, recorder) -> value
        self.flags: list[dict] = []

    # -- statements ---------------------------------------------------------------------------------
    def run(self, body: list[ast.stmt], env: dict | None = None) -> dict:
        env = {} if env is None else env
        for stmt in body:
            self._statement(stmt, env)
        return env

    def _statement(self, stmt: ast.stmt, env: dict) -> None:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                self._assign(target, stmt.value, env)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self._call_statement(stmt.value, env)
        elif isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                if isinstance(target, ast.Subscript):
                    self._container(target.value, env).pop(self._key(target.slice, env), None)
        elif isinstance(stmt, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
            for block in ("body", "orelse", "finalbody"):
                self.run(getattr(stmt, block, []), env)

    def _assign(self, target: ast.expr, value: ast.expr, env: dict) -> None:
        if isinstance(target, ast.Name):
            if self._factory(value):  # errors inside a factory are the extractor's, never swallowed
                env[target.id] = self.eval(value, env)
                return
            try:
                env[target.id] = self.eval(value, env)
            except Unresolved:
                env.pop(target.id, None)
        elif isinstance(target, ast.Subscript):
            key = self._key(target.slice, env)
            self._container(target.value, env)[key] = self.setting(key, value, env)

    def _call_statement(self, call: ast.Call, env: dict) -> None:
        func = call.func
        if self._factory(call):
            self.eval(call, env)
        elif not isinstance(func, ast.Attribute):
            return
        elif func.attr == "add_argument":
            self.add_argument(call, env)
        elif func.attr == "remove":
            self._container(func.value, env, list).remove(self.eval(call.args[0], env))
        elif func.attr == "update":
            self._container(func.value, env).update(self.eval(call.args[0], env))

    def _container(self, node: ast.expr, env: dict, kind=dict):
        found = self.eval(node, env)
        if not isinstance(found, kind):
            raise Unresolved(f"{self.module.cite(node)}: {ast.unparse(node)} is not a known {kind.__name__}")
        return found

    def _factory(self, node: ast.expr):
        return isinstance(node, ast.Call) and self.factories.get(ast.unparse(node.func))

    def _key(self, node: ast.expr, env: dict):
        return self.eval(node, env)

    # -- expressions --------------------------------------------------------------------------------
    def eval(self, node: ast.expr, env: dict):
        if isinstance(node, ast.Name) and node.id in env:
            return env[node.id]
        if isinstance(node, ast.Subscript):
            base = self.eval(node.value, env)
            if isinstance(base, dict):
                return base[self._key(node.slice, env)]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.eval(node.left, env) + self.eval(node.right, env)
        if isinstance(node, (ast.List, ast.Tuple)) and not any(isinstance(e, ast.Starred) for e in node.elts):
            return [self.eval(element, env) for element in node.elts]
        if isinstance(node, ast.Dict) and any(k is None for k in node.keys):
            merged: dict = {}
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    merged.update(self.eval(value, env))
                else:
                    merged[self.eval(key, env)] = self.setting(self.eval(key, env), value, env)
            return merged
        if isinstance(node, ast.Call):
            factory = self._factory(node)
            if factory:
                return factory(node, self)
            if isinstance(node.func, ast.Attribute) and node.func.attr == "pop":
                return self._container(node.func.value, env).pop(
                    self.eval(node.args[0], env), *(self.eval(a, env) for a in node.args[1:]))
        return self.ev.value(self.module, node)

    def setting(self, key: str, node: ast.expr, env: dict):
        """The normalized value of one add_argument keyword."""
        if key == "type":
            return self.type_of(node)
        if key == "action":
            return self.action_of(node)
        if key == "default":
            if (isinstance(node, ast.Name) and node.id in env) or self._factory(node):
                return self.eval(node, env)
            return expr_default(self.module, self.ev, node)
        if key in {"help", "metavar"}:
            return None
        try:
            return self.eval(node, env)
        except Unresolved:
            return {"expr": ast.unparse(node)}

    def type_of(self, node: ast.expr) -> tuple[str, bool]:
        """(type name, nullable) for a `type=` callable."""
        text = ast.unparse(node)
        if text in self.type_callables:
            return self.type_callables[text], False
        if isinstance(node, ast.Lambda) and "lambda" in self.type_callables:
            return self.type_callables["lambda"], False
        if isinstance(node, ast.Call) and len(node.args) == 1:
            wrapper = ast.unparse(node.func)
            if wrapper in WRAPPERS_NULLABLE | WRAPPERS_PLAIN:
                inner, nullable = self.type_of(node.args[0])
                return inner, nullable or wrapper in WRAPPERS_NULLABLE
        print(f"warning: {self.module.cite(node)}: unknown type callable {text!r}; recorded as 'any'",
              file=sys.stderr)
        return "any", False

    def action_of(self, node: ast.expr) -> dict:
        """{'kind': store|no_value|boolean_optional|append, 'nargs': default nargs of a custom class}."""
        text = ast.unparse(node)
        if isinstance(node, ast.Constant):
            kind = "no_value" if node.value in NO_VALUE_ACTIONS else node.value
            return {"kind": "append" if kind in {"append", "extend"} else kind, "name": text}
        if text in BOOLEAN_OPTIONAL:
            return {"kind": "boolean_optional", "name": text}
        cls = self.ev.class_ref(self.module, node)
        nargs = _custom_action_nargs(cls) if cls else None
        return {"kind": "no_value" if nargs == 0 else "store", "name": text, "class": cls.cite() if cls else None}

    # -- add_argument -------------------------------------------------------------------------------
    def add_argument(self, call: ast.Call, env: dict) -> None:
        names: list[str] = []
        for arg in call.args:
            if isinstance(arg, ast.Starred):
                names.extend(self.eval(arg.value, env))
            else:
                names.append(self.eval(arg, env))
        kwargs: dict = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                kwargs.update(self.eval(keyword.value, env))
            else:
                kwargs[keyword.arg] = self.setting(keyword.arg, keyword.value, env)
        if names and all(n.startswith("-") for n in names):
            self.flags.append(describe(names, kwargs, self.module.cite(call)))


def _custom_action_nargs(cls: ClassRef):
    """The nargs a custom argparse.Action passes to argparse when the caller gives none."""
    for stmt in cls.node.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
            params = stmt.args.args + stmt.args.kwonlyargs
            defaults = [None] * (len(stmt.args.args) - len(stmt.args.defaults)) + stmt.args.defaults \
                + stmt.args.kw_defaults
            for param, default in zip(params, defaults, strict=True):
                if param.arg == "nargs" and isinstance(default, ast.Constant):
                    return default.value
            for node in ast.walk(stmt):
                if isinstance(node, ast.keyword) and node.arg == "nargs" and isinstance(node.value, ast.Constant):
                    return node.value.value
    return None


def describe(names: list[str], kwargs: dict, source: str) -> dict:
    """The JSON description of one registered flag from its normalized add_argument kwargs."""
    action = kwargs.get("action") or {"kind": "store"}
    type_name, nullable = kwargs.get("type") or ("str", False)
    if "nargs" in kwargs:  # explicit, even None (a custom no-value action told to take one value)
        nargs = kwargs["nargs"]
    else:
        nargs = 0 if action["kind"] in {"no_value", "boolean_optional"} else None
    entry = {"names": list(names)}
    if action["kind"] == "boolean_optional":
        entry["negations"] = [f"--no-{n[2:]}" for n in names if n.startswith("--")]
    entry["nargs"] = nargs
    if nargs != 0:
        entry["type"] = type_name
    if isinstance(kwargs.get("choices"), dict):  # not a constant: keep the expression, check nothing
        kwargs = {**kwargs, "choices_expr": kwargs["choices"]["expr"], "choices": None}
    for key in ("choices", "choices_expr", "min", "max", "min_exclusive", "max_exclusive", "choices_checked_by"):
        if kwargs.get(key) is not None:
            entry[key] = kwargs[key]
    if nullable or kwargs.get("nullable"):
        entry["nullable"] = True
    if action["kind"] == "append":
        entry["repeatable"] = True
    if kwargs.get("required"):
        entry["required"] = True
    if kwargs.get("deprecated"):
        entry["deprecated"] = True
    if "default" in kwargs:
        entry["default"] = kwargs["default"]
    entry["source"] = source
    if kwargs.get("field"):
        entry["field"] = kwargs["field"]
    return entry
