"""Static evaluation of constant expressions and type annotations in a wheel's source.

`Evaluator.value` folds literals, module constants (following imports inside the wheel), class attributes,
list concatenation and a few pure builtins (`list`, `sorted`, `get_args`). `Evaluator.hints` turns an
annotation into the set of type atoms that argparse-building code switches on. Anything else raises
`Unresolved` carrying the expression text, so callers record the expression instead of guessing a value.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .wheel import Module, WheelSource


class Unresolved(Exception):
    """An expression whose value is not a constant of the wheel (its text is the message)."""


@dataclass(frozen=True)
class ClassRef:
    module: Module
    node: ast.ClassDef

    @property
    def name(self) -> str:
        return self.node.name

    def cite(self) -> str:
        return self.module.cite(self.node)


@dataclass(frozen=True)
class ModuleRef:
    name: str


@dataclass(frozen=True)
class LiteralType:
    values: tuple


@dataclass(frozen=True)
class External:
    """A name from outside the wheel (torch.dtype, typing.Any, ...)."""

    text: str


# Type atoms produced by Evaluator.hints
@dataclass(frozen=True)
class Atom:
    kind: str  # bool int float str none dict list tuple set literal dataclass other
    args: tuple = ()  # literal values, or element atoms for list/tuple/set
    ref: object = None  # ClassRef for dataclass/other classes


BUILTIN_ATOMS = {"bool": "bool", "int": "int", "float": "float", "str": "str", "dict": "dict",
                 "Dict": "dict", "list": "list", "List": "list", "tuple": "tuple", "Tuple": "tuple",
                 "set": "set", "Set": "set", "bytes": "other", "object": "other", "frozenset": "other"}
COLLECTIONS = {"list", "tuple", "set"}
TRANSPARENT = {"Annotated", "SkipValidation", "InitVar", "Required", "NotRequired", "Final"}
PURE_CALLS = {"list": list, "tuple": list, "sorted": sorted, "set": list, "frozenset": list}


class Evaluator:
    def __init__(self, source: WheelSource):
        self.source = source
        self._symbols: dict[str, dict[str, tuple[Module, ast.AST]]] = {}

    # -- symbols -----------------------------------------------------------------------------------------
    def symbols(self, module: Module) -> dict:
        if module.name not in self._symbols:
            table: dict = {}
            self._collect(module, module.tree.body, table)
            self._symbols[module.name] = table
        return self._symbols[module.name]

    def _collect(self, module: Module, body: list, table: dict) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                table.setdefault(stmt.name, (module, stmt))
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        table[target.id] = (module, stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                table[stmt.target.id] = (module, stmt.value)
            elif isinstance(stmt, ast.ImportFrom):
                base = self._import_base(module, stmt)
                for alias in stmt.names:
                    table.setdefault(alias.asname or alias.name, (module, ("from", base, alias.name)))
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    local = alias.asname or alias.name.split(".")[0]
                    target = alias.name if alias.asname else alias.name.split(".")[0]
                    table.setdefault(local, (module, ("module", target)))
            elif isinstance(stmt, ast.If):
                self._collect(module, stmt.body, table)
                self._collect(module, stmt.orelse, table)
            elif isinstance(stmt, ast.Try):
                self._collect(module, stmt.body, table)

    @staticmethod
    def _import_base(module: Module, stmt: ast.ImportFrom) -> str:
        if not stmt.level:
            return stmt.module or ""
        parts = module.package.split(".")
        parts = parts[: len(parts) - stmt.level + 1]
        return ".".join(parts + ([stmt.module] if stmt.module else []))

    def lookup(self, module: Module, name: str, depth: int = 0):
        """(module, node) for a module-level name, following imports; ModuleRef/External otherwise."""
        if depth > 20:
            raise Unresolved(name)
        entry = self.symbols(module).get(name)
        if entry is None:
            raise Unresolved(name)
        owner, node = entry
        if isinstance(node, tuple) and node[0] == "module":
            return ModuleRef(node[1]) if self.source.has(node[1]) else External(node[1])
        if isinstance(node, tuple) and node[0] == "from":
            _, base, attr = node
            if self.source.has(f"{base}.{attr}"):
                return ModuleRef(f"{base}.{attr}")
            if not self.source.has(base):
                return External(f"{base}.{attr}")
            return self.lookup(self.source.module(base), attr, depth + 1)
        return owner, node

    def resolve(self, module: Module, node: ast.expr):
        """A Name/Attribute chain to (module, definition node), ModuleRef or External."""
        if isinstance(node, ast.Name):
            return self.lookup(module, node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(module, node.value)
            if isinstance(base, ModuleRef):
                return self.lookup(self.source.module(base.name), node.attr)
            if isinstance(base, External):
                return External(f"{base.text}.{node.attr}")
            owner, definition = base
            if isinstance(definition, ast.ClassDef):
                return self.class_attribute(ClassRef(owner, definition), node.attr)
        raise Unresolved(ast.unparse(node))

    def class_ref(self, module: Module, node: ast.expr) -> ClassRef | None:
        try:
            found = self.resolve(module, node)
        except Unresolved:
            return None
        if isinstance(found, tuple) and isinstance(found[1], ast.ClassDef):
            return ClassRef(*found)
        return None

    def class_attribute(self, cls: ClassRef, attr: str):
        for stmt in cls.node.body:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attr
                                                    for t in stmt.targets):
                return cls.module, stmt.value
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                    and stmt.target.id == attr and stmt.value is not None:
                return cls.module, stmt.value
        for base in self.bases(cls):
            try:
                return self.class_attribute(base, attr)
            except Unresolved:
                continue
        raise Unresolved(f"{cls.name}.{attr}")

    def bases(self, cls: ClassRef) -> list[ClassRef]:
        return [ref for base in cls.node.bases if (ref := self.class_ref(cls.module, base))]

    # -- values ------------------------------------------------------------------------------------------
    def value(self, module: Module, node: ast.expr, scope: ClassRef | None = None):
        """The constant `node` stands for; names are looked up in `scope` (a class body) first."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = []
            for element in node.elts:
                if isinstance(element, ast.Starred):
                    items.extend(self.value(module, element.value, scope))
                else:
                    items.append(self.value(module, element, scope))
            return items
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise Unresolved(ast.unparse(node))
            return {self.value(module, k, scope): self.value(module, v, scope)
                    for k, v in zip(node.keys, node.values, strict=True)}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.value(module, node.operand, scope)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.value(module, node.left, scope) + self.value(module, node.right, scope)
        if isinstance(node, ast.Subscript) and self._is_literal(module, node.value):
            return LiteralType(tuple(self.literal_values(module, node.slice)))
        if isinstance(node, ast.Call):
            return self._call(module, node)
        if isinstance(node, ast.Name) and scope is not None:
            try:
                return self.value(*self.class_attribute(scope, node.id), scope)
            except Unresolved:
                pass
        if isinstance(node, (ast.Name, ast.Attribute)):
            found = self.resolve(module, node)
            if isinstance(found, tuple) and isinstance(found[1], ast.expr):
                owner_scope = self._owner_class(node, module)
                return self.value(found[0], found[1], owner_scope)
        raise Unresolved(ast.unparse(node))

    def _owner_class(self, node: ast.expr, module: Module) -> ClassRef | None:
        """The class whose body defines `Cls.ATTR`, so its sibling attributes resolve."""
        if isinstance(node, ast.Attribute):
            return self.class_ref(module, node.value)
        return None

    def _call(self, module: Module, node: ast.Call):
        name = ast.unparse(node.func)
        if name in PURE_CALLS and len(node.args) == 1 and not node.keywords:
            return PURE_CALLS[name](self.value(module, node.args[0]))
        if name in {"get_args", "typing.get_args"} and len(node.args) == 1:
            found = self.value(module, node.args[0])
            if isinstance(found, LiteralType):
                return list(found.values)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "keys" and not node.args:
            return list(self.value(module, node.func.value))
        raise Unresolved(ast.unparse(node))

    def _is_literal(self, module: Module, node: ast.expr) -> bool:
        return ast.unparse(node) in {"Literal", "typing.Literal", "typing_extensions.Literal"}

    def literal_values(self, module: Module, node: ast.expr) -> list:
        elements = node.elts if isinstance(node, ast.Tuple) else [node]
        values = []
        for element in elements:
            found = self.value(module, element)
            values.extend(found.values if isinstance(found, LiteralType) else [found])
        return values

    # -- annotations -------------------------------------------------------------------------------------
    def hints(self, module: Module, node: ast.expr) -> set[Atom]:
        """The flattened union of type atoms an annotation stands for."""
        if isinstance(node, ast.Constant):
            if node.value is None:
                return {Atom("none")}
            if isinstance(node.value, str):  # forward reference
                return self.hints(module, ast.parse(node.value, mode="eval").body)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.hints(module, node.left) | self.hints(module, node.right)
        if isinstance(node, ast.Subscript):
            return self._subscript_hints(module, node)
        if isinstance(node, (ast.Name, ast.Attribute)):
            return self._name_hints(module, node)
        return {Atom("other", (ast.unparse(node),))}

    def _subscript_hints(self, module: Module, node: ast.Subscript) -> set[Atom]:
        base = ast.unparse(node.value).split(".")[-1]
        elements = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base == "Literal":
            return {Atom("literal", tuple(self.literal_values(module, node.slice)))}
        if base == "Optional":
            return self.hints(module, elements[0]) | {Atom("none")}
        if base == "Union":
            return set().union(*(self.hints(module, e) for e in elements))
        if base in TRANSPARENT:
            return self.hints(module, elements[0])
        kind = BUILTIN_ATOMS.get(base)
        if kind in COLLECTIONS:
            args = tuple("..." if isinstance(e, ast.Constant) and e.value is Ellipsis
                         else frozenset(self.hints(module, e)) for e in elements)
            return {Atom(kind, args)}
        if kind:
            return {Atom(kind)}
        return self._name_hints(module, node.value)

    def _name_hints(self, module: Module, node: ast.expr) -> set[Atom]:
        text = ast.unparse(node)
        if isinstance(node, ast.Name) and node.id in BUILTIN_ATOMS:
            return {Atom(BUILTIN_ATOMS[node.id])}
        if text == "None":
            return {Atom("none")}
        try:
            found = self.resolve(module, node)
        except Unresolved:
            return {Atom("other", (text,))}
        if isinstance(found, (External, ModuleRef)):
            return {Atom("other", (text,))}
        owner, definition = found
        if isinstance(definition, ast.ClassDef):
            return {self._class_atom(ClassRef(owner, definition))}
        if isinstance(definition, ast.expr):  # a type alias
            return self.hints(owner, definition)
        return {Atom("other", (text,))}

    def _class_atom(self, cls: ClassRef) -> Atom:
        if self.is_dataclass(cls):
            return Atom("dataclass", ref=cls)
        if self.is_dict_subclass(cls):
            return Atom("dict", ref=cls)
        return Atom("other", (cls.name,), ref=cls)

    def is_dataclass(self, cls: ClassRef) -> bool:
        names = {ast.unparse(d.func if isinstance(d, ast.Call) else d).split(".")[-1]
                 for d in cls.node.decorator_list}
        return bool(names & {"config", "dataclass"})

    def is_dict_subclass(self, cls: ClassRef) -> bool:
        texts = {ast.unparse(b).split("[")[0].split(".")[-1] for b in cls.node.bases}
        if "TypedDict" in texts:
            return False
        return "dict" in texts or "Dict" in texts or any(self.is_dict_subclass(b) for b in self.bases(cls))
