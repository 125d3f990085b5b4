"""vLLM: the `vllm serve` flags (OpenAI frontend + AsyncEngineArgs), parsers, metrics and serving facts.

Config-dataclass flags are derived the way vLLM's `_compute_kwargs` (vllm/engine/arg_utils.py) derives
them: from each field's annotation, default and pydantic constraints. The decision order below follows
that function; `human_readable_int_args` is read from it rather than copied.
"""

from __future__ import annotations

import ast

from .argparse_calls import Recorder, describe, expr_default
from .evaluate import Atom, ClassRef, Evaluator, Unresolved
from .scans import anchor, endpoint, metrics, registry_keys, requirement, routes
from .wheel import WheelSource

ARG_UTILS = "vllm.engine.arg_utils"
CLI_ARGS = "vllm.entrypoints.common.cli_args"
TYPE_CALLABLES = {"human_readable_int": "human_int", "human_readable_int_or_auto": "human_int_or_auto",
                  "union_dict_and_str": "json_or_str", "parse_reasoning_parser": "str", "lambda": "str",
                  "json.loads": "json"}
SCALAR_TYPES = {"int": "int", "float": "float", "str": "str", "bool": "str"}
FIELD_CALLS = {"field", "Field", "dataclasses.field", "PydanticField"}
CONSTRAINTS = {"ge": ("min", False), "gt": ("min", True), "le": ("max", False), "lt": ("max", True)}
INVERSE_PREFIXES = {"--enable-": "--disable-", "--disable-": "--enable-"}  # EnableDisableAction


class ConfigKwargs:
    """Static `get_kwargs(cls)`: {field name: normalized argparse kwargs} for a vLLM config dataclass."""

    def __init__(self, ev: Evaluator):
        self.ev = ev
        module = ev.source.module(ARG_UTILS)
        compute = next(n for n in ast.walk(module.tree)
                       if isinstance(n, ast.FunctionDef) and n.name == "_compute_kwargs")
        assign = next(n for n in ast.walk(compute) if isinstance(n, ast.Assign)
                      and ast.unparse(n.targets[0]) == "human_readable_int_args")
        self.human_int_fields = set(ev.value(module, assign.value))

    def __call__(self, cls: ClassRef) -> dict[str, dict]:
        return {name: self.field_kwargs(name, owner, stmt) for name, owner, stmt in self.fields(cls)}

    def fields(self, cls: ClassRef):
        """(name, owner class, AnnAssign) of each dataclass field, bases first, as dataclasses.fields."""
        ordered: dict[str, tuple] = {}
        for base in reversed(self.ev.bases(cls)):
            for name, owner, stmt in self.fields(base):
                ordered[name] = (owner, stmt)
        for stmt in cls.node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                head = ast.unparse(stmt.annotation).split("[")[0].split(".")[-1]
                if head not in {"ClassVar", "InitVar"}:
                    ordered[stmt.target.id] = (cls, stmt)
        return [(name, owner, stmt) for name, (owner, stmt) in ordered.items()]

    def field_kwargs(self, name: str, owner: ClassRef, stmt: ast.AnnAssign) -> dict:
        module = owner.module
        hints = self.ev.hints(module, stmt.annotation)
        kwargs: dict = {"field": module.cite(stmt)}
        kwargs.update(self._default(module, stmt.value))
        kwargs.update(self._kind(name, hints))
        if any(a.kind == "none" for a in hints) and not any(a.kind == "bool" for a in hints):
            kwargs["nullable"] = True
            if kwargs.get("choices") is not None:
                kwargs["choices"] = kwargs["choices"] + [None]
        return kwargs

    def _default(self, module, value: ast.expr | None) -> dict:
        if value is None:
            return {}
        if isinstance(value, ast.Call) and ast.unparse(value.func) in FIELD_CALLS:
            out: dict = {}
            keywords = {k.arg: k.value for k in value.keywords}
            if value.args:
                keywords.setdefault("default", value.args[0])
            if "default" in keywords:
                out["default"] = expr_default(module, self.ev, keywords["default"])
            elif "default_factory" in keywords:
                out["default"] = self._factory_default(module, keywords["default_factory"])
            for key, (bound, exclusive) in CONSTRAINTS.items():
                if key in keywords:
                    out[bound] = expr_default(module, self.ev, keywords[key])
                    if exclusive:
                        out[f"{bound}_exclusive"] = True
            return out
        return {"default": expr_default(module, self.ev, value)}

    def _factory_default(self, module, factory: ast.expr):
        if isinstance(factory, ast.Lambda):
            return expr_default(module, self.ev, factory.body)
        if ast.unparse(factory) in {"list", "set", "tuple"}:
            return []
        if ast.unparse(factory) == "dict":
            return {}
        return {"expr": f"{ast.unparse(factory)}()"}

    def _kind(self, name: str, hints: set[Atom]) -> dict:
        """type/action/choices/nargs in the order of vLLM's `_compute_kwargs`."""
        kinds = {a.kind for a in hints}
        if "dataclass" in kinds:
            return {"type": ("json", False)}
        if kinds == {"bool", "str", "none"}:
            return {"type": ("str", False), "nargs": "?"}
        if "bool" in kinds:
            return {"action": {"kind": "boolean_optional"}}
        if "literal" in kinds:
            return self._literal(next(a for a in hints if a.kind == "literal"), "str" in kinds)
        for collection in ("tuple", "list", "set"):
            atom = next((a for a in hints if a.kind == collection), None)
            if atom is not None:
                return self._collection(atom)
        if "int" in kinds:
            if name == "max_model_len":
                return {"type": ("human_int_or_auto", False)}
            return {"type": ("human_int" if name in self.human_int_fields else "int", False)}
        if "float" in kinds:
            return {"type": ("float", False)}
        if "dict" in kinds:
            json_or_str = "str" in kinds or "other" in kinds
            return {"type": ("json_or_str" if json_or_str else "json", False)}
        return {"type": ("str", False)}

    @staticmethod
    def _literal(atom: Atom, also_str: bool) -> dict:
        values = sorted(atom.args)
        return {"type": (SCALAR_TYPES[type(values[0]).__name__], False), "choices": values,
                "choices_checked_by": "engine" if also_str else "argparse"}

    def _collection(self, atom: Atom) -> dict:
        elements = [e for e in atom.args if e != "..."]
        nargs = "+" if atom.kind != "tuple" or "..." in atom.args else len(atom.args)
        element = elements[0] if elements else frozenset({Atom("str")})
        kinds = {a.kind for a in element}
        if "literal" in kinds:
            return {**self._literal(next(a for a in element if a.kind == "literal"), "str" in kinds),
                    "nargs": nargs}
        if len(kinds - {"none"}) > 1:  # list[int | str] -> str elements
            return {"type": ("str", False), "nargs": nargs}
        kind = next(iter(kinds))
        return {"type": (SCALAR_TYPES.get(kind, "any"), False), "nargs": nargs}


class VllmFlags:
    """Replays make_arg_parser: the entrypoint's own flags, FrontendArgs, then AsyncEngineArgs."""

    def __init__(self, source: WheelSource):
        self.ev = Evaluator(source)
        self.config_kwargs = ConfigKwargs(self.ev)
        self.cli = source.module(CLI_ARGS)
        self.engine = source.module(ARG_UTILS)

    def collect(self) -> list[dict]:
        make_parser = self._function(self.cli, None, "make_arg_parser")
        recorder = self._recorder(self.cli)
        recorder.factories.update({
            "FrontendArgs.add_cli_args": lambda call, rec: self._frontend(rec),
            "AsyncEngineArgs.add_cli_args": lambda call, rec: self._engine_args(rec),
        })
        recorder.run(make_parser.body)
        return [self._with_inverses(flag) for flag in recorder.flags]

    def _recorder(self, module) -> Recorder:
        def get_kwargs(call, rec):
            return self.config_kwargs(self.ev.class_ref(rec.module, call.args[0]))
        return Recorder(self.ev, module, TYPE_CALLABLES, {"get_kwargs": get_kwargs})

    def _frontend(self, outer: Recorder) -> None:
        """FrontendArgs.add_cli_args: `--<field>` for every field after `_customize_cli_kwargs`."""
        frontend = self.ev.class_ref(self.cli, ast.Name("FrontendArgs"))
        table = self.config_kwargs(frontend)
        base = self.ev.bases(frontend)[0]
        recorder = self._recorder(self.cli)
        recorder.factories["super()._customize_cli_kwargs"] = lambda call, rec: table
        for cls in (base, frontend):
            method = self._function(self.cli, cls.name, "_customize_cli_kwargs")
            recorder.run(method.body, {"frontend_kwargs": table})
        loop = self._function(self.cli, base.name, "add_cli_args")
        call = next(n for n in ast.walk(loop) if isinstance(n, ast.Call)
                    and isinstance(n.func, ast.Attribute) and n.func.attr == "add_argument")
        for key, kwargs in table.items():
            names = list(kwargs.pop("flags", [])) + [f"--{key.replace('_', '-')}"]
            outer.flags.append(describe(names, kwargs, self.cli.cite(call)))

    def _engine_args(self, outer: Recorder) -> None:
        recorder = self._recorder(self.engine)
        recorder.flags = outer.flags
        recorder.factories["EngineArgs.add_cli_args"] = lambda call, rec: rec.run(
            self._function(self.engine, "EngineArgs", "add_cli_args").body)
        recorder.run(self._function(self.engine, "AsyncEngineArgs", "add_cli_args").body)

    @staticmethod
    def _function(module, class_name: str | None, name: str) -> ast.FunctionDef:
        scope = module.tree.body if class_name is None else next(
            n for n in module.tree.body if isinstance(n, ast.ClassDef) and n.name == class_name).body
        return next(n for n in scope if isinstance(n, ast.FunctionDef) and n.name == name)

    @staticmethod
    def _with_inverses(flag: dict) -> dict:
        if "negations" in flag:
            for name in flag["names"]:
                for prefix, inverse in INVERSE_PREFIXES.items():
                    if name.startswith(prefix):
                        flag["negations"].append(inverse + name.removeprefix(prefix))
        return flag


def parser_names(source: WheelSource) -> dict:
    return {
        "reasoning": registry_keys(source, "vllm.reasoning", "_REASONING_PARSERS_TO_REGISTER"),
        "tool_call": registry_keys(source, "vllm.tool_parsers", "_TOOL_PARSERS_TO_REGISTER"),
    }


def literal_alias(source: WheelSource, module_name: str, alias: str) -> dict:
    ev = Evaluator(source)
    module = source.module(module_name)
    owner, node = ev.lookup(module, alias)
    try:
        values = list(ev.value(owner, node).values)
    except (Unresolved, AttributeError) as error:
        raise KeyError(f"{owner.path}: {alias} is not a Literal") from error
    return {"values": values, "source": owner.cite(node)}


def serving(source: WheelSource, found_routes: dict) -> dict:
    return {
        "health": endpoint(found_routes, "/health", "vllm/entrypoints/serve/instrumentator/health.py"),
        "models": endpoint(found_routes, "/v1/models", "vllm/entrypoints/openai/models/api_router.py"),
        "metrics": {"path": "/metrics",
                    "source": anchor(source, "vllm.entrypoints.serve.instrumentator.metrics", 'Mount("/metrics"')},
        "api_key": {
            "flag": "--api-key", "env": "VLLM_API_KEY",
            "precedence": "--api-key wins; VLLM_API_KEY is read when the flag is absent",
            "source": anchor(source, "vllm.entrypoints.serve.middleware.register", "args.api_key or [envs.VLLM_API_KEY]"),
            "guarded_prefixes": ["/v1", "/v2", "/inference", "/cohere"],
            "guarded_source": anchor(source, "vllm.entrypoints.serve.middleware.authenticate",
                                     'GUARDED_PREFIX = ("/v1", "/v2", "/inference", "/cohere")'),
        },
        "metrics_gate": {
            "enabled_by_default": True, "disabled_by": "--disable-log-stats",
            "source": anchor(source, "vllm.v1.engine.async_llm", "if self.log_stats:"),
        },
        "queue_metric": "vllm:num_requests_waiting",
    }


def deprecated_quantization(source: WheelSource) -> dict:
    ev = Evaluator(source)
    module = source.module("vllm.model_executor.layers.quantization")
    owner, node = ev.lookup(module, "DEPRECATED_QUANTIZATION_METHODS")
    return {"values": ev.value(owner, node), "source": owner.cite(node)}


def extract(source: WheelSource) -> dict:
    flags = VllmFlags(source).collect()
    found_routes = routes(source, "vllm.entrypoints")
    quantization = literal_alias(source, "vllm.model_executor.layers.quantization", "QuantizationMethods")
    quantization["deprecated"] = deprecated_quantization(source)
    quantization["checked_at"] = anchor(source, "vllm.config.model", "if self.quantization not in supported_quantization:")
    by_name = {flag["names"][0]: flag for flag in flags}
    # argparse takes any string for --quantization (the Literal is only a type-checking alias); the engine
    # checks it against QUANTIZATION_METHODS after parsing. The checker enforces that list.
    by_name["--quantization"].update(choices=quantization["values"], choices_checked_by="engine",
                                     choices_source=quantization["checked_at"])
    # Likewise the parser flags take any string; validate_api_server_args checks them against the registries
    # (names added by --tool-parser-plugin / --reasoning-parser-plugin are not supported by our checker).
    parsers = parser_names(source)
    checked = anchor(source, CLI_ARGS, "def validate_api_server_args")
    for flag, kind in (("--reasoning-parser", "reasoning"), ("--tool-call-parser", "tool_call")):
        by_name[flag].update(choices=list(parsers[kind]), choices_checked_by="engine", choices_source=checked)
    return {
        "engine": "vllm",
        "version": source.version,
        "wheel": {"file": source.path.name, "sha256": source.sha256},
        "command": {
            "argv": ["vllm", "serve"],
            "positional": "model_tag",
            "source": anchor(source, CLI_ARGS, '"model_tag",'),
            "entry_point": anchor(source, "vllm.entrypoints.cli.serve", 'usage="vllm serve [model_tag] [options]"'),
        },
        "spelling": {
            "underscores_accepted": True,
            "source": anchor(source, "vllm.utils.argparse_utils", "# Convert underscores to dashes and vice versa"),
            "abbreviations": "argparse allow_abbrev is left on; the checker still requires full names",
        },
        "config_file": {
            "flag": "--config",
            "format": "yaml mapping of flag names without '--'; either spelling; true -> --key, "
                      "false -> --no-key when that exists, lists -> repeated values, dicts -> JSON",
            "source": anchor(source, "vllm.utils.argparse_utils", "def load_config_file"),
            "bool_on_valued_flag": "bare",  # true -> '--key' even where the flag wants a value
            "bool_source": anchor(source, "vllm.utils.argparse_utils", 'processed_args.append("--" + key)'),
        },
        "flags": by_name,
        "parsers": parsers,
        "serving": serving(source, found_routes),
        "metrics": metrics(source, "vllm", "vllm:"),
        "routes": found_routes,
        "kv_cache_dtypes": literal_alias(source, "vllm.config.cache", "CacheDType"),
        "quantization_methods": quantization,
        "requirements": {name: requirement(source, name) for name in ("torch", "transformers")},
    }
