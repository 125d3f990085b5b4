"""Check a server command line (and its --config YAML) against the pinned facts of one engine release.

The facts (facts/<engine>.json) list every flag the engine's argument parser registers, with its option
strings, value count, type, choices and bounds, as read from the released wheel. `check_argv` walks an
argv the way argparse would and collects every problem into one PipelineError line: unknown flags (with
a did-you-mean), missing or surplus values, values of the wrong type, outside the choices or the bounds.
Values containing '{' are placeholders filled at serve time and only their flag is checked.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from pipeline.errors import PipelineError, did_you_mean

FACTS_DIR = Path(__file__).with_name("facts")
PLACEHOLDER = "{"
NULL_VALUES = {"None", ""}  # what vLLM's optional_type and SGLang's nullable_str read as "unset"


def _int_or_auto(raw: str) -> int:
    return -1 if raw.strip().lower() == "auto" else int(raw)


# type name in the facts -> parser of one command-line value (raises ValueError when argparse would reject)
VALUE_TYPES = {
    "int": int,
    "float": float,
    "str": str,
    "any": str,
    "json": json.loads,
    "json_or_str": str,
    # The engines also read suffixes ('16k'), each its own way; we emit plain integers and accept only those.
    "human_int": int,
    "human_int_or_auto": _int_or_auto,
}


def engines() -> list[str]:
    """Engines with a pinned facts file."""
    return sorted(path.stem for path in FACTS_DIR.glob("*.json"))


@cache
def load_facts(engine: str) -> dict:
    path = FACTS_DIR / f"{engine}.json"
    if not path.is_file():
        raise PipelineError(f"engine '{engine}': no pinned facts (expected one of: {', '.join(engines())})"
                            f"{did_you_mean(engine, engines())}")
    return json.loads(path.read_text())


@cache
def option_index(engine: str) -> dict[str, tuple[dict, bool]]:
    """Every accepted option string -> (flag entry, whether it is a negation like --no-x)."""
    index: dict[str, tuple[dict, bool]] = {}
    for entry in load_facts(engine)["flags"].values():
        index.update({name: (entry, False) for name in entry["names"]})
        index.update({name: (entry, True) for name in entry.get("negations", [])})
    return index


def _spelled(engine: str, option: str) -> str:
    """The option as the engine's parser sees it (vLLM turns '--a_b' into '--a-b' before parsing)."""
    if option.startswith("--") and load_facts(engine)["spelling"]["underscores_accepted"]:
        return "--" + option[2:].replace("_", "-")
    return option


def _is_option(token: str) -> bool:
    return token.startswith("-") and not re.fullmatch(r"-\d+(\.\d+)?", token)


def _takes(nargs) -> tuple[int, int | None]:
    """(fewest, most) values a flag consumes; most None means unbounded."""
    return {None: (1, 1), "?": (0, 1), "+": (1, None), "*": (0, None)}.get(nargs, (nargs, nargs))


def _check_value(flag: str, entry: dict, raw: str, problems: list[str]) -> None:
    if PLACEHOLDER in raw or (entry.get("nullable") and raw in NULL_VALUES):
        return
    kind = entry.get("type", "str")
    try:
        value = VALUE_TYPES[kind](raw)
    except (ValueError, TypeError):
        problems.append(f"{flag}: expected {kind}, got {raw!r}")
        return
    choices = entry.get("choices")
    if choices is not None and value not in choices:
        shown = ", ".join(str(c) for c in choices if c is not None)
        problems.append(f"{flag}: expected one of {shown}; got {raw!r}{did_you_mean(str(value), map(str, choices))}")
    elif _out_of_bounds(entry, value):
        problems.append(f"{flag}: expected {_bounds_text(entry)}; got {raw}")


def _out_of_bounds(entry: dict, value) -> bool:
    low, high = entry.get("min"), entry.get("max")
    return ((low is not None and (value < low or (entry.get("min_exclusive") and value == low)))
            or (high is not None and (value > high or (entry.get("max_exclusive") and value == high))))


def _bounds_text(entry: dict) -> str:
    low = f"{entry['min']} {'<' if entry.get('min_exclusive') else '<='} " if "min" in entry else ""
    high = f" {'<' if entry.get('max_exclusive') else '<='} {entry['max']}" if "max" in entry else ""
    return f"{low}value{high}"


def _walk(engine: str, tokens: list[str], positionals: int, problems: list[str]) -> set[str]:
    """Check option tokens; returns the canonical names of the flags seen."""
    index = option_index(engine)
    seen: set[str] = set()
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        if not _is_option(token):
            positionals -= 1
            if positionals < 0:
                problems.append(f"{token!r}: unexpected positional argument")
            continue
        option, has_inline, inline = token.partition("=")
        found = index.get(_spelled(engine, option))
        if found is None:
            problems.append(f"{option}: unknown flag{did_you_mean(_spelled(engine, option), index)}")
            continue
        entry, negation = found
        seen.add(entry["names"][0])
        fewest, most = (0, 0) if negation else _takes(entry["nargs"])
        values = [inline] if has_inline else []
        while not has_inline and (most is None or len(values) < most) and position < len(tokens) \
                and not _is_option(tokens[position]):
            values.append(tokens[position])
            position += 1
        if has_inline and most == 0:
            problems.append(f"{option}: takes no value, got {inline!r}")
        elif len(values) < fewest:
            problems.append(f"{option}: missing value")
        for raw in values:
            _check_value(option, entry, raw, problems)
    return seen


def config_tokens(engine: str, config: dict) -> list[str]:
    """The argv the engine builds from its --config YAML mapping (see facts['config_file'])."""
    tokens: list[str] = []
    for key, value in config.items():
        option = f"--{key}"
        found = option_index(engine).get(_spelled(engine, option))
        takes_value = found is not None and found[0]["nargs"] != 0
        if isinstance(value, bool):
            tokens += _config_bool(engine, option, value, found, takes_value)
        elif isinstance(value, list):
            tokens += [option, *map(str, value)] if value else []
        elif isinstance(value, dict):
            tokens += [option, json.dumps(value)]
        else:
            tokens += [option, str(value)]
    return tokens


def _config_bool(engine: str, option: str, value: bool, found, takes_value: bool) -> list[str]:
    """true -> --key, false -> --no-key where it exists; a valued flag as facts['config_file'] says."""
    if takes_value and load_facts(engine)["config_file"]["bool_on_valued_flag"] == "lowercase_value":
        return [option, str(value).lower()]
    if value:
        return [option]
    negation = "--no-" + option[2:]
    return [negation] if found and _spelled(engine, negation) in found[0].get("negations", []) else []


def check_argv(engine: str, argv: list[str], config: dict | None = None, source: str = "argv.json") -> None:
    """Raise PipelineError unless `argv` (the full server command) and `config` (the mapping its --config
    YAML holds, if any) are accepted by the pinned release of `engine`."""
    facts = load_facts(engine)
    label = f"{source} ({engine} {facts['version']})"
    command = facts["command"]["argv"]
    if argv[: len(command)] != command:
        raise PipelineError(f"{label}: expected the command to start with {' '.join(command)}, "
                            f"got {' '.join(argv[: len(command)])!r}")
    problems: list[str] = []
    positionals = 1 if facts["command"]["positional"] else 0
    seen = _walk(engine, argv[len(command):], positionals, problems)
    if config is not None:
        config_problems: list[str] = []
        seen |= _walk(engine, config_tokens(engine, config), 0, config_problems)
        problems += [f"--config YAML {problem}" for problem in config_problems]
    missing = [name for name, entry in facts["flags"].items() if entry.get("required") and name not in seen]
    problems += [f"{name}: required" for name in missing]
    if problems:
        raise PipelineError(f"{label}: " + "; ".join(problems))
