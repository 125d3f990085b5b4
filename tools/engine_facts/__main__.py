"""python -m tools.engine_facts WHEEL [--out FILE]: write the engine's facts JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import sglang, vllm
from .curated import CURATED
from .wheel import WheelSource

EXTRACTORS = {"vllm": vllm.extract, "sglang": sglang.extract}
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "pipeline" / "engines" / "facts"


def build(wheel: Path) -> dict:
    engine = wheel.name.split("-")[0]
    if engine not in EXTRACTORS:
        raise SystemExit(f"{wheel.name}: no extractor for '{engine}' (known: {', '.join(EXTRACTORS)})")
    source = WheelSource(wheel)
    facts = EXTRACTORS[engine](source)
    queue = facts["serving"]["queue_metric"]
    if queue not in facts["metrics"]:
        raise SystemExit(f"{wheel.name}: queue metric {queue} is not constructed anywhere in the wheel")
    curated = CURATED[engine]
    if curated["version"] != source.version:
        raise SystemExit(f"{wheel.name}: curated facts are for {engine} {curated['version']}, "
                         f"the wheel is {source.version}; update tools/engine_facts/curated.py")
    return {"about": ABOUT, "generated_by": f"python -m tools.engine_facts {wheel.name}",
            **facts, **{k: v for k, v in curated.items() if k != "version"}}


ABOUT = ("Facts about one inference engine release, extracted from its wheel by tools/engine_facts "
         "(static AST reading, nothing imported) plus the curated entries of tools/engine_facts/curated.py, "
         "each with its source. 'source' is path:line inside the wheel unless it names a repository. "
         "Flag fields: names (all accepted option strings; first is canonical), nargs (0 = no value, "
         "null = one value, '?', '+', or a count), type (int, float, str, json, json_or_str, human_int, "
         "human_int_or_auto, any), choices (choices_checked_by 'engine' when argparse accepts any string "
         "and the engine validates later), nullable ('None' or '' means unset), min/max (pydantic bounds), "
         "negations (option strings that set a boolean false), default (JSON, or {'expr': text} when not "
         "a constant), field (the config dataclass field it fills).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.engine_facts", description=__doc__)
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--out", type=Path, help="output file (default: pipeline/engines/facts/<engine>.json)")
    args = parser.parse_args(argv)
    facts = build(args.wheel)
    out = args.out or DEFAULT_OUT / f"{facts['engine']}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(facts, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(out)
    print(f"{out}: {len(facts['flags'])} flags, {len(facts['metrics'])} metrics, "
          f"{sum(len(v) for v in facts['parsers'].values())} parser names", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
