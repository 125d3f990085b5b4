"""Shared fixtures: a CLI runner, a scratch profiles directory, and the adapter in front of the replaying
stand-in for trtllm-serve (tests/data/hunyuan_outputs/replay_upstream.py)."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.procs import ManagedProcess, free_port, wait_http
from pipeline.profiles import profiles_dir

REPO = Path(__file__).resolve().parent.parent

# Test modules that need torch in a child they start (the CPU backend, tinygen, the demo and drills); modules that
# import torch themselves are found by `imports_torch`. `make test-py312` runs the suite on Python 3.12 without
# torch, as the GPU image's own torch cannot come from PyPI; there these modules are left out instead of failing.
STARTS_TORCH_CHILD = ["test_adapter_hostile.py", "test_build_cpu_stack.py", "test_convert_memory.py",
                      "test_convert_wrong_split.py", "test_cpu_backend_server.py", "test_cpu_backend_surfaces.py",
                      "test_demo_pipeline.py", "test_drills_bad_input.py", "test_drills_converter_crash.py",
                      "test_drills_rolling_restart.py", "test_k8s_server_contract.py", "test_long_context.py",
                      "test_orphans.py", "test_tiny_template.py"]


def imports_torch(test_file: Path) -> bool:
    """True when the module imports torch (or a torch-only package) at its top level."""
    tree = ast.parse(test_file.read_text())
    names = [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module]
    return any(name == module or name.startswith(module + ".") for name in names for module in TORCH_MODULES)


TORCH_MODULES = ("torch", "modelopt", "safetensors.torch")
NEEDS_TORCH = sorted(set(STARTS_TORCH_CHILD) | {f.name for f in Path(__file__).parent.glob("test_*.py")
                                                if imports_torch(f)})
collect_ignore = [] if importlib.util.find_spec("torch") else NEEDS_TORCH


@pytest.fixture
def run_cli():
    """Invoke `hunyuan-trt ARGS...` in-process; returns click's Result."""
    runner = CliRunner()

    def invoke(*args, **kwargs):
        return runner.invoke(main, [str(a) for a in args], **kwargs)

    return invoke


@pytest.fixture
def profiles_copy(tmp_path, monkeypatch):
    """A writable copy of engine_configs/, selected through HUNYUAN_TRT_PROFILES_DIR."""
    target = tmp_path / "engine_configs"
    shutil.copytree(profiles_dir(), target)
    monkeypatch.setenv("HUNYUAN_TRT_PROFILES_DIR", str(target))
    return target


REPLAY = REPO / "tests" / "data" / "hunyuan_outputs" / "replay_upstream.py"
SERVED_NAME = "tencent/Hunyuan-A13B-Instruct"


@pytest.fixture(scope="session")
def replay_upstream(tmp_path_factory):
    """The replaying stand-in for trtllm-serve on a free port (its log kept under pytest's tmp dir)."""
    port = free_port()
    log = tmp_path_factory.mktemp("upstream") / "upstream.log"
    with ManagedProcess([sys.executable, REPLAY, "--port", port], log_path=log) as proc:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=30, process=proc.process)
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def replay_adapter_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("adapter") / "adapter.log"


@pytest.fixture(scope="session")
def replay_adapter(replay_upstream, replay_adapter_log):
    """`hunyuan-trt adapter` in front of the replay, with small request limits so they are reachable."""
    port = free_port()
    log = replay_adapter_log
    argv = [sys.executable, "-m", "pipeline", "adapter", "--upstream", replay_upstream, "--port", port,
            "--served-model-name", SERVED_NAME, "--max-request-bytes", 1_000_000, "--max-n", 4,
            "--max-prompts", 8, "--max-stop", 4]
    with ManagedProcess(argv, log_path=log) as proc:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=30, process=proc.process)
        yield f"http://127.0.0.1:{port}"


# Test files longest first, so that `pytest -n N --dist loadfile --no-loadscope-reorder` (make test) does not end
# on one long file while the other workers sit idle: by the seconds each file took when it last ran (kept in
# pytest's cache by the controller), else by how many slow tests it has. (xdist's default order, most tests first,
# would start with the many quick files and end on the slow ones.)
FILE_SECONDS_KEY = "hunyuan-trt/file-seconds"
file_seconds: dict[str, float] = {}  # this run's setup + call + teardown seconds per test file


def file_of(nodeid: str) -> str:
    return nodeid.split("::")[0]


def pytest_collection_modifyitems(config, items):
    cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
    last_run = cache.get(FILE_SECONDS_KEY, {}) if cache else {}
    slow_tests = Counter(file_of(item.nodeid) for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: (-last_run.get(file_of(item.nodeid), 0.0), -slow_tests[file_of(item.nodeid)]))


def pytest_runtest_logreport(report):
    file_seconds[file_of(report.nodeid)] = file_seconds.get(file_of(report.nodeid), 0.0) + report.duration


def pytest_sessionfinish(session):
    cache = getattr(session.config, "cache", None)
    if cache and file_seconds and not hasattr(session.config, "workerinput"):  # the controller, or no xdist
        cache.set(FILE_SECONDS_KEY, cache.get(FILE_SECONDS_KEY, {}) | {f: round(s, 1) for f, s in file_seconds.items()})
