"""A served HF directory derived from another: its config.json rewritten, every other file a symlink (no copy).

The pinned TensorRT-LLM has no key that overrides max_position_embeddings (facts.json long_context_override), so
a long-context profile serves such a directory (`pipeline.bundle`), and `verify --position-start` proves RoPE
past the published limit on one (tests/test_long_context.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError


@dataclass(frozen=True)
class Link:
    """A directory entry that is a symlink to `target`."""

    target: str


def derived_entries(source: Path, config_updates: dict, prefix: str = "") -> dict[str, str | Link]:
    """{relative path: text or Link}: config.json with `config_updates` applied, every other entry of `source`
    linked by its absolute path."""
    source = Path(source)
    config_path = source / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as error:
        raise PipelineError(f"{config_path}: cannot derive a served config from it ({error}); expected a JSON "
                            "config.json") from None
    entries: dict[str, str | Link] = {f"{prefix}config.json": json.dumps(config | config_updates, indent=2) + "\n"}
    for item in sorted(source.iterdir()):
        if item.name != "config.json":
            entries[f"{prefix}{item.name}"] = Link(str(item.resolve()))
    return entries


def write_entries(entries: dict[str, str | Link], root: Path) -> None:
    for name, content in entries.items():
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            path.symlink_to(content.target)
        else:
            path.write_text(content)
