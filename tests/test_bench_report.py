"""Report generation from a recorded aiperf 0.13 export (tests/fixtures/bench_aiperf: `hunyuan-trt bench
--concurrency 1,4,16 --requests-per-user 2 --isl 64 --osl 32` run once against the adapter in front of a CPU
backend replica serving hunyuan-tiny's architecture), the aiperf command line, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.bench.aiperf import Workload, aiperf_argv, aiperf_env
from pipeline.bench.results import load_cells
from pipeline.bench.roofline import decode_bound_tok_s
from pipeline.model import SERVED_MODEL_NAME
from pipeline.profiles import load_profile

FIXTURE = Path(__file__).parent / "fixtures" / "bench_aiperf"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def raw_export(mode: str, concurrency: int) -> dict:
    [path] = (FIXTURE / "aiperf" / mode).glob(f"concurrency_{concurrency}__*/profile_export_aiperf.json")
    return json.loads(path.read_text())


def test_cells_are_read_per_concurrency_with_aiperf_values():
    cells = load_cells(FIXTURE / "aiperf" / "off")
    assert [cell.concurrency for cell in cells] == [1, 4, 16]
    for cell in cells:
        raw = raw_export("off", cell.concurrency)
        assert cell.stat("time_to_first_token", "p99") == raw["time_to_first_token"]["p99"]
        assert cell.stat("output_token_throughput") == raw["output_token_throughput"]["avg"]


@pytest.mark.parametrize(("profile", "batch", "context", "published"), [
    ("h100x2", 1, 2048, 520), ("h100x2", 32, 2048, 2565), ("h100x2", 64, 8192, 3737),
    ("h200x1", 1, 2048, 373), ("h200x1", 128, 2048, 6297),
])
def test_roofline_matches_the_performance_reference_table(profile, batch, context, published):
    loaded, spec = load_profile(profile)
    assert decode_bound_tok_s(loaded, spec, batch, context) == pytest.approx(published, rel=0.01)


def test_roofline_grows_with_batch_and_shrinks_with_context():
    profile, spec = load_profile("h100x2")
    assert decode_bound_tok_s(profile, spec, 16, 2048) > decode_bound_tok_s(profile, spec, 4, 2048)
    assert decode_bound_tok_s(profile, spec, 16, 16384) < decode_bound_tok_s(profile, spec, 16, 2048)


def test_from_export_writes_table_plots_and_summary(run_cli, tmp_path):
    out = tmp_path / "report"
    result = run_cli("bench", "--from-export", FIXTURE, "--profile", "cpu-tiny", "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "throughput.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "latency.png").read_bytes()[:8] == PNG_MAGIC
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profile"] == "cpu-tiny" and "CPU numbers" in summary["hardware"]
    assert summary["plan"]["fits"] is True
    assert summary["isl"] == 64 and summary["osl"] == 32 and summary["model"] == SERVED_MODEL_NAME
    assert summary["roofline"]["decode_ceiling_batch1_tok_s"] > 0
    for mode in ("off", "on"):
        rows = summary["modes"][mode]
        assert [row["concurrency"] for row in rows] == [1, 4, 16]
        for row in rows:
            raw = raw_export(mode, row["concurrency"])
            assert row["inter_token_latency.p50"] == raw["inter_token_latency"]["p50"]
            assert row["goodput.avg"] == raw["goodput"]["avg"]
            expected = 100 * raw["output_token_throughput"]["avg"] / row["roofline_tok_s"]
            assert row["pct_of_roofline"] == pytest.approx(expected, abs=0.01)
    table = (out / "report.md").read_text()
    assert table.count("\n| 16 |") == 2 and "## thinking on" in table
    first_ttft = f"{raw_export('off', 1)['time_to_first_token']['p50']:.1f}"
    assert f"| 1 | usage-counted / 32 | {first_ttft} |" in table
    assert (out / "aiperf" / "off").is_dir()  # the raw exports travel with the report


def test_corrupt_export_fails_cleanly_and_writes_nothing(run_cli, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURE, broken)
    target = next((broken / "aiperf" / "on").glob("concurrency_4__*/profile_export_aiperf.json"))
    target.write_text("{not json")
    out = tmp_path / "report"
    result = run_cli("bench", "--from-export", broken, "--out", out)
    assert result.exit_code == 2
    assert "profile_export_aiperf.json: not valid JSON" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_export_dir_without_exports_is_a_clear_error(run_cli, tmp_path):
    (tmp_path / "empty" / "aiperf" / "off").mkdir(parents=True)
    result = run_cli("bench", "--from-export", tmp_path / "empty", "--out", tmp_path / "report")
    assert result.exit_code == 2 and "no profile_export_aiperf.json" in result.output


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--concurrency", "1,x", "expected comma-separated integers"),
    ("--concurrency", "0,4", "must be >= 1"),
    ("--thinking", "maybe", "--thinking 'maybe'"),
])
def test_bad_flags_exit_2_before_any_load(run_cli, tmp_path, flag, value, message):
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    (tokenizer / "tokenizer.json").write_text("{}")
    result = run_cli("bench", "--url", "http://127.0.0.1:9", "--model", "m", "--tokenizer", tokenizer,
                     flag, value, "--out", tmp_path / "report")
    assert result.exit_code == 2 and message in result.output


def test_missing_aiperf_names_the_setup_target(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HUNYUAN_TRT_AIPERF", str(tmp_path / "no-aiperf"))
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    (tokenizer / "tokenizer.json").write_text("{}")
    result = run_cli("bench", "--url", "http://127.0.0.1:9", "--model", "m", "--tokenizer", tokenizer,
                     "--out", tmp_path / "report")
    assert result.exit_code == 2 and "make bench-setup" in result.output


def test_tokenizer_dir_without_tokenizer_files_is_rejected(run_cli, tmp_path):
    result = run_cli("bench", "--url", "http://127.0.0.1:9", "--model", "m", "--tokenizer", tmp_path,
                     "--out", tmp_path / "report")
    assert result.exit_code == 2 and f"--tokenizer {tmp_path}" in result.output


def test_aiperf_command_line_carries_mode_key_and_quiet_flags(monkeypatch):
    work = Workload(url="http://127.0.0.1:1", model="m", tokenizer=Path("/tok"), concurrency=(1, 4), isl=8,
                    osl=4, thinking="on", api_key="sk-x", goodput="time_to_first_token:100")
    argv = aiperf_argv(Path("aiperf"), work, Path("/out"))
    extra = json.loads(argv[argv.index("--extra-inputs") + 1])
    assert extra["chat_template_kwargs"] == {"enable_thinking": True} and extra["ignore_eos"] is True
    assert argv[argv.index("--api-key") + 1] == "sk-x"
    assert argv[argv.index("--request-count") + 1] == "8,32"
    assert argv[argv.index("--ui-type") + 1] == "none" and "--no-gpu-telemetry" in argv
    assert "--sweep-type" in argv and argv[argv.index("--goodput") + 1] == "time_to_first_token:100"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE" not in aiperf_env()


def test_target_must_be_exactly_one_of_url_chain_export(run_cli, tmp_path):
    result = run_cli("bench", "--out", tmp_path / "report")
    assert result.exit_code == 2 and "exactly one of --url URL, --cpu-chain N or --from-export DIR" in result.output
    result = run_cli("bench", "--url", "http://127.0.0.1:9", "--cpu-chain", "2", "--out", tmp_path / "report")
    assert result.exit_code == 2 and not (tmp_path / "report").exists()
