"""The download stage: a profile's Hugging Face repo, at a pinned commit, into the default model directory.

Where models live: `$HUNYUAN_TRT_MODELS`, else `models/` in this checkout; one directory per repo and commit,
`<root>/<repo name>@<commit>` (`default_model_dir`, the one helper build-engine, quantize and serve use when
MODEL_DIR is not given). A profile that serves another weights format than its repo is published in (a100x2:
INT8 weight-only from the BF16 repo; the FP8 profiles: ModelOpt FP8 relabelled from Tencent's AngelSlim FP8)
needs the quantize step the model-prep Job runs (`quantize_step`, `quantize_argv`); build-engine writes its
output beside the download, `<root>/<repo name>@<commit>-<weights>`, and builds from there (`served_model_dir`).
Which commit: `--revision`, else the profile's `revision`, else the commit pinned in
pipeline/data/hf_revisions.json; with none of these the download is refused (`--revision main` takes whatever
is there now, with a warning that it is not reproducible).

Steps: the hub's file list with sizes for that commit → a disk-space check (what is still missing against the
free space) → each file fetched into a stable hidden sibling `.<name>.download`, which a re-run resumes (files
already complete are skipped; a cut `<file>.part` continues from its last byte with an HTTP Range request) →
every file's size checked against the hub's metadata → `download.json` written and the directory renamed into
place. Tokens come from the environment (HF_TOKEN), never from a flag.

The transfer is huggingface_hub's own `http_get` (retries, the progress bar, Range on resume) on the
`hf_hub_url` of each file: `snapshot_download` cannot resume across runs from huggingface_hub 1.x on (each
process writes a fresh uuid-named temp file: huggingface_hub 2.4.0 file_download.py:2004), while
`http_get(url, file, resume_size=, headers=, expected_size=, displayed_filename=)` has the same keywords in
2.4.0 (file_download.py:334) and in 0.34.4 (file_download.py:349), the line the GPU image's transformers
4.57.3 pins (>=0.34.0,<1.0).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import click

from pipeline.errors import PipelineError
from pipeline.input_limits import brief
from pipeline.model import DATA_DIR, TINY_MODEL_DIR, ModelSpec
from pipeline.outputs import MODEL_DOWNLOAD, QUANTIZED_CHECKPOINT, check_target, owns, swap_in
from pipeline.profiles import REPO_ROOT, Profile
from pipeline.weights_formats import Producer, producer, published_format

MODELS_ENV = "HUNYUAN_TRT_MODELS"
REVISIONS_PATH = DATA_DIR / "hf_revisions.json"
EMBEDDED_PREFIX = "embedded/"  # model_repo of profiles that serve the model shipped in the package
COMMIT = re.compile(r"^[0-9a-f]{40}$")
PART_SUFFIX = ".part"  # a file being fetched; its size is where the next run resumes
GB = 1e9


def models_root() -> Path:
    return Path(os.environ.get(MODELS_ENV) or REPO_ROOT / "models")


def pinned_revision(profile: Profile) -> str | None:
    """The profile's `revision`, else the commit pinned for its repo in hf_revisions.json."""
    table = json.loads(REVISIONS_PATH.read_text())["revisions"]
    return profile.revision or table.get(profile.model_repo, {}).get("revision")


def default_model_dir(profile: Profile, revision: str | None = None) -> Path | None:
    """Where `download` puts (and build-engine, quantize, serve look for) the profile's weights; None when no
    commit is pinned. Profiles of the embedded model get the embedded directory."""
    if profile.model_repo.startswith(EMBEDDED_PREFIX):
        return TINY_MODEL_DIR
    revision = revision or pinned_revision(profile)
    return models_root() / f"{profile.model_repo.split('/')[-1]}@{revision}" if revision else None


def estimated_gb(name: str, profile: Profile, spec: ModelSpec) -> float:
    """Size of the repo the profile downloads, in the format that repo is published in (the planner's bytes)."""
    from pipeline.memory_plan import GIB, make_plan

    repo_format = published_format(profile.model_repo).name
    return make_plan(name, profile, spec).model_weights_gib_by_format[repo_format] * GIB / GB


def require_model_dir(name: str, profile: Profile, spec: ModelSpec, revision: str | None = None) -> Path:
    """The default model directory when its weights are there; otherwise one line saying how to fetch them.
    `revision` must be a commit here: a branch name would need the hub to say which commit it is now."""
    if revision is not None and not COMMIT.match(revision):
        raise PipelineError(f"--revision {revision}: expected the 40-hex commit the download printed (its "
                            "directory is named by commit)")
    directory = default_model_dir(profile, revision)
    size = f"about {estimated_gb(name, profile, spec):.0f} GB of {profile.model_repo}"
    other_engine = profile.engine != "trtllm"  # the fetch command names it
    make = f"make download PROFILE={name}" + (f" ENGINE={profile.engine}" if other_engine else "")
    cli = f"hunyuan-trt download --profile {name}" + (f" --engine {profile.engine}" if other_engine else "")
    if directory is None:
        raise PipelineError(f"MODEL_DIR: not given, and no commit of {profile.model_repo} is pinned (profile key "
                            f"`revision` or {REVISIONS_PATH.name}): pass MODEL_DIR=<checkpoint>, or fetch {size} "
                            f"with `{make} REVISION=<commit>`, then give build-engine the same REVISION")
    if not owns(directory, MODEL_DOWNLOAD) and directory != TINY_MODEL_DIR:
        if revision:
            make, cli = f"{make} REVISION={revision}", f"{cli} --revision {revision}"
        raise PipelineError(f"MODEL_DIR: not given, and {directory} holds no finished download: fetch {size} with "
                            f"`{make}` ({cli}), or pass MODEL_DIR=<checkpoint>")
    return directory


def quantize_step(profile: Profile) -> Producer | None:
    """The `hunyuan-trt quantize` step from the format the profile's repo is published in to the weights it
    serves (`pipeline.weights_formats` `produced_from`); None when the download is served as it is."""
    return producer(published_format(profile.model_repo).name, profile.weights)


def quantize_argv(model_dir: str, args: tuple[str, ...], out: str) -> list[str]:
    """`hunyuan-trt quantize` arguments of the step with flags `args` (`Producer.args`), as the prep Job and
    build-engine run it: an output already made from the same download is kept (`--keep-current`)."""
    return ["--model-dir", model_dir, *args, "--out", out, "--keep-current"]


def served_model_dir(profile: Profile, revision: str | None = None) -> Path | None:
    """What build-engine builds from when MODEL_DIR is not given: the download, or the quantize step's output
    beside it (`<download dir name>-<weights>`); None when no commit is pinned."""
    download = default_model_dir(profile, revision)
    if download is None or quantize_step(profile) is None:
        return download
    return models_root() / f"{download.name}-{profile.weights}"


def require_served_dir(name: str, profile: Profile, spec: ModelSpec, revision: str | None = None) -> Path:
    """`served_model_dir` when it is there; otherwise one line with the command that makes it (the download's
    when the download is missing, else the quantize step's)."""
    download = require_model_dir(name, profile, spec, revision)
    served = served_model_dir(profile, revision)
    if served != download and not owns(served, QUANTIZED_CHECKPOINT):
        options = f" --revision {revision}" if revision else ""
        raise PipelineError(f"MODEL_DIR: not given, and {served} holds no {profile.weights} checkpoint made from "
                            f"{download}: make it with `hunyuan-trt quantize --profile {name}{options}` (what "
                            f"`make build-engine PROFILE={name}` runs first), or pass MODEL_DIR=<checkpoint>")
    return served


@dataclass(frozen=True)
class HubFiles:
    commit: str  # the commit the revision resolved to
    sizes: dict[str, int]  # file name -> bytes, from the hub's metadata

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def hub_files(repo: str, revision: str) -> HubFiles:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi(endpoint=_endpoint()).model_info(repo, revision=revision, files_metadata=True)
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise PipelineError(f"--revision {revision}: {repo} has no such commit or repo on the hub "
                            f"({type(error).__name__})") from None
    except (HfHubHTTPError, OSError) as error:
        raise PipelineError(f"{repo}@{revision}: cannot read the hub's file list ({str(error).splitlines()[0]})") \
            from None
    siblings = info.siblings or []
    if any(s.size is None for s in siblings):
        raise PipelineError(f"{repo}@{revision}: the hub's metadata has no size for some files; cannot check them")
    escaping = [s.rfilename for s in siblings if PurePosixPath(s.rfilename).is_absolute()
                or ".." in PurePosixPath(s.rfilename).parts]
    if escaping:
        raise PipelineError(f"{repo}@{revision}: the hub lists a file outside the repo ({brief(escaping[0])}); refused")
    return HubFiles(info.sha, {s.rfilename: s.size for s in siblings})


def size_problems(directory: Path, sizes: dict[str, int]) -> list[str]:
    """Files of `directory` whose size differs from the hub's metadata (missing files included)."""
    problems = []
    for name, size in sorted(sizes.items()):
        path = directory / name
        have = path.stat().st_size if path.is_file() else None
        if have != size:
            problems.append(f"{name}: {'missing' if have is None else f'{have} bytes'}, the hub says {size}")
    return problems


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def bytes_present(directory: Path, sizes: dict[str, int]) -> int:
    """Bytes already downloaded: complete files, and the cut `.part` files a re-run resumes."""
    return sum(size if _size(directory / name) == size else min(_size(directory / (name + PART_SUFFIX)), size)
               for name, size in sizes.items())


def check_disk_space(directory: Path, files: HubFiles) -> None:
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    needed = files.total - bytes_present(directory, files.sizes)
    if needed > free:
        raise PipelineError(f"{existing}: {free / GB:.1f} GB free, the download needs {needed / GB:.1f} GB more "
                            f"({files.total / GB:.1f} GB in all); free space or pass --out on a larger disk")


def _transfer_errors() -> tuple[type[BaseException], ...]:
    """What an interrupted transfer raises: OSError (requests' errors are OSErrors), the hub's HTTP error, and
    httpx's errors where huggingface_hub >= 1 uses httpx."""
    from huggingface_hub.errors import HfHubHTTPError

    errors: tuple[type[BaseException], ...] = (OSError, HfHubHTTPError)
    try:
        import httpx
    except ImportError:
        return errors
    return (*errors, httpx.HTTPError)


def fetch_file(repo: str, commit: str, name: str, size: int, directory: Path) -> None:
    """One file into `directory`, resuming its `.part` file; renamed into place once complete."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    final, part = directory / name, directory / (name + PART_SUFFIX)
    if _size(final) == size:
        return
    part.parent.mkdir(parents=True, exist_ok=True)
    if _size(part) > size:
        part.unlink()  # longer than the file can be: not ours to resume
    try:
        with open(part, "ab") as handle:
            http_get(hf_hub_url(repo, name, revision=commit, endpoint=_endpoint()), handle,
                     resume_size=handle.tell(), headers=build_hf_headers(), displayed_filename=name)
    except _transfer_errors() as error:
        raise PipelineError(f"{repo}@{commit}: download of {name} interrupted ({str(error).splitlines()[0]}); run "
                            "the same command again to resume") from None
    if _size(part) != size:
        got = _size(part)
        part.unlink()
        raise PipelineError(f"{directory}: {name} differs from the hub's metadata: {got} bytes, the hub says {size} "
                            "(the file was removed; run again to fetch it anew)")
    part.replace(final)


@dataclass(frozen=True)
class DownloadResult:
    directory: Path
    commit: str
    files: int
    total_bytes: int
    status: str  # "downloaded" or "up-to-date"


def download(profile: Profile, revision: str | None = None, out: Path | None = None,
             force: bool = False) -> DownloadResult:
    if profile.model_repo.startswith(EMBEDDED_PREFIX):
        raise PipelineError(f"model_repo: {profile.model_repo} is the embedded model ({TINY_MODEL_DIR}); nothing "
                            "to download")
    revision = revision or pinned_revision(profile)
    if revision is None:
        raise PipelineError(f"--revision: no commit of {profile.model_repo} is pinned (profile key `revision` or "
                            f"{REVISIONS_PATH}); pass --revision <40-hex commit>, or --revision main to take "
                            "whatever is there now")
    if not COMMIT.match(revision):
        click.echo(f"warning: --revision {revision} is a branch or tag, not a commit: this download is not "
                   "reproducible (the files are taken from the commit it points to now)", err=True)
    files = hub_files(profile.model_repo, revision)
    target = check_target(out or default_model_dir(profile, files.commit), MODEL_DOWNLOAD, force)
    if owns(target, MODEL_DOWNLOAD) and not size_problems(target, files.sizes):
        return DownloadResult(target, files.commit, len(files.sizes), files.total, "up-to-date")
    partial = target.with_name(f".{target.name}.download")  # stable name: a re-run resumes it
    check_disk_space(partial, files)
    partial.mkdir(parents=True, exist_ok=True)
    for name, size in sorted(files.sizes.items()):
        fetch_file(profile.model_repo, files.commit, name, size, partial)
    problems = size_problems(partial, files.sizes)
    if problems:
        raise PipelineError(f"{partial}: {len(problems)} file(s) differ from the hub's metadata after the download, "
                            f"e.g. {problems[0]}; delete that file and run again")  # changed behind our back
    marker = {"downloaded_by": "hunyuan-trt download", "repo": profile.model_repo, "revision": files.commit,
              "files": files.sizes}
    (partial / MODEL_DOWNLOAD.marker).write_text(json.dumps(marker, indent=1) + "\n")
    swap_in(partial, target)
    shutil.rmtree(partial, ignore_errors=True)  # after a swap, the replaced (forced) directory
    return DownloadResult(target, files.commit, len(files.sizes), files.total, "downloaded")
