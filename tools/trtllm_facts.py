"""Regenerate pipeline/trtllm/schema.json from TensorRT-LLM files saved at the pinned release.

    python tools/trtllm_facts.py [--src /tmp/trtllm-src] [--check]

The saved files are not in git (upstream text is never committed). docs/trtllm_pin.md says where each comes
from and how to save it under SRC/<commit>/<path>:
  - tensorrt_llm/llmapi/llm_args.py: the class bodies of the 1.2.1 docs' viewcode page, parsed with `ast`;
  - docs/trtllm-serve.options.txt: the `serve` options of the 1.2.1 trtllm-serve CLI page, one per line;
  - docs/trtllm-build.usage.txt: the argparse usage block of the 1.2.1 trtllm-build page.
Facts the pages do not show (flag value types, the keys TensorRT-LLM removed and their replacements, value
ranges enforced by validators) are the small tables below, each with its source. `--check` exits 1 when the
committed schema.json differs from a fresh extraction.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "pipeline" / "trtllm" / "schema.json"
PIN = {"version": "1.2.1", "commit": "376f7e1bd8ed543f75014309e3fd4b237e9b0e73", "date": "2026-04-16"}
DOCS = "NVIDIA/TensorRT-LLM gh-pages@58fb435eacc402f3bd177e60f592c955d2b0719d"
LLM_ARGS = "tensorrt_llm/llmapi/llm_args.py"
SERVE_OPTIONS = "docs/trtllm-serve.options.txt"
BUILD_USAGE = "docs/trtllm-build.usage.txt"

SOURCES = {
    "llm_args": f"{LLM_ARGS}@{PIN['commit']}, read from the 1.2.1 docs' viewcode page "
                f"1.2.1/_modules/tensorrt_llm/llmapi/llm_args.html ({DOCS}); each key's `source` is Class.field "
                "(the rendered page carries no line numbers)",
    "serve_flags": f"tensorrt_llm/commands/serve.py@{PIN['commit']} as rendered by sphinx-click in "
                   f"1.2.1/commands/trtllm-serve/trtllm-serve.html ({DOCS}); each flag's `source` is its anchor",
    "build_flags": f"tensorrt_llm/commands/build.py@{PIN['commit']} parse_arguments as rendered by sphinx-argparse "
                   f"in 1.2.1/commands/trtllm-build.html#trtllm-build ({DOCS}); `source` is the usage-line position",
    "serve_flag_types": "tensorrt_llm/commands/serve.py@00209af149e7774406881a37283dce303571eb11 click option types "
                        "(the CLI page shows metavars only; names and choices are checked against the pin)",
}

# The LLM-API sections the bundle can emit, by backend: the argument class and its StrictBaseModel parents.
BACKEND_CLASSES = {"pytorch": ("BaseLlmArgs", "TorchLlmArgs"), "tensorrt": ("BaseLlmArgs", "TrtLlmArgs")}
# Value ranges enforced by validators rather than annotations.
RANGES = {("KvCacheConfig", "free_gpu_memory_fraction"): {"min": 0, "max": 1}}  # validate_free_gpu_memory_fraction
# Keys earlier TensorRT-LLM releases accepted and 1.2.1 rejects, with the replacement a user should write.
REMOVED = {
    "use_cuda_graph": "cuda_graph_config (a section; null disables CUDA graphs)",
    "cuda_graph_padding_enabled": "cuda_graph_config.enable_padding",
    "cuda_graph_batch_sizes": "cuda_graph_config.batch_sizes",
    "cuda_graph_max_batch_size": "cuda_graph_config.max_batch_size",
}
SERVE_INT_FLAGS = {"--port", "--max_beam_width", "--max_batch_size", "--max_num_tokens", "--max_seq_len",
                   "--tensor_parallel_size", "--pipeline_parallel_size", "--context_parallel_size",
                   "--moe_expert_parallel_size", "--moe_cluster_parallel_size", "--gpus_per_node",
                   "--num_postprocess_workers"}
SERVE_FLOAT_FLAGS = {"--free_gpu_memory_fraction"}
BUILD_INT_METAVARS = {"MAX_BATCH_SIZE", "MAX_INPUT_LEN", "MAX_SEQ_LEN", "MAX_BEAM_WIDTH", "MAX_NUM_TOKENS",
                      "OPT_NUM_TOKENS", "MAX_ENCODER_INPUT_LEN", "MAX_PROMPT_EMBEDDING_TABLE_SIZE", "WORKERS",
                      "MAX_LORA_RANK", "MAX_DRAFT_LEN", "TOKENS_PER_BLOCK"}
BUILD_ALIASES = {"--max_seq_len": ["--max_decoder_seq_len"], "--max_prompt_embedding_table_size": ["--max_multimodal_len"]}
SCALAR_NAMES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "Path": "str", "dict": "dict"}


class Extractor:
    """Turns the pydantic classes of one parsed llm_args.py into schema entries."""

    def __init__(self, tree: ast.Module):
        self.classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def fields(self, name: str) -> dict:
        out = {}
        for stmt in self.classes[name].body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            field = stmt.target.id
            if field.startswith("_") or _is_classvar(stmt.annotation) or _keyword(stmt.value, "alias"):
                continue  # private attrs, class constants, and fields reached through another name
            entry = self.entry(stmt.annotation)
            entry.update(RANGES.get((name, field), {}))
            entry["source"] = f"{name}.{field}"
            out[field] = entry
        return out

    def entry(self, node: ast.expr) -> dict:
        optional, node = _strip_optional(node)
        entry = self.kind(node)
        if optional:
            entry["type"] += "?"
        return entry

    def kind(self, node: ast.expr) -> dict:
        if isinstance(node, ast.Name):
            if node.id in SCALAR_NAMES:
                return {"type": SCALAR_NAMES[node.id]}
            if self._is_model(node.id):
                return {"type": "object", "fields": self.fields(node.id)}
            if self._is_enum(node.id):
                return {"type": "str", "values": self.enum_values(node.id)}
            return {"type": "any"}
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            head, args = node.value.id, _subscript_args(node)
            if head == "Literal":
                return {"type": "str", "values": [a.value for a in args]}
            if head in ("List", "list") and isinstance(args[0], ast.Name) and args[0].id in ("int", "float"):
                return {"type": f"list[{args[0].id}]"}
            if head in ("Dict", "dict"):
                return {"type": "dict"}
            names = {getattr(a, "id", "") for a in args}
            if head == "Union" and "str" in names and "object" not in names:
                return {"type": "str"}  # Union[str, Path] or Union[str, SomeEnum]: any string passes
        return {"type": "any"}

    def _bases(self, name: str) -> list[str]:
        return [b.id for b in self.classes[name].bases if isinstance(b, ast.Name)] if name in self.classes else []

    def _is_model(self, name: str) -> bool:
        return name != "StrictBaseModel" and ("StrictBaseModel" in self._bases(name)
                                              or any(self._is_model(b) for b in self._bases(name)))

    def _is_enum(self, name: str) -> bool:
        return "StrEnum" in self._bases(name)

    def enum_values(self, name: str) -> list[str]:
        return [stmt.value.value for stmt in self.classes[name].body
                if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)]


def _is_classvar(node: ast.expr) -> bool:
    return isinstance(node, ast.Subscript) and getattr(node.value, "id", "") == "ClassVar"


def _keyword(call: ast.expr | None, name: str):
    return next((k.value for k in getattr(call, "keywords", []) if k.arg == name), None)


def _subscript_args(node: ast.Subscript) -> list[ast.expr]:
    return list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]


def _strip_optional(node: ast.expr) -> tuple[bool, ast.expr]:
    if isinstance(node, ast.Subscript) and getattr(node.value, "id", "") == "Optional":
        return True, node.slice
    return False, node


def llm_args(path: Path) -> dict:
    extractor = Extractor(ast.parse(path.read_text()))
    return {backend: {key: value for cls in classes for key, value in extractor.fields(cls).items()}
            for backend, classes in BACKEND_CLASSES.items()}


def serve_flags(path: Path) -> dict:
    flags = {}
    for line in _data_lines(path):
        anchor, names, metavar, choices = line.split("\t")
        for flag in names.split(","):
            entry = {"type": "flag"} if metavar == "-" else {"type": _serve_type(names.split(",")[0])}
            if choices != "-":
                entry["values"] = [c.strip() for c in choices.split("|")]
            entry["source"] = f"#{anchor}"
            flags[flag] = entry
    return flags


def _serve_type(flag: str) -> str:
    return "int" if flag in SERVE_INT_FLAGS else "float" if flag in SERVE_FLOAT_FLAGS else "str"


def build_flags(path: Path) -> dict:
    flags = {}
    usage = " ".join(_data_lines(path))
    for position, match in enumerate(re.finditer(r"\[(--\w+)(?: (\{[^}]*\}|[A-Z_]+))?", usage), 1):
        flag, arg = match.groups()
        if arg is None:
            entry = {"type": "flag"}
        elif arg.startswith("{"):
            entry = {"type": "str", "values": sorted(set(arg.strip("{}").split(",")))}
        else:
            entry = {"type": "int" if arg in BUILD_INT_METAVARS else "str"}
        entry["source"] = f"#trtllm-build usage option {position}"
        for name in [flag, *BUILD_ALIASES.get(flag, [])]:
            flags[name] = dict(entry)
    return flags


def _data_lines(path: Path) -> list[str]:
    return [line.rstrip("\n") for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def extract(src: Path) -> dict:
    root = src / PIN["commit"]
    schema = {
        "about": "Names, nesting and types of TensorRT-LLM's LLM-API arguments (extra_llm_api_options YAML) and the "
                 "trtllm-serve / trtllm-build flags at the pinned release, generated by tools/trtllm_facts.py "
                 "(docs/trtllm_pin.md). Types: bool, int, float, str, dict, list[int], list[float], object (with "
                 "fields), any (accepted, not checked deeper); a trailing '?' allows null; 'values' lists the allowed "
                 "strings; 'flag' takes no value; 'source' locates the fact. Every section is an allow-list "
                 "(TensorRT-LLM's StrictBaseModel forbids extra keys).",
        "trtllm_version": PIN["version"],
        "pin": PIN,
        "sources": SOURCES,
        "llm_args": llm_args(root / LLM_ARGS),
        "removed_keys": REMOVED,
        "serve_flags": serve_flags(root / SERVE_OPTIONS),
        "build_flags": build_flags(root / BUILD_USAGE),
    }
    present = set(schema["llm_args"]["pytorch"]) | set(schema["llm_args"]["tensorrt"])
    if present & set(REMOVED):
        raise SystemExit(f"removed keys still present at the pin: {sorted(present & set(REMOVED))}")
    return schema


def render(schema: dict) -> str:
    return json.dumps(schema, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path("/tmp/trtllm-src"), help="directory of saved upstream files")
    parser.add_argument("--check", action="store_true", help="compare with the committed schema.json, write nothing")
    args = parser.parse_args(argv)
    text = render(extract(args.src))
    if args.check:
        same = SCHEMA.read_text() == text
        print(f"{SCHEMA.relative_to(REPO)}: {'up to date' if same else 'differs from a fresh extraction'}")
        return 0 if same else 1
    SCHEMA.write_text(text)
    print(f"wrote {SCHEMA.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
