"""Bounded reading of the files users hand us (config.json, profiles, indexes): a size cap applied while
reading, so `/dev/zero` or a 10 GB file costs at most the cap; UTF-8 and JSON errors as one line; and short
renderings of bad values, so an error line never carries a megabyte of someone's input."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import PipelineError

SHOWN_CHARS = 60  # the most of a bad value an error line repeats


def brief(value) -> str:
    """repr(value), cut to SHOWN_CHARS; long containers are named by their length."""
    if isinstance(value, list | tuple | dict) and len(value) > 8:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value[:SHOWN_CHARS + 1] if isinstance(value, str | bytes) else value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def read_capped(path: Path, limit: int, what: str) -> bytes:
    """The bytes of `path`, refused (without reading on) once they exceed `limit`."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise PipelineError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise PipelineError(f"{path}: expected a {what}, found a directory") from None
    except OSError as error:
        raise PipelineError(f"{path}: cannot read the {what} ({error.strerror})") from None
    if len(data) > limit:
        raise PipelineError(f"{path}: larger than {limit // 1024} KiB; a {what} is a few KiB")
    return data


def read_text(path: Path, limit: int, what: str) -> str:
    try:
        return read_capped(path, limit, what).decode("utf-8")
    except UnicodeDecodeError as error:
        raise PipelineError(f"{path}: not UTF-8 text (byte {error.start}); expected a {what}") from None


def read_json(path: Path, limit: int, what: str):
    """Parsed JSON of a capped, UTF-8 file; malformed or absurdly nested JSON is one line."""
    text = read_text(path, limit, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise PipelineError(f"{path}: JSON nested too deeply; expected a {what}") from None
