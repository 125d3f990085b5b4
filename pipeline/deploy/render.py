"""Write overlays and their golden `kubectl kustomize` output; compare committed files with a fresh render.

Layout under the k8s root: `overlays/<name>/` (rendered from the profile) and `rendered/<name>.yaml` (what
`kubectl kustomize overlays/<name>` prints, committed so reviewers see every manifest change). <name> is the
profile served by its own engine, and `<profile>-<engine>` for every other engine the profile fits on
(`hunyuan-trt plan --profile P --engine E`).
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
from pipeline.deploy.settings import Deployment, deployment_for
from pipeline.engines.registry import engine_verdicts
from pipeline.errors import PipelineError
from pipeline.outputs import OVERLAY, replaced_directory, write_text_atomic
from pipeline.profiles import REPO_ROOT, load_profile, profile_names

K8S_ROOT = REPO_ROOT / "k8s"


def deployments() -> list[Deployment]:
    """Every profile on its own engine, then on each other engine it fits on."""
    found = []
    for name in profile_names():
        profile, spec = load_profile(name)
        fitting = [engine for engine, verdict in engine_verdicts(name, profile, spec).items()
                   if engine != profile.engine and verdict.startswith("fits")]
        found += [deployment_for(name, engine) for engine in [None, *fitting]]
    return found


def write_overlay(d: Deployment, out_dir: Path, root: Path = K8S_ROOT, force: bool = False) -> Path:
    """Render deployment `d` into `out_dir`, replacing it whole (`pipeline.outputs`: an existing directory that
    is not an overlay of ours only with force). The overlay refers to `root`/base and `root`/components by
    relative paths."""
    out_dir = Path(out_dir).resolve()
    files = overlay_files(d, os.path.relpath(Path(root).resolve(), out_dir))
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
    """Every deployment's overlay plus its golden build; returns the overlay names."""
    names = []
    for d in deployments():
        overlay = write_overlay(d, root / "overlays" / d.name, root)
        write_text_atomic(root / "rendered" / f"{d.name}.yaml", kustomize(overlay))
        names.append(d.name)
    return names


def render_fresh(target: Path, root: Path = K8S_ROOT) -> Path:
    """`root`'s base and components copied into the empty directory `target`, every overlay rendered there."""
    shutil.copytree(root / "base", target / "base")
    shutil.copytree(root / "components", target / "components")
    render_all(target)
    return target


def stale_files(root: Path = K8S_ROOT, fresh_root: Path | None = None) -> list[str]:
    """Committed overlay or golden files that differ from a fresh render (relative paths). `fresh_root`: a
    render_fresh of the same base and components to compare against; by default one is made and removed."""
    if fresh_root is None:
        with tempfile.TemporaryDirectory() as scratch:
            return stale_files(root, render_fresh(Path(scratch), root))
    stale = []
    for fresh in sorted(p for p in fresh_root.rglob("*") if p.is_file()):
        relative = fresh.relative_to(fresh_root)
        committed = root / relative
        if not committed.is_file() or committed.read_text() != fresh.read_text():
            stale.append(str(relative))
    known = {p.relative_to(fresh_root) for p in fresh_root.rglob("*") if p.is_file()}
    stale += [str(p.relative_to(root)) for sub in ("overlays", "rendered") for p in sorted((root / sub).rglob("*"))
              if p.is_file() and p.relative_to(root) not in known]
    return stale


def golden_documents(name: str, root: Path = K8S_ROOT) -> list[dict]:
    """The documents of the golden build `rendered/<name>.yaml` (libyaml's parser where PyYAML has it: 7x
    faster on these files than the pure-Python one)."""
    text = (root / "rendered" / f"{name}.yaml").read_text()
    return list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def policy_violations(root: Path = K8S_ROOT) -> list[str]:
    """Policy violations of every committed golden file, each prefixed with its overlay name."""
    found = []
    for d in deployments():
        found += [f"{d.name}: {problem}" for problem in violations(golden_documents(d.name, root), d)]
    return found
