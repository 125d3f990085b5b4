"""tools/engine_facts on a small synthetic wheel: source read by ast, every fact cited as path:line."""

from __future__ import annotations

import ast
import zipfile

import pytest

from tools.engine_facts.argparse_calls import Recorder
from tools.engine_facts.evaluate import Evaluator
from tools.engine_facts.scans import metrics, registry_keys, requirement, routes
from tools.engine_facts.wheel import WheelSource

MODULE = '''\
from prometheus_client import Gauge
from eng.consts import MODES

PARSERS = {"alpha": ("m", "A"), "beta": ("m", "B")}


def add_args(parser):
    parser.add_argument("--size", "-s", type=int, default=4)
    parser.add_argument("--mode", choices=MODES, default=MODES[0])
    parser.add_argument("--fast", action="store_true")


QUEUE = Gauge(name="eng:queue", documentation="waiting requests")


@app.get("/health")
def health():
    return "ok"
'''
CONSTS = 'MODES = ["x"] + ["y"]\n'
METADATA = "Metadata-Version: 2.1\nName: eng\nVersion: 1.2.3\nRequires-Dist: torch==2.1.0\n" \
           "Requires-Dist: rich; extra == 'ui'\n"


@pytest.fixture
def wheel(tmp_path) -> WheelSource:
    path = tmp_path / "eng-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("eng/__init__.py", MODULE)
        archive.writestr("eng/consts.py", CONSTS)
        archive.writestr("eng-1.2.3.dist-info/METADATA", METADATA)
    return WheelSource(path)


def test_metadata(wheel):
    assert wheel.version == "1.2.3"
    assert requirement(wheel, "torch") == {"requirement": "torch==2.1.0",
                                           "source": "eng-1.2.3.dist-info/METADATA:4"}
    with pytest.raises(KeyError, match="no unconditional Requires-Dist for rich"):
        requirement(wheel, "rich")


def test_scans_cite_path_and_line(wheel):
    assert registry_keys(wheel, "eng", "PARSERS") == {"alpha": "eng/__init__.py:4", "beta": "eng/__init__.py:4"}
    assert metrics(wheel, "eng", "eng:") == {"eng:queue": {"kind": "gauge", "source": "eng/__init__.py:13"}}
    assert routes(wheel, "eng") == {"/health": ["eng/__init__.py:16"]}


def test_recorder_replays_add_argument_calls(wheel):
    module = wheel.module("eng")
    add_args = next(n for n in module.tree.body if isinstance(n, ast.FunctionDef) and n.name == "add_args")
    recorder = Recorder(Evaluator(wheel), module, {})
    recorder.run(add_args.body)
    flags = {flag["names"][0]: flag for flag in recorder.flags}
    assert flags["--size"] == {"names": ["--size", "-s"], "nargs": None, "type": "int", "default": 4,
                               "source": "eng/__init__.py:8"}
    assert flags["--mode"]["choices"] == ["x", "y"]  # folded across the import
    assert flags["--mode"]["default"] == {"expr": "MODES[0]"}  # not folded: recorded as text, never guessed
    assert flags["--fast"]["nargs"] == 0 and "type" not in flags["--fast"]
