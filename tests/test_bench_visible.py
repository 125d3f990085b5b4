"""Bench numbers measured on what the client sees: a run whose visible output is much shorter than the
requested OSL is flagged (no ITL or token throughput printed for it); plain-text requests; aiperf counts the
received text. Exports are copies of the recorded fixture (tests/fixtures/bench_aiperf) with the visible
token count that aiperf would have recorded when counting on the client side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.bench.aiperf import Workload, aiperf_argv
from pipeline.bench.results import load_cells
from pipeline.errors import PipelineError
from pipeline.model import TINY_MODEL_DIR

FIXTURE = Path(__file__).parent / "fixtures" / "bench_aiperf"
REQUESTED_OSL = 32  # the fixture's --osl


def client_counted(tmp_path: Path, visible_tokens: float, one_chunk: bool = False) -> Path:
    """A copy of the fixture as if aiperf had tokenized the received text and seen `visible_tokens` per request;
    with `one_chunk`, every answer arrived as one visible chunk (aiperf then records no time to second token)."""
    copy = tmp_path / f"export-{visible_tokens}-{one_chunk}"
    shutil.copytree(FIXTURE, copy)
    for path in copy.glob("aiperf/*/*/profile_export_aiperf.json"):
        export = json.loads(path.read_text())
        export["input_config"]["endpoint"]["use_server_token_count"] = False
        export["output_sequence_length"].update(avg=visible_tokens, p50=visible_tokens)
        if one_chunk:
            del export["time_to_second_token"]
            export["inter_token_latency"].update(avg=0.0, p50=0.0)
        path.write_text(json.dumps(export))
    return copy


def render(run_cli, export: Path, out: Path) -> tuple[str, dict]:
    result = run_cli("bench", "--from-export", export, "--profile", "cpu-tiny", "--out", out)
    assert result.exit_code == 0, result.output
    return (out / "report.md").read_text(), json.loads((out / "summary.json").read_text())


def test_short_visible_output_is_flagged_instead_of_printing_itl(run_cli, tmp_path):
    table, summary = render(run_cli, client_counted(tmp_path, 3.0), tmp_path / "short")
    for row in summary["modes"]["off"]:
        assert row["flag"] == "the client saw 3.0 of the 32 requested output tokens per request"
        assert row["visible_osl"] == 3.0 and row["requested_osl"] == REQUESTED_OSL
        assert row["inter_token_latency.p50"] is None and row["output_token_throughput.avg"] is None
        assert row["time_to_first_token.p50"] is not None  # what was measured is still reported
    assert "**FLAGGED** (concurrency 1: the client saw 3.0 of the 32 requested" in table
    assert "| 1 | 3 / 32 |" in table and "| FLAGGED |" in table


def test_answers_in_one_chunk_are_flagged_even_at_full_length(run_cli, tmp_path):
    """The trained tiny model through the adapter, thinking off: 55 of 64 tokens, all in one chunk, ITL 0."""
    table, summary = render(run_cli, client_counted(tmp_path, 31.0, one_chunk=True), tmp_path / "one-chunk")
    for row in summary["modes"]["off"]:
        assert row["flag"] == "100% of the answers arrived as one visible chunk"
        assert row["inter_token_latency.p50"] is None
    assert "| 0.00 |" not in table and "| FLAGGED |" in table


def test_normal_visible_output_is_not_flagged(run_cli, tmp_path):
    table, summary = render(run_cli, client_counted(tmp_path, 31.0), tmp_path / "normal")
    rows = summary["modes"]["off"]
    assert not any(row["flag"] for row in rows)
    assert all(row["inter_token_latency.p50"] is not None for row in rows)
    assert "FLAGGED" not in table and "| 1 | 31 / 32 |" in table


def test_server_counted_export_is_not_claimed_visible():
    from pipeline.bench.results import stream_flag, visible_osl

    cells = load_cells(FIXTURE / "aiperf" / "off")  # recorded with --use-server-token-count, streamed normally
    assert all(visible_osl(cell) is None and stream_flag(cell) == "" for cell in cells)


def test_aiperf_counts_the_received_text_and_carries_the_bias():
    work = Workload(url="http://127.0.0.1:1", model="m", tokenizer=Path("/tok"), concurrency=(1,), isl=8, osl=4,
                    logit_bias={"70": 100.0})
    argv = aiperf_argv(Path("aiperf"), work, Path("/out"))
    assert "--use-server-token-count" not in argv
    assert json.loads(argv[argv.index("--extra-inputs") + 1])["logit_bias"] == {"70": 100.0}


def test_plain_text_bias_covers_exactly_letters_and_digits():
    from tokenizers import Tokenizer

    from pipeline.bench.plain_text import PLAIN_CHARACTERS, plain_text_bias

    bias = plain_text_bias(TINY_MODEL_DIR)
    tokenizer = Tokenizer.from_file(str(TINY_MODEL_DIR / "tokenizer.json"))
    assert sorted(tokenizer.decode([int(i)]) for i in bias) == sorted(PLAIN_CHARACTERS)
    assert set(bias.values()) == {100.0}


def test_plain_text_needs_a_tokenizer_json(tmp_path):
    from pipeline.bench.plain_text import plain_text_bias

    with pytest.raises(PipelineError, match="tokenizer.json"):
        plain_text_bias(tmp_path)


def test_report_names_the_command_with_the_key_masked():
    from pipeline.commands.bench import command_line

    line = command_line(["bench", "--url", "http://gw", "--api-key", "sk-secret", "--concurrency", "1,4"])
    assert line == "hunyuan-trt bench --url http://gw --api-key '***' --concurrency 1,4"
    assert "sk-secret" not in command_line(["bench", "--api-key=sk-secret"])


def test_re_rendered_report_keeps_the_measuring_command(run_cli, tmp_path):
    export = client_counted(tmp_path, 31.0)
    (export / "summary.json").write_text(json.dumps({"command": "hunyuan-trt bench --cpu-chain 2 --plain-text"}))
    table, summary = render(run_cli, export, tmp_path / "again")
    assert summary["command"] == "hunyuan-trt bench --cpu-chain 2 --plain-text"
    assert "Measured with `hunyuan-trt bench --cpu-chain 2 --plain-text`." in table
