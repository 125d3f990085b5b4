"""manifest.json: what a checkpoint was made from and of, so a re-run can be a no-op and a copy checked.

No timestamps: the same source, layout and tool version give byte-identical output, manifest included.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline import __version__

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def file_record(path: Path) -> dict:
    data = path.read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def build_manifest(*, source_dir: Path, fingerprint: str, plan_digest: str, mapping: dict, profile: str,
                   files: dict[str, dict]) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "tool": "hunyuan-trt convert",
        "tool_version": __version__,
        "source": {"model_dir": str(Path(source_dir).absolute()), "fingerprint": fingerprint},
        "profile": profile,
        "mapping": mapping,
        "plan_sha256": plan_digest,
        "files": dict(sorted(files.items())),
    }


def read_manifest(out: Path) -> dict | None:
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) else None


def is_up_to_date(out: Path, *, fingerprint: str, plan_digest: str, config: bytes) -> bool:
    """True when `out` was made by this tool version from this exact source, plan and config.json (which also
    carries profile settings such as the KV-cache dtype), and its files are whole."""
    manifest = read_manifest(out)
    if manifest is None:
        return False
    files = manifest.get("files", {})
    same = (manifest.get("tool_version") == __version__
            and manifest.get("source", {}).get("fingerprint") == fingerprint
            and manifest.get("plan_sha256") == plan_digest
            and files.get("config.json", {}).get("sha256") == hashlib.sha256(config).hexdigest())
    return same and bool(files) and all(
        (out / name).is_file() and (out / name).stat().st_size == record.get("bytes") for name, record in files.items())


def write_manifest(directory: Path, manifest: dict) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
