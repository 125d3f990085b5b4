"""Check LLM-API YAML dicts and command lines against schema.json (names, nesting, types, flags).

Every problem is collected and reported in one PipelineError line naming the key path or flag, what was
expected, and a did-you-mean or the current name of a removed key.
"""

from __future__ import annotations

from pipeline.errors import PipelineError, did_you_mean
from pipeline.trtllm import load_schema

PLACEHOLDER = "{"  # argv values like {host} or {bundle}/x are filled in at serve time

SCALARS = {
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "dict": lambda v: isinstance(v, dict),
    "list[int]": lambda v: isinstance(v, list) and all(SCALARS["int"](x) for x in v),
    "list[float]": lambda v: isinstance(v, list) and all(SCALARS["float"](x) for x in v),
    "object": lambda v: isinstance(v, dict),
    "any": lambda v: True,
    "flag": lambda v: v is None,
}
PARSERS = {"int": int, "float": float}


def _spec(entry) -> dict:
    return {"type": entry} if isinstance(entry, str) else entry


def _check_value(value, entry, path: str, problems: list) -> None:
    spec = _spec(entry)
    kind = spec["type"].rstrip("?")
    if value is None and spec["type"].endswith("?"):
        return
    if not SCALARS[kind](value):
        problems.append(f"{path}: expected {spec['type']}, got {value!r}")
    elif "values" in spec and value not in spec["values"]:
        problems.append(f"{path}: expected one of {', '.join(spec['values'])}; got {value!r}")
    elif ("min" in spec and value < spec["min"]) or ("max" in spec and value > spec["max"]):
        problems.append(f"{path}: expected {spec.get('min', '-inf')} <= value <= {spec.get('max', 'inf')}; got {value}")
    elif kind == "object":
        _check_fields(value, spec["fields"], f"{path}.", problems)


def _check_fields(data: dict, fields: dict, prefix: str, problems: list) -> None:
    removed = load_schema()["removed_keys"]
    for key, value in data.items():
        if key in removed:
            problems.append(f"{prefix}{key}: removed from TensorRT-LLM; use {removed[key]}")
        elif key not in fields:
            problems.append(f"{prefix}{key}: unknown LLM-API argument{did_you_mean(key, fields)}")
        else:
            _check_value(value, fields[key], f"{prefix}{key}", problems)


def check_llm_args(data: dict, backend: str, source: str = "llm_api_options.yaml") -> None:
    """Raise PipelineError unless every key of `data` exists with the right type for `backend`."""
    schema = load_schema()
    problems: list[str] = []
    _check_fields(data, schema["llm_args"][backend], "", problems)
    if problems:
        raise PipelineError(f"{source}: " + "; ".join(problems) +
                            f" (schema of TensorRT-LLM {schema['trtllm_version']})")


def check_argv(argv: list[str], flags: dict, positionals: int, source: str) -> None:
    """Raise PipelineError unless argv is PROGRAM, `positionals` arguments, then known flags with typed values."""
    problems: list[str] = []
    index = 1 + positionals
    while index < len(argv):
        token = argv[index]
        entry = flags.get(token)
        if entry is None:
            problems.append(f"{token}: unknown flag{did_you_mean(token, flags)}")
            index += 1
            continue
        spec = _spec(entry)
        if spec["type"] == "flag":
            index += 1
            continue
        if index + 1 >= len(argv):
            problems.append(f"{token}: missing value")
            break
        _check_flag_value(token, argv[index + 1], spec, problems)
        index += 2
    if problems:
        raise PipelineError(f"{source}: " + "; ".join(problems))


def _check_flag_value(flag: str, raw: str, spec: dict, problems: list) -> None:
    if PLACEHOLDER in raw:
        return
    try:
        value = PARSERS.get(spec["type"], str)(raw)
    except ValueError:
        problems.append(f"{flag}: expected {spec['type']}, got {raw!r}")
        return
    _check_value(value, spec, flag, problems)


def check_serve_argv(argv: list[str], source: str = "argv.json") -> None:
    check_argv(argv, load_schema()["serve_flags"], positionals=1, source=f"{source} (trtllm-serve)")


def check_build_argv(argv: list[str], source: str = "argv.json") -> None:
    check_argv(argv, load_schema()["build_flags"], positionals=0, source=f"{source} (trtllm-build)")
