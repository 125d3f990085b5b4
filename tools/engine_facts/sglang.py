"""SGLang: the `python -m sglang.launch_server` flags (ServerArgs), parsers, metrics and serving facts.

Declared fields (`A[T, "help"]` / `A[T, Arg(...)]` in sglang/srt/arg_groups/fields/) become flags the way
`add_cli_args_from_dataclass` (sglang/srt/arg_groups/arg_utils.py) turns them into add_argument calls;
the hand-registered ones in `ServerArgs.add_cli_args` are replayed by the generic recorder.
"""

from __future__ import annotations

import ast

from .argparse_calls import Recorder, describe, expr_default
from .evaluate import Atom, ClassRef, Evaluator
from .scans import anchor, endpoint, metrics, registry_keys, requirement, routes
from .wheel import WheelSource

SERVER_ARGS = "sglang.srt.server_args"
TYPE_CALLABLES = {"human_readable_int": "human_int", "json_list_type": "json", "json.loads": "json",
                  "nullable_str": "str", "parse_cuda_graph_backend_arg": "str",
                  "parse_cuda_graph_config_arg": "json"}
INFER = {"str": "str", "int": "int", "float": "float"}
MISSING = object()


class DeclaredFlags:
    """Flags of the `_INPUT_NAMESPACES` field classes, as add_cli_args_from_dataclass registers them."""

    def __init__(self, ev: Evaluator, recorder: Recorder):
        self.ev = ev
        self.recorder = recorder
        self.defaults: dict[str, object] = {}

    def namespaces(self) -> list[ClassRef]:
        module = self.ev.source.module(SERVER_ARGS)
        owner, node = self.ev.lookup(module, "_INPUT_NAMESPACES")
        return [self.ev.class_ref(owner, element) for element in node.elts]

    def register(self) -> None:
        for cls in self.namespaces():
            for stmt in cls.node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    self._field(cls, stmt)

    def _field(self, cls: ClassRef, stmt: ast.AnnAssign) -> None:
        module = cls.module
        name = stmt.target.id
        default = self._default(module, stmt.value)
        if default is not MISSING:
            self.defaults[name] = default
        annotated = stmt.annotation
        if not (isinstance(annotated, ast.Subscript) and ast.unparse(annotated.value) in {"A", "Annotated"}):
            return
        inner, *extras = annotated.slice.elts
        meta = self._arg_meta(module, extras)
        if meta is None or meta.get("no_cli"):
            return
        names = [meta.get("cli_name") or "--" + name.replace("_", "-")] + list(meta.get("aliases") or [])
        kwargs = self._kwargs(module, inner, meta, default)
        kwargs["field"] = module.cite(stmt)
        self.recorder.flags.append(describe(names, kwargs, module.cite(stmt)))

    def _arg_meta(self, module, extras: list[ast.expr]) -> dict | None:
        local = Recorder(self.ev, module, TYPE_CALLABLES)  # evaluates in the field's own module
        for extra in extras:
            if isinstance(extra, ast.Constant) and isinstance(extra.value, str):
                return {"help": extra.value}
            if isinstance(extra, ast.Call) and ast.unparse(extra.func) == "Arg":
                meta = {}
                for keyword in extra.keywords:
                    if keyword.arg == "type_parser":
                        meta["type"] = local.type_of(keyword.value)
                    elif keyword.arg == "action":
                        meta["action"] = local.action_of(keyword.value)
                    elif keyword.arg == "action_kwargs" and isinstance(keyword.value, ast.Dict):
                        meta["action_kwargs"] = {self.ev.value(module, k): local.setting(
                            self.ev.value(module, k), v, {}) for k, v in zip(keyword.value.keys, keyword.value.values, strict=True)}
                    elif keyword.arg != "help":
                        meta[keyword.arg] = local.setting(keyword.arg, keyword.value, {})
                return meta
        return None

    def _default(self, module, value: ast.expr | None):
        if value is None:
            return MISSING
        if isinstance(value, ast.Call) and ast.unparse(value.func) in {"msgspec.field", "field"}:
            keywords = {k.arg: k.value for k in value.keywords}
            if "default" in keywords:
                return expr_default(module, self.ev, keywords["default"])
            factory = ast.unparse(keywords.get("default_factory", ast.Name("?")))
            return [] if factory in {"list", "set", "tuple"} else {} if factory == "dict" else {"expr": f"{factory}()"}
        return expr_default(module, self.ev, value)

    def _kwargs(self, module, inner: ast.expr, meta: dict, default) -> dict:
        """The add_argument kwargs add_cli_args_from_dataclass builds for one field."""
        kwargs: dict = {} if default is MISSING else {"default": default}
        for key in ("nargs", "const"):
            if meta.get(key) is not None:
                kwargs[key] = meta[key]
        if meta.get("action"):
            kwargs["action"] = meta["action"]
            kwargs.update(meta.get("action_kwargs") or {})
            return kwargs
        atoms = self.ev.hints(module, inner)
        non_none = [a for a in atoms if a.kind != "none"]
        atom = non_none[0] if len(non_none) == 1 else Atom("union")
        if atom.kind == "literal":
            values = list(atom.args)
            kwargs.update(type=meta.get("type") or (INFER.get(type(values[0]).__name__, "str"), False),
                          choices=meta.get("choices") or values)
            return kwargs
        if atom.kind == "list" and "type" not in meta:
            element = atom.args[0] if atom.args else frozenset({Atom("str")})
            kinds = {a.kind for a in element}
            kwargs.update(type=(INFER.get(kinds.pop(), "str") if len(kinds) == 1 else "str", False),
                          nargs=meta.get("nargs") or "+")
            if meta.get("choices"):
                kwargs["choices"] = meta["choices"]
            return kwargs
        if atom.kind == "bool":
            kwargs["action"] = {"kind": "no_value", "name": "store_true"}
            return kwargs
        kwargs["type"] = meta.get("type") or (INFER.get(atom.kind, "str"), False)
        if meta.get("choices"):
            kwargs["choices"] = meta["choices"]
        if meta.get("required") or (meta.get("required") is None and default is MISSING):
            kwargs["required"] = True
        return kwargs


def parser_names(source: WheelSource) -> dict:
    return {
        "reasoning": registry_keys(source, "sglang.srt.parser.reasoning_parser", "DetectorMap"),
        "tool_call": registry_keys(source, "sglang.srt.function_call.function_call_parser",
                                   "ToolCallParserEnum"),
    }


def collect_flags(source: WheelSource, parsers: dict) -> list[dict]:
    ev = Evaluator(source)
    module = source.module(SERVER_ARGS)
    recorder = Recorder(ev, module, TYPE_CALLABLES)
    declared = DeclaredFlags(ev, recorder)
    recorder.factories.update({
        "add_cli_args_from_dataclass": lambda call, rec: declared.register(),
        "_reasoning_parser_choices": lambda call, rec: list(parsers["reasoning"]),
        "_tool_call_parser_choices": lambda call, rec: list(parsers["tool_call"]),
        "_declared_default": lambda call, rec: declared.defaults[ev.value(module, call.args[0])],
    })
    server_args = next(n for n in module.tree.body if isinstance(n, ast.ClassDef) and n.name == "ServerArgs")
    add_cli_args = next(n for n in server_args.body if isinstance(n, ast.FunctionDef) and n.name == "add_cli_args")
    recorder.run(add_cli_args.body)
    return recorder.flags


def serving(source: WheelSource, found_routes: dict) -> dict:
    http = "sglang.srt.entrypoints.http_server"
    return {
        "health": endpoint(found_routes, "/health", "sglang/srt/entrypoints/http_server.py"),
        "models": endpoint(found_routes, "/v1/models", "sglang/srt/entrypoints/http_server.py"),
        "metrics": {"path": "/metrics", "source": anchor(source, http, "add_prometheus_middleware(app)")},
        "api_key": {
            "flag": "--api-key", "env": None,
            "precedence": "only the flag (or the api-key key of --config YAML); no environment variable is read",
            "source": anchor(source, http, "api_key=get_serving().api_key,"),
            "unguarded_prefixes": ["/health", "/ready", "/metrics"],
            "guarded_source": anchor(source, "sglang.srt.utils.auth", 'path.startswith("/health")'),
        },
        "metrics_gate": {
            "enabled_by_default": False, "enabled_by": "--enable-metrics",
            "source": anchor(source, http, "if get_observability().enable_metrics:"),
        },
        "queue_metric": "sglang:num_queue_reqs",
    }


def extract(source: WheelSource) -> dict:
    parsers = parser_names(source)
    flags = collect_flags(source, parsers)
    found_routes = routes(source, "sglang.srt.entrypoints")
    by_name = {flag["names"][0]: flag for flag in flags}
    return {
        "engine": "sglang",
        "version": source.version,
        "wheel": {"file": source.path.name, "sha256": source.sha256},
        "command": {
            "argv": ["python", "-m", "sglang.launch_server"],
            "positional": None,
            "source": anchor(source, "sglang.launch_server", "server_args = prepare_server_args(sys.argv[1:])"),
            "parser": anchor(source, SERVER_ARGS, 'parser = argparse.ArgumentParser(prog="sglang serve")'),
        },
        "spelling": {
            "underscores_accepted": False,
            "source": anchor(source, SERVER_ARGS, 'parser = argparse.ArgumentParser(prog="sglang serve")'),
            "abbreviations": "argparse allow_abbrev is left on; the checker still requires full names",
        },
        "config_file": {
            "flag": "--config",
            "format": "yaml mapping; each key becomes '--<key>' exactly as written, so keys must be the "
                      "dashed flag names; true -> flag for store_true, lists -> repeated values, dicts -> JSON",
            "source": anchor(source, "sglang.srt.utils.server_args_config_parser", 'args.extend([f"--{key}", str(value)])'),
            "bool_on_valued_flag": "lowercase_value",  # '--key true' / '--key false' unless store_true
            "bool_source": anchor(source, "sglang.srt.utils.server_args_config_parser",
                                  'args.extend([f"--{key}", str(value).lower()])'),
        },
        "flags": by_name,
        "parsers": parsers,
        "serving": serving(source, found_routes),
        "metrics": metrics(source, "sglang.srt", "sglang:"),
        "routes": found_routes,
        "kv_cache_dtypes": {"values": by_name["--kv-cache-dtype"]["choices"],
                            "source": by_name["--kv-cache-dtype"]["source"]},
        "quantization_methods": {"values": by_name["--quantization"]["choices"],
                                 "source": by_name["--quantization"]["source"]},
        "requirements": {name: requirement(source, name) for name in ("torch", "transformers")},
    }
