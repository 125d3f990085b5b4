"""Bad-input corpus: malformed checkpoints and profiles to the CLI, malformed requests over HTTP.

CLI goal: exit 2, one line of output naming the problem, no traceback, no output directory left behind.
HTTP goal (CPU backend, adapter and gateway alike): a 4xx status with an OpenAI error body
`{"error": {"message": ...}}`; never a 5xx, never a traceback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from pipeline.goals import GoalResult
from pipeline.model import SERVED_MODEL_NAME

MODEL = SERVED_MODEL_NAME
HELLO = [{"role": "user", "content": "hi"}]


def chat(**fields) -> dict:
    return {"model": MODEL, "messages": HELLO, "max_tokens": 4} | fields


# (case, method, path, body: bytes | dict | None)
HTTP_CASES = (
    ("malformed JSON", "POST", "/v1/chat/completions", b"{not json"),
    ("JSON array body", "POST", "/v1/chat/completions", b"[]"),
    ("JSON string body", "POST", "/v1/chat/completions", b'"hello"'),
    ("empty body", "POST", "/v1/chat/completions", b""),
    ("messages missing", "POST", "/v1/chat/completions", {"model": MODEL, "max_tokens": 4}),
    ("messages not a list", "POST", "/v1/chat/completions", chat(messages="hi")),
    ("messages empty", "POST", "/v1/chat/completions", chat(messages=[])),
    ("message without role", "POST", "/v1/chat/completions", chat(messages=[{"content": "hi"}])),
    ("unknown role", "POST", "/v1/chat/completions", chat(messages=[{"role": "wizard", "content": "hi"}])),
    ("content is a number", "POST", "/v1/chat/completions", chat(messages=[{"role": "user", "content": 42}])),
    ("max_tokens not a number", "POST", "/v1/chat/completions", chat(max_tokens="abc")),
    ("max_tokens negative", "POST", "/v1/chat/completions", chat(max_tokens=-5)),
    ("temperature not a number", "POST", "/v1/chat/completions", chat(temperature="hot")),
    ("top_p above 1", "POST", "/v1/chat/completions", chat(top_p=5)),
    ("n = 0", "POST", "/v1/chat/completions", chat(n=0)),
    ("stream not a boolean", "POST", "/v1/chat/completions", chat(stream="sometimes")),
    ("chat_template_kwargs not an object", "POST", "/v1/chat/completions", chat(chat_template_kwargs="x")),
    ("tools not a list", "POST", "/v1/chat/completions", chat(tools="weather")),
    ("prompt longer than the context", "POST", "/v1/chat/completions",
     chat(messages=[{"role": "user", "content": "12+30 " * 2000}])),
    ("completions without prompt", "POST", "/v1/completions", {"model": MODEL, "max_tokens": 4}),
    ("completions max_tokens not a number", "POST", "/v1/completions",
     {"model": MODEL, "prompt": "hi", "max_tokens": "x"}),
)


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: dict


def _send(target: Target, method: str, path: str, body) -> requests.Response:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"content-type": "application/json", **target.headers}
    return requests.request(method, f"{target.url}{path}", data=data, headers=headers, timeout=60)


def http_verdict(response: requests.Response) -> str | None:
    """None when the answer meets the goal, else what is wrong with it."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if "Traceback" in response.text:
        return f"{response.status_code} with a traceback in the body"
    if not 400 <= response.status_code < 500:
        return f"{response.status_code} (expected 4xx): {response.text[:120]!r}"
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return f"{response.status_code} without an OpenAI error body: {response.text[:120]!r}"
    return None


def run_http(targets: list[Target]) -> GoalResult:
    failures = []
    for target in targets:
        for case, method, path, body in HTTP_CASES:
            try:
                problem = http_verdict(_send(target, method, path, body))
            except requests.RequestException as error:
                problem = f"no answer ({type(error).__name__})"
            if problem:
                failures.append(f"{target.name}: {case} ({method} {path}) -> {problem}")
    total = len(targets) * len(HTTP_CASES)
    names = ", ".join(t.name for t in targets)
    return GoalResult("bad input: HTTP requests", "4xx + OpenAI error body, no 5xx/traceback",
                       f"{total - len(failures)}/{total} ({len(HTTP_CASES)} cases x {names})",
                       not failures and total > 0, failures)


# ---- CLI: profiles and checkpoints --------------------------------------------------------------------

_GPU_PROFILE = "extends: base\ndescription: x\naccelerator: h100-sxm-80g\nnum_gpus: 2\ntp_size: 2\nmodel_repo: x\n" \
    "weights: fp8\n"
_ALIAS_BOMB = "extends: base\naccelerator: h100-sxm-80g\nnum_gpus: 2\ntp_size: 2\nmodel_repo: x\nweights: fp8\n" \
    "description:\n  - &a [x, x, x, x, x, x, x, x, x]\n" + "".join(  # 9 ** 9 strings once expanded
        f"  - &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi", strict=True))

PROFILE_CASES = (  # (case, YAML text, bytes, or None for a missing file)
    ("unknown key", "extends: base\ndescription: x\naccelerator: h100-sxm-80g\nnum_gpus: 2\ntp_size: 2\n"
                    "model_repo: x\nweights: fp8\nmax_batch_sise: 8\n"),
    ("wrong type", "extends: base\ndescription: x\naccelerator: h100-sxm-80g\nnum_gpus: 2\ntp_size: two\n"
                   "model_repo: x\nweights: fp8\n"),
    ("tp x pp != num_gpus", "extends: base\ndescription: x\naccelerator: h100-sxm-80g\nnum_gpus: 2\ntp_size: 4\n"
                            "model_repo: x\nweights: fp8\n"),
    ("fp8 on A100", "extends: base\ndescription: x\naccelerator: a100-sxm-80g\nnum_gpus: 2\ntp_size: 2\n"
                    "model_repo: x\nweights: fp8\n"),
    ("negative max_batch_size", "extends: base\ndescription: x\naccelerator: h100-sxm-80g\nnum_gpus: 2\n"
                                "tp_size: 2\nmodel_repo: x\nweights: fp8\nmax_batch_size: -1\n"),
    ("unknown accelerator", "extends: base\ndescription: x\naccelerator: h1000\nnum_gpus: 1\nmodel_repo: x\n"
                            "weights: fp8\n"),
    ("extends an unknown profile", "extends: nope\ndescription: x\n"),
    ("invalid YAML", "extends: base\ndescription: [unclosed\n"),
    ("YAML list, not a mapping", "- a\n- b\n"),
    ("empty file", ""),
    ("missing file", None),
    ("YAML alias bomb", _ALIAS_BOMB),
    ("YAML nested 5000 deep", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
    ("YAML not UTF-8", b"extends: base\ndescription: \xff\xfe\n"),
    ("YAML of 300 KiB", "# " + "x" * 300 * 1024 + "\n"),
    ("integer of 10,000 digits", _GPU_PROFILE.replace("num_gpus: 2", "num_gpus: " + "9" * 10_000)),
    ("hf_config /dev/zero", _GPU_PROFILE + "hf_config: /dev/zero\n"),
    ("revision not a commit", _GPU_PROFILE + "revision: main\n"),
)


def _config_edit(edit: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    def build(source: Path, target: Path) -> None:
        config = json.loads((source / "config.json").read_text())
        result = edit(config)
        (target / "config.json").write_text(json.dumps(config if result is None else result))
    return build


def _write(name: str, text: str) -> Callable[[Path, Path], None]:
    def build(source: Path, target: Path) -> None:
        (target / name).write_text(text)
    return build


def _truncate_shard(source: Path, target: Path) -> None:
    shard = sorted(target.glob("*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])


def _garbage_header(source: Path, target: Path) -> None:
    shard = sorted(target.glob("*.safetensors"))[0]
    shard.write_bytes(b"\xff" * 64)


def _drop_shard(source: Path, target: Path) -> None:
    sorted(target.glob("*.safetensors"))[-1].unlink()


def _edit_header(edit: Callable[[list[dict]], None]) -> Callable[[Path, Path], None]:
    """Rewrite the first shard's header: `edit` gets its tensor entries in file order; the data stays."""
    def build(source: Path, target: Path) -> None:
        shard = sorted(target.glob("*.safetensors"))[0]
        data = shard.read_bytes()
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + length])
        entries = sorted((v for k, v in header.items() if k != "__metadata__"), key=lambda e: e["data_offsets"][0])
        edit(entries)
        body = json.dumps(header).encode()
        body += b" " * (-len(body) % 8)
        shard.write_bytes(len(body).to_bytes(8, "little") + body + data[8 + length:])
    return build


def _overlap(entries: list[dict]) -> None:
    first, second = entries[0]["data_offsets"], entries[1]["data_offsets"]
    shift = second[0] - first[0] - 4
    entries[1]["data_offsets"] = [second[0] - shift, second[1] - shift]  # starts 4 bytes into the first tensor


def _config_symlink(target_path: str) -> Callable[[Path, Path], None]:
    def build(source: Path, target: Path) -> None:
        (target / "config.json").unlink()
        (target / "config.json").symlink_to(target_path)
    return build


CHECKPOINT_CASES = (  # (case, stage, how to break a copy of a valid checkpoint)
    ("no config.json", "inspect", lambda source, target: (target / "config.json").unlink()),
    ("config.json not JSON", "inspect", _write("config.json", "{oops")),
    ("config.json is a list", "inspect", _config_edit(lambda c: [c])),
    ("unsupported architecture", "inspect", _config_edit(lambda c: c.update(architectures=["LlamaForCausalLM"]))),
    ("missing num_experts", "inspect", _config_edit(lambda c: c.pop("num_experts"))),
    ("use_cla true", "inspect", _config_edit(lambda c: c.update(use_cla=True))),
    ("rope_parameters instead of rope_scaling", "inspect",
     _config_edit(lambda c: c.update(rope_parameters={"rope_type": "dynamic"}))),
    ("moe_topk above num_experts", "inspect", _config_edit(lambda c: c.update(moe_topk=[99] * len(c["moe_topk"])))),
    ("0 attention heads", "inspect", _config_edit(lambda c: c.update(num_attention_heads=0))),
    ("hidden_size a string", "inspect", _config_edit(lambda c: c.update(hidden_size="64"))),
    ("hidden_size negative", "inspect", _config_edit(lambda c: c.update(hidden_size=-64))),
    ("hidden_size fractional", "inspect", _config_edit(lambda c: c.update(hidden_size=64.5))),
    ("num_hidden_layers 1e8", "inspect", _config_edit(lambda c: c.update(num_hidden_layers=1e8))),
    ("moe_topk list of the wrong length", "inspect", _config_edit(lambda c: c.update(moe_topk=[2] * 7))),
    ("rms_norm_eps NaN", "inspect", _config_edit(lambda c: c.update(rms_norm_eps=float("nan")))),
    ("config.json not UTF-8", "inspect", lambda source, target: (target / "config.json").write_bytes(b'{"a": "\xff"}')),
    ("config.json nested 100k deep", "inspect", _write("config.json", "[" * 100_000 + "]" * 100_000)),
    ("config.json is /dev/zero", "inspect", _config_symlink("/dev/zero")),
    ("per-layer moe_topk 2, 3, ...", "convert",
     _config_edit(lambda c: c.update(moe_topk=[2 + i % 2 for i in range(c["num_hidden_layers"])]))),
    ("safetensors offsets overlap", "convert", _edit_header(_overlap)),
    ("safetensors negative offset", "convert", _edit_header(lambda e: e[0].update(data_offsets=[-8, -8]))),
    ("safetensors gap", "convert", _edit_header(lambda e: e[-1].update(data_offsets=[
        e[-1]["data_offsets"][0] + 8, e[-1]["data_offsets"][1] + 8]))),
    ("safetensors dtype swapped F32 -> I32", "convert", _edit_header(lambda e: e[0].update(dtype="I32"))),
    ("truncated shard", "convert", _truncate_shard),
    ("garbage shard header", "convert", _garbage_header),
    ("shard listed in the index is missing", "convert", _drop_shard),
)


MAX_LINE_CHARS = 1000  # an error line that repeats a megabyte of the input is no error line


def cli_verdict(result: subprocess.CompletedProcess) -> str | None:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if "Traceback" in result.stdout + result.stderr:
        return "printed a traceback"
    if result.returncode != 2:
        return f"exit {result.returncode} (expected 2): {[line[:200] for line in lines[-1:]]}"
    if len(lines) != 1:
        return f"{len(lines)} lines of output (expected one): {[line[:200] for line in lines[:3]]}"
    if len(lines[0]) > MAX_LINE_CHARS:
        return f"a {len(lines[0])}-character line (expected at most {MAX_LINE_CHARS})"
    return None


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], capture_output=True, text=True,
                          check=False, timeout=300)


def run_profiles(work: Path) -> GoalResult:
    failures = []
    for index, (case, text) in enumerate(PROFILE_CASES):
        path = work / f"profile-{index}.yaml"
        if text is not None:
            path.write_bytes(text if isinstance(text, bytes) else text.encode())
        problem = cli_verdict(_cli("plan", "--profile", path))
        if problem:
            failures.append(f"{case}: {problem}")
    total = len(PROFILE_CASES)
    return GoalResult("bad input: profiles (plan)", "exit 2, one line, no traceback",
                       f"{total - len(failures)}/{total}", not failures, failures)


def _broken_copy(source: Path, target: Path, build: Callable[[Path, Path], None]) -> Path:
    shutil.copytree(source, target)
    build(source, target)
    return target


def run_checkpoints(work: Path, source: Path, profile: str = "cpu-tiny") -> GoalResult:
    """Each broken copy of `source` through its stage; convert must also leave no output directory."""
    failures = []
    for index, (case, stage, build) in enumerate(CHECKPOINT_CASES):
        broken = _broken_copy(source, work / f"checkpoint-{index}", build)
        out = work / f"converted-{index}"
        if stage == "inspect":
            result = _cli("inspect", "--model-dir", broken)
        else:
            result = _cli("convert", "--model-dir", broken, "--profile", profile, "--out", out)
        problem = cli_verdict(result)
        leftovers = [p.name for p in work.glob(f"*converted-{index}*")]
        if leftovers:
            problem = (problem + "; " if problem else "") + f"left {leftovers} behind"
        if problem:
            failures.append(f"{case} ({stage}): {problem}")
    total = len(CHECKPOINT_CASES)
    return GoalResult("bad input: checkpoints (inspect, convert)", "exit 2, one line, no traceback, no output",
                       f"{total - len(failures)}/{total}", not failures, failures)
