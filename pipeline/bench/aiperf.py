"""Run NVIDIA's aiperf as a subprocess: its command line, environment and failure messages.

aiperf pins many packages (~1.2 GB), so it is installed into `.venv-bench` by `make bench-setup` and never
imported here. Its binary is found through $HUNYUAN_TRT_AIPERF or that virtualenv.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.profiles import REPO_ROOT

AIPERF_ENV = "HUNYUAN_TRT_AIPERF"
DEFAULT_AIPERF = REPO_ROOT / ".venv-bench" / "bin" / "aiperf"
# chat_template_kwargs sent with every request of one thinking mode
THINKING_KWARGS = {"off": {"enable_thinking": False}, "on": {"enable_thinking": True}}
# aiperf resolves even a local tokenizer directory through the hub when these are set (see docs/bench.md)
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model")


@dataclass(frozen=True)
class Workload:
    """One aiperf sweep: a target, a request shape and the concurrency levels to visit."""

    url: str
    model: str
    tokenizer: Path
    concurrency: tuple[int, ...]
    isl: int
    osl: int
    thinking: str = "off"
    requests_per_user: int = 8
    warmup: int = 2
    goodput: str = ""
    api_key: str | None = None
    ignore_eos: bool = True
    trust_remote_code: bool = False
    # False: aiperf counts output tokens by tokenizing the text it received, i.e. the visible stream (content
    # and reasoning) rather than the server's `usage`, which also counts what the adapter strips or drops
    server_token_count: bool = False
    seed: int = 1
    logit_bias: dict | None = None  # e.g. `plain_text.plain_text_bias`: raw output without markup

    def request_counts(self) -> list[int]:
        """Requests per concurrency level: enough that every simulated user sends several."""
        return [max(c * self.requests_per_user, 4) for c in self.concurrency]

    def extra_inputs(self) -> dict:
        extra = {"chat_template_kwargs": THINKING_KWARGS[self.thinking]}
        extra |= {"ignore_eos": True} if self.ignore_eos else {}
        return extra | ({"logit_bias": self.logit_bias} if self.logit_bias else {})


def find_aiperf() -> Path:
    binary = Path(os.environ.get(AIPERF_ENV, DEFAULT_AIPERF))
    if not binary.is_file():
        raise PipelineError(f"aiperf: {binary} not found; run `make bench-setup` (installs aiperf into .venv-bench) "
                            f"or point ${AIPERF_ENV} at an aiperf executable")
    return binary


def check_tokenizer(path: Path) -> Path:
    path = Path(path)
    if not path.is_dir() or not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise PipelineError(f"--tokenizer {path}: expected a model directory holding one of "
                            f"{', '.join(TOKENIZER_FILES)}")
    return path.resolve()


def aiperf_argv(binary: Path, work: Workload, out_dir: Path) -> list[str]:
    argv = [str(binary), "profile", "--model", work.model, "--url", work.url, "--endpoint-type", "chat",
            "--streaming", "--tokenizer", str(work.tokenizer), "--isl", str(work.isl), "--osl", str(work.osl),
            "--concurrency", ",".join(map(str, work.concurrency)),
            "--request-count", ",".join(map(str, work.request_counts())),
            "--warmup-request-count", str(work.warmup), "--extra-inputs", json.dumps(work.extra_inputs()),
            "--ui-type", "none", "--no-gpu-telemetry", "--no-server-metrics",
            "--output-artifact-dir", str(out_dir), "--random-seed", str(work.seed)]
    if len(work.concurrency) > 1:
        argv += ["--sweep-type", "zip"]
    if work.goodput:
        argv += ["--goodput", work.goodput]
    if work.api_key:
        argv += ["--api-key", work.api_key]
    if work.trust_remote_code:
        argv.append("--tokenizer-trust-remote-code")
    if work.server_token_count:
        argv.append("--use-server-token-count")
    return argv


def aiperf_env() -> dict:
    return {key: value for key, value in os.environ.items() if key not in OFFLINE_VARS}


def run_aiperf(work: Workload, out_dir: Path, timeout_s: float = 3600) -> Path:
    """Run one sweep into out_dir (its log in out_dir/aiperf.log); returns out_dir."""
    binary = find_aiperf()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "aiperf.log"
    with open(log_path, "wb") as log:
        try:
            result = subprocess.run(aiperf_argv(binary, work, out_dir), stdout=log, stderr=subprocess.STDOUT,
                                    env=aiperf_env(), timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise PipelineError(f"aiperf against {work.url} did not finish within {timeout_s:.0f} s; "
                                f"see {log_path}") from None
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
        raise PipelineError(f"aiperf against {work.url} exited with {result.returncode} (every request failed, "
                            f"or the tokenizer did not load): {tail[0][:200]}; see {log_path}")
    return out_dir
