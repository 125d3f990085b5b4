"""User-facing errors: one clear line, exit code 2, no traceback.

Core modules raise `PipelineError`; the programs' entry points (`pipeline.cli` for `hunyuan-trt`,
`pipeline.cpu_backend` for the CPU stand-in) turn it into that line through `one_line_errors`.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_BAD_INPUT = 2


class PipelineError(Exception):
    """Bad input or an impossible request; the message names the file/key/field and what was expected."""


@contextmanager
def one_line_errors() -> Iterator[None]:
    """A PipelineError inside the block becomes `Error: <message>` on stderr and exit code 2."""
    try:
        yield
    except PipelineError as error:
        print(f"Error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
