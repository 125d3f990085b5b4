"""Write overlays and their golden `kubectl kustomize` output; compare committed files with a fresh render.

Layout under the k8s root: `overlays/<profile>/` (rendered from the profile) and `rendered/<profile>.yaml`
(what `kubectl kustomize overlays/<profile>` prints, committed so reviewers see every manifest change).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from pipeline.deploy.overlay import overlay_files
from pipeline.deploy.policy import violations
from pipeline.deploy.settings import deployment_for
from pipeline.errors import PipelineError
from pipeline.outputs import OVERLAY, replaced_directory, write_text_atomic
from pipeline.profiles import REPO_ROOT, profile_names

K8S_ROOT = REPO_ROOT / "k8s"


def write_overlay(profile: str, out_dir: Path, root: Path = K8S_ROOT, force: bool = False) -> Path:
    """Render `profile` into `out_dir`, replacing it whole (`pipeline.outputs`: an existing directory that is
    not an overlay of ours only with force). The overlay refers to `root`/base and `root`/components by
    relative paths."""
    out_dir = Path(out_dir).resolve()
    files = overlay_files(deployment_for(profile), os.path.relpath(Path(root).resolve(), out_dir))
    with replaced_directory(out_dir, OVERLAY, force) as staging:
        for name, text in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text)
    return out_dir


def kustomize(overlay_dir: Path) -> str:
    """`kubectl kustomize DIR`; one clear line if kubectl is missing or the build fails."""
    if shutil.which("kubectl") is None:
        raise PipelineError("kubectl: not found on PATH; install kubectl (it bundles kustomize) to build overlays")
    result = subprocess.run(["kubectl", "kustomize", str(overlay_dir)], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipelineError(f"{overlay_dir}: kubectl kustomize failed: {last}")
    return result.stdout


def render_all(root: Path = K8S_ROOT) -> list[str]:
    """Every profile's overlay plus its golden build; returns the profile names."""
    names = profile_names()
    for name in names:
        overlay = write_overlay(name, root / "overlays" / name, root)
        write_text_atomic(root / "rendered" / f"{name}.yaml", kustomize(overlay))
    return names


def stale_files(root: Path = K8S_ROOT) -> list[str]:
    """Committed overlay or golden files that differ from a fresh render (relative paths)."""
    stale = []
    with tempfile.TemporaryDirectory() as scratch:
        fresh_root = Path(scratch)
        shutil.copytree(root / "base", fresh_root / "base")
        shutil.copytree(root / "components", fresh_root / "components")
        render_all(fresh_root)
        for fresh in sorted(p for p in fresh_root.rglob("*") if p.is_file()):
            relative = fresh.relative_to(fresh_root)
            committed = root / relative
            if not committed.is_file() or committed.read_text() != fresh.read_text():
                stale.append(str(relative))
        known = {p.relative_to(fresh_root) for p in fresh_root.rglob("*") if p.is_file()}
        stale += [str(p.relative_to(root)) for sub in ("overlays", "rendered") for p in sorted((root / sub).rglob("*"))
                  if p.is_file() and p.relative_to(root) not in known]
    return stale


def policy_violations(root: Path = K8S_ROOT) -> list[str]:
    """Policy violations of every committed golden file, each prefixed with its profile."""
    found = []
    for name in profile_names():
        docs = list(yaml.safe_load_all((root / "rendered" / f"{name}.yaml").read_text()))
        found += [f"{name}: {problem}" for problem in violations(docs, deployment_for(name))]
    return found
