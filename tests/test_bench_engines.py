"""`hunyuan-trt bench-engines`: the side-by-side report (table per thinking mode, one plot, roofline) from aiperf
exports per engine, its command line and bad input. The live run against the CPU stand-in's three surfaces
needs aiperf (`make bench-setup`); `tests/fixtures/bench_engines` is such a run, recorded with the command in
its summary.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.bench.engines import parse_urls
from pipeline.bench.roofline import decode_bound_tok_s
from pipeline.profiles import load_profile

SINGLE = Path(__file__).parent / "fixtures" / "bench_aiperf"  # one endpoint, thinking off and on, c = 1, 4, 16
RECORDED = Path(__file__).parent / "fixtures" / "bench_engines"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SPEEDUP = {"trtllm": 1.0, "vllm": 2.0, "sglang": 3.0}


def three_engines(tmp_path: Path, isl_of: dict | None = None) -> Path:
    """The single-endpoint fixture as three engines whose output throughput differs by SPEEDUP."""
    for engine, factor in SPEEDUP.items():
        shutil.copytree(SINGLE / "aiperf", tmp_path / "src" / "aiperf" / engine)
        for path in (tmp_path / "src" / "aiperf" / engine).glob("*/*/profile_export_aiperf.json"):
            export = json.loads(path.read_text())
            export["output_token_throughput"]["avg"] *= factor
            if isl_of and engine in isl_of:
                export["input_config"]["datasets"][0]["prompts"]["isl"]["mean"] = isl_of[engine]
            path.write_text(json.dumps(export))
    return tmp_path / "src"


def table_rows(markdown: str, mode: str) -> list[list[str]]:
    section = markdown.split(f"## thinking {mode}")[1].split("## thinking")[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| engine")]


def test_report_has_a_row_per_engine_and_concurrency_with_that_engines_numbers(run_cli, tmp_path):
    out = tmp_path / "report"
    result = run_cli("bench-engines", "--from-export", three_engines(tmp_path), "--out", out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    markdown = (out / "engines.md").read_text()
    assert markdown.startswith("# Engine benchmark: cpu-tiny")
    for mode in ("off", "on"):
        rows = table_rows(markdown, mode)
        assert [(row[0], row[1]) for row in rows] == [(e, c) for e in sorted(SPEEDUP) for c in ("1", "4", "16")]
        base = {row[1]: float(row[6]) for row in rows if row[0] == "trtllm"}
        for engine, concurrency, *cells in rows:
            assert float(cells[4]) == pytest.approx(base[concurrency] * SPEEDUP[engine], rel=1e-3)
            measured = summary["engines"][engine]["modes"][mode]
            assert [r["concurrency"] for r in measured] == [1, 4, 16]
    assert (out / "engines.png").read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in (out / "aiperf").iterdir()) == sorted(SPEEDUP)


def test_roofline_column_is_the_profiles_bound_at_each_concurrency(run_cli, tmp_path):
    out = tmp_path / "report"
    assert run_cli("bench-engines", "--from-export", three_engines(tmp_path), "--out", out).exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    profile, spec = load_profile("cpu-tiny")
    context = summary["roofline"]["context_tokens"]
    for engine in summary["engines"].values():
        for row in engine["modes"]["off"]:
            assert row["roofline_tok_s"] == pytest.approx(
                decode_bound_tok_s(profile, spec, row["concurrency"], context), abs=0.1)


def test_engines_measured_with_different_loads_are_refused(run_cli, tmp_path):
    result = run_cli("bench-engines", "--from-export", three_engines(tmp_path, {"vllm": 999}),
                     "--out", tmp_path / "report")
    assert result.exit_code == 2 and "engines vllm: their aiperf exports ran another ISL/OSL" in result.output
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(("text", "expected"), [
    ("trtllm=http://a:8000,vllm=https://b:9000/", {"trtllm": "http://a:8000", "vllm": "https://b:9000"}),
    ("sglang=http://10.0.0.3:30000", {"sglang": "http://10.0.0.3:30000"}),
])
def test_urls_are_parsed_in_order(text, expected):
    parsed = parse_urls(text)
    assert parsed == expected and list(parsed) == list(expected)


@pytest.mark.parametrize("text", ["http://a:8000", "trtllm=a:8000", "Trt=http://a", "vllm=http://a,vllm=http://b",
                                  ","])
def test_bad_urls_are_refused_in_one_line(run_cli, tmp_path, text):
    result = run_cli("bench-engines", "--urls", text, "--out", tmp_path / "r")
    assert result.exit_code == 2 and "--urls" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("args", "message"), [
    ([], "give exactly one of --urls"),
    (["--urls", "a=http://x", "--cpu-surfaces", "vllm"], "give exactly one of --urls"),
    (["--cpu-surfaces", "vllm,tgi"], "--cpu-surfaces 'vllm,tgi': expected distinct names among trtllm, vllm, sglang"),
    (["--cpu-surfaces", "vllm", "--concurrency", "0"], "every value must be >= 1"),
])
def test_bad_invocations_exit_2_before_any_load(run_cli, tmp_path, args, message):
    result = run_cli("bench-engines", *args, "--out", tmp_path / "r")
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_foreign_out_directory_is_kept_without_force(run_cli, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    result = run_cli("bench-engines", "--from-export", three_engines(tmp_path), "--out", foreign)
    assert result.exit_code == 2 and "engine comparison report" in result.output
    assert (foreign / "notes.txt").read_text() == "keep"


def test_recorded_cpu_surface_run_re_renders_with_its_command(run_cli, tmp_path):
    out = tmp_path / "report"
    result = run_cli("bench-engines", "--from-export", RECORDED, "--out", out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["engines"]) == sorted(["trtllm", "vllm", "sglang"])
    assert "--cpu-surfaces trtllm,vllm,sglang" in summary["command"]
    for engine in summary["engines"].values():
        rows = engine["modes"]["off"]
        assert rows and all(row["output_token_throughput.avg"] and not row["flag"] for row in rows)
        assert all(row["request_error_rate.avg"] in (None, 0.0) for row in rows)
