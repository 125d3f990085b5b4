"""The pinned TensorRT-LLM facts: schema.json regenerated from the pin, every emitted key and flag present there."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.profiles import load_profile, profile_names
from pipeline.trtllm import load_schema
from pipeline.trtllm.options import build_argv, llm_api_options, serve_argv
from pipeline.trtllm.schema import check_llm_args

REPO = Path(__file__).resolve().parent.parent
FACTS = json.loads((REPO / "pipeline" / "trtllm" / "facts.json").read_text())
STATUSES = {"pin", "nearest", "secondary"}


def load_tool():
    spec = importlib.util.spec_from_file_location("trtllm_facts", REPO / "tools" / "trtllm_facts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def emitted_paths(options: dict, prefix: str = "") -> list[str]:
    """Dotted key paths of an LLM-API options dict, nested sections included."""
    paths = []
    for key, value in options.items():
        paths.append(prefix + key)
        if isinstance(value, dict):
            paths += emitted_paths(value, f"{prefix}{key}.")
    return paths


def schema_entry(section: dict, path: str):
    entry = None
    for part in path.split("."):
        fields = section if entry is None else entry.get("fields", {})
        entry = fields.get(part)
        if entry is None:
            return None
    return entry


GPU_PROFILES = [name for name in profile_names() if load_profile(name)[0].backend != "cpu"]


@pytest.mark.parametrize("name", GPU_PROFILES)
@pytest.mark.parametrize("backend", ["pytorch", "tensorrt"])
def test_every_emitted_key_and_flag_exists_at_the_pin_with_its_source(name, backend):
    profile, _ = load_profile(name, {"backend": backend})
    schema = load_schema()
    options = llm_api_options(profile)
    for path in emitted_paths(options):
        entry = schema_entry(schema["llm_args"][backend], path)
        assert entry is not None, f"{name}/{backend}: {path} is not an LLM-API argument at TensorRT-LLM 1.2.1"
        assert entry["source"], path
    argvs = [(serve_argv(profile, "/models/x"), schema["serve_flags"])]
    if backend == "tensorrt":
        argvs.append((build_argv(profile, "/ckpt"), schema["build_flags"]))
    for argv, flags in argvs:
        for flag in (token for token in argv if token.startswith("--")):
            assert flag in flags, f"{name}/{backend}: {argv[0]} {flag} is not a flag at TensorRT-LLM 1.2.1"
            assert flags[flag]["source"], flag


def test_a_key_missing_at_the_pin_is_refused(monkeypatch):
    """The same options pass with the pinned schema and fail once the schema lacks one emitted key."""
    profile, _ = load_profile("h200x2")
    options = llm_api_options(profile)
    check_llm_args(options, "pytorch")
    narrowed = copy.deepcopy(load_schema())
    del narrowed["llm_args"]["pytorch"]["kv_cache_config"]["fields"]["enable_block_reuse"]
    monkeypatch.setattr("pipeline.trtllm.schema.load_schema", lambda: narrowed)
    with pytest.raises(PipelineError, match="kv_cache_config.enable_block_reuse: unknown LLM-API argument"):
        check_llm_args(options, "pytorch")


def _entries(section: dict):
    for key, entry in section.items():
        yield key, entry
        if isinstance(entry, dict) and "fields" in entry:
            yield from _entries(entry["fields"])


def test_schema_names_the_pin_and_a_source_for_every_entry():
    schema = load_schema()
    assert schema["trtllm_version"] == schema["pin"]["version"] == "1.2.1"
    assert len(schema["pin"]["commit"]) == 40 and schema["pin"]["commit"].startswith("376f7e1")
    for section in (*schema["llm_args"].values(), schema["serve_flags"], schema["build_flags"]):
        for key, entry in _entries(section):
            assert entry.get("source"), key
    assert not set(schema["removed_keys"]) & set(schema["llm_args"]["pytorch"])
    assert "sampler_type" in schema["llm_args"]["pytorch"]  # still a TorchLlmArgs field at 1.2.1


SNIPPET = '''
class StrictBaseModel(BaseModel):
    pass

class Mode(StrEnum, metaclass=M):
    A = "A"
    B = "B"

class Inner(StrictBaseModel):
    size: Optional[int] = Field(default=None)

class Outer(StrictBaseModel):
    kind: ClassVar[str] = "x"
    name: Literal["p", "q"] = Field(default="p")
    inner: Optional[Inner] = Field(default=None)
    sizes: List[int] = Field(default_factory=list)
    mode: Mode = Field(default=Mode.A)
    path: Union[str, Path] = Field()
    hidden: Optional[object] = Field(default=None, alias="_hidden")
    _private: int = PrivateAttr(default=0)
'''


def test_extractor_turns_annotations_into_schema_types():
    fields = load_tool().Extractor(ast.parse(SNIPPET)).fields("Outer")
    assert fields == {
        "name": {"type": "str", "values": ["p", "q"], "source": "Outer.name"},
        "inner": {"type": "object?", "fields": {"size": {"type": "int?", "source": "Inner.size"}},
                  "source": "Outer.inner"},
        "sizes": {"type": "list[int]", "source": "Outer.sizes"},
        "mode": {"type": "str", "values": ["A", "B"], "source": "Outer.mode"},
        "path": {"type": "str", "source": "Outer.path"},
    }


def test_build_flag_usage_parsing(tmp_path):
    usage = tmp_path / "usage.txt"
    usage.write_text("# comment\nusage: trtllm-build [-h] [--checkpoint_dir CHECKPOINT_DIR]\n"
                     "  [--workers WORKERS] [--strip_plan] [--gemm_plugin {auto,fp8,disable,disable}]\n")
    flags = load_tool().build_flags(usage)
    assert {flag: entry["type"] for flag, entry in flags.items()} == {
        "--checkpoint_dir": "str", "--workers": "int", "--strip_plan": "flag", "--gemm_plugin": "str"}
    assert flags["--gemm_plugin"]["values"] == ["auto", "disable", "fp8"]


@pytest.mark.parametrize("name", sorted(FACTS["facts"]))
def test_every_fact_has_a_status_and_evidence(name):
    fact = FACTS["facts"][name]
    assert fact["status"] in STATUSES and fact["evidence"] and all(fact["evidence"]), name
    assert fact["value"], name


def test_pinned_metric_names_have_no_prefix():
    metrics = FACTS["facts"]["prometheus_metrics"]
    assert len(metrics["value"]) == 5 and metrics["prefix"] == ""
    assert not any(name.startswith("trtllm_") for name in metrics["value"])
