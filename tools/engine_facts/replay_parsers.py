"""Run the engines' own Hunyuan parsers on the raw A13B outputs of tests/data/hunyuan_outputs/corpus.json and
print what a non-streaming chat client would get from each, next to what the format rules expect.

Evidence tool, not product code: it imports the parser modules of the unpacked wheels, which need a few of the
engines' pure-Python dependencies. Setup used for docs/engines.md:

    unzip -q WHEEL -d SRC                                # vllm-0.34.0 and sglang-0.5.23 wheels, same SRC
    pip install --target DEPS orjson partial-json-parser psutil pybase64 triton msgspec pyzmq ipython \\
        cachetools openai-harmony cbor2 cloudpickle py-cpuinfo
    python -m tools.engine_facts.replay_parsers --source SRC --deps DEPS > replay.json

Each engine's flow is the one its chat server runs for a complete (non-streamed) output with tools given and
tool_choice "auto": reasoning parser first, then the tool parser on the remaining content.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "hunyuan_outputs" / "corpus.json"
TOKENIZER = ROOT / "pipeline" / "data" / "hunyuan-tiny"
TOOLS = [{"name": "get_weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}, "unit": {"type": "string"}}}},
    {"name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}}]


def vllm_flow(tokenizer):
    """vllm/parser/parser_manager.py `get_parser` composes both parsers; its `parse` is what chat serving calls."""
    from types import SimpleNamespace

    from vllm.parser.parser_manager import ParserManager

    parser_cls = ParserManager.get_parser(tool_parser_name="hunyuan_a13b", reasoning_parser_name="hunyuan_a13b",
                                          enable_auto_tools=True)
    request = SimpleNamespace(tool_choice="auto", tools=TOOLS)

    def parse(raw: str) -> dict:
        reasoning, content, calls = parser_cls(tokenizer, None).parse(raw, request, enable_auto_tools=True)
        calls = [{"name": call.name, "arguments": json.loads(call.arguments)} for call in calls or []]
        return {"reasoning": reasoning, "content": content, "tool_calls": calls}
    return parse


def sglang_flow(tokenizer):
    """sglang/srt/entrypoints/openai/serving_chat.py: ReasoningParser, then FunctionCallParser."""
    from sglang.srt.entrypoints.openai.protocol import Function, Tool
    from sglang.srt.function_call.function_call_parser import FunctionCallParser
    from sglang.srt.parser.reasoning_parser import ReasoningParser

    tools = [Tool(type="function", function=Function(**tool)) for tool in TOOLS]

    def parse(raw: str) -> dict:
        reasoning, content = ReasoningParser("hunyuan", stream_reasoning=False, tokenizer=tokenizer,
                                             tool_call_parser_active=True).parse_non_stream(raw)
        content, items = FunctionCallParser(tools, "hunyuan", tokenizer=tokenizer).parse_non_stream(content or "")
        calls = [{"name": item.name, "arguments": json.loads(item.parameters or "{}")} for item in items]
        return {"reasoning": reasoning or None, "content": content or None, "tool_calls": calls}
    return parse


def verdict(got: dict, expected: dict) -> str:
    """'agrees' when the client gets exactly the expected parse ('' and None both mean absent)."""
    fields = ("reasoning", "content", "tool_calls")
    return "agrees" if all((got[k] or None) == (expected[k] or None) for k in fields) else "differs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="directory the wheels were unzipped into")
    parser.add_argument("--deps", type=Path, required=True, help="pip --target directory of the dependencies")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(args.source), str(args.deps)]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER))
    flows = {"vllm": vllm_flow(tokenizer), "sglang": sglang_flow(tokenizer)}
    report = []
    for case in json.loads(CORPUS.read_text())["cases"]:
        row = {"name": case["name"], "raw": case["raw"], "expected": case["expected"]}
        for engine, parse in flows.items():
            got = parse(case["raw"])
            row[engine] = {**got, "verdict": verdict(got, case["expected"])}
        report.append(row)
    json.dump(report, sys.stdout, ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
