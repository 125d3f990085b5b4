"""User-facing errors: one clear line, exit code 2, no traceback."""

from __future__ import annotations

import difflib

import click


class PipelineError(click.ClickException):
    """Bad input or an impossible request; the CLI prints the message and exits 2."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
