"""The drills' judges on synthetic outcomes: each goal can fail, and the table says why."""

from __future__ import annotations

import subprocess

import pytest
import requests

from pipeline.drills import bad_input, converter_crash, replica_kill, rolling_restart
from pipeline.drills.load import Record
from pipeline.drills.suite import DRILLS, Context
from pipeline.drills.table import markdown, write_report
from pipeline.goals import GoalResult

VICTIM = "http://127.0.0.1:1"


def records(plain_outcomes=("ok",) * 5, stream_outcomes=("ok",) * 3, victim_before=2) -> dict:
    rows = [Record("plain", i, i + 0.1, outcome, VICTIM if i < victim_before else None)
            for i, outcome in enumerate(plain_outcomes)]
    rows += [Record("stream", i, i + 0.1, outcome, None) for i, outcome in enumerate(stream_outcomes)]
    return {"records": rows, "victim_before": victim_before, "marked_down_s": 3.1, "mark_down_bound_s": 6.0,
            "survivors_served": 4, "recovery_s": 1.0, "restart_s": 5.0}


def verdicts(results: list[GoalResult]) -> list[bool]:
    return [result.passed for result in results]


def test_replica_kill_passes_on_a_clean_run():
    assert verdicts(replica_kill.evaluate(records())) == [True, True, True, True]


@pytest.mark.parametrize(("measured", "expected"), [
    (records(plain_outcomes=("ok", "http_502", "ok")), [False, True, True, True]),
    (records(plain_outcomes=("ok", "conn_error")), [False, True, True, True]),
    (records(victim_before=0), [False, True, True, True]),
    (records(stream_outcomes=("ok", "hang")), [True, False, True, True]),
    (records(stream_outcomes=("ok", "cut")), [True, False, True, True]),
    (records(stream_outcomes=("ok", "error_event")), [True, True, True, True]),
    (records() | {"marked_down_s": None}, [True, True, False, True]),  # still counted healthy
    (records() | {"marked_down_s": 6.5}, [True, True, False, True]),  # later than smg's checks allow
    (records() | {"survivors_served": 0}, [True, True, False, True]),  # nobody served after the mark-down
    (records() | {"recovery_s": 7.5}, [True, True, True, False]),
    (records() | {"recovery_s": None}, [True, True, True, False]),
    (records() | {"restart_s": None, "recovery_s": None}, [True, True, True]),  # no restart: no recovery goal
])
def test_replica_kill_fails_each_missed_goal(measured, expected):
    assert verdicts(replica_kill.evaluate(measured)) == expected


def trial(state="absent", writing=True, identical=True, partials_left=0) -> dict:
    return {"delay": 1.0, "writing": writing, "state": state, "identical": identical, "partials_left": partials_left}


@pytest.mark.parametrize(("trials", "expected"), [
    ([trial(), trial("verified")], [True, True]),
    ([trial(), trial("broken")], [False, True]),
    ([trial(writing=False), trial("verified", writing=False)], [False, True]),
    ([trial(), trial(identical=False)], [True, False]),
    ([trial(), trial(partials_left=1)], [True, False]),
])
def test_converter_crash_fails_each_missed_goal(trials, expected):
    assert verdicts(converter_crash.evaluate(trials, shards=2)) == expected


def completed(code: int, out: str = "", err: str = "") -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess([], code, out, err)


@pytest.mark.parametrize(("result", "problem"), [
    (completed(2, err="Error: x.yaml: unknown key\n"), None),
    (completed(1, err="Error: boom\n"), "exit 1"),
    (completed(2, err="Traceback (most recent call last):\n  ...\n"), "traceback"),
    (completed(2, err="Error: one\nError: two\n"), "2 lines"),
    (completed(0, out="fine\n"), "exit 0"),
])
def test_cli_verdict(result, problem):
    verdict = bad_input.cli_verdict(result)
    assert (verdict is None) if problem is None else (problem in verdict)


def response(status: int, body: bytes) -> requests.Response:
    answer = requests.Response()
    answer.status_code, answer._content = status, body
    return answer


@pytest.mark.parametrize(("status", "body", "problem"), [
    (400, b'{"error": {"message": "messages: expected a list", "type": "invalid_request_error"}}', None),
    (500, b'{"error": {"message": "internal"}}', "expected 4xx"),
    (422, b'{"detail": [{"loc": ["body"]}]}', "without an OpenAI error body"),
    (400, b"Traceback (most recent call last): ...", "traceback"),
    (200, b'{"choices": []}', "expected 4xx"),
])
def test_http_verdict(status, body, problem):
    verdict = bad_input.http_verdict(response(status, body))
    assert (verdict is None) if problem is None else (problem in verdict)


def test_report_table_lists_every_drill_and_the_failures(tmp_path):
    results = [GoalResult("a", "0", "0 / 10", True), GoalResult("b", "<= 5 s", "7.0 s", False, ["slow"])]
    path = write_report(results, tmp_path / "reports" / "drills.md", "hunyuan-trt drills")
    text = path.read_text()
    assert "| a | 0 | 0 / 10 | PASS |" in text and "| b | <= 5 s | 7.0 s | FAIL |" in text
    assert "- b: slow" in text and "`hunyuan-trt drills`" in text
    assert markdown(results[:1]).count("PASS") == 1
    assert [p.name for p in path.parent.iterdir()] == ["drills.md"]  # no temp file left


@pytest.mark.parametrize("short", [True, False])
def test_replica_kill_drill_restarts_the_victim_on_the_context_surface(monkeypatch, tmp_path, short):
    """How the suite calls the replica-kill drill (its run is tests/test_cpu_backend_surfaces.py's trtllm case
    in make test, and `make drills`): the victim is restarted in both forms, the short one loads for less."""
    calls = []
    monkeypatch.setattr(replica_kill, "run", lambda *args: calls.append(args) or [])
    DRILLS["replica-kill"](Context(tmp_path / "model", tmp_path, short=short, surface="sglang"))
    (model_dir, log_dir, plan, surface), = calls
    assert (model_dir, log_dir, surface) == (tmp_path / "model", tmp_path / "replica-kill", "sglang")
    assert plan.restart and (plan.warm_s < replica_kill.KillPlan().warm_s) == short


def test_unknown_drill_name_is_exit_2(run_cli):
    result = run_cli("drills", "--only", "replica-kil")
    assert result.exit_code == 2 and "did you mean 'replica-kill'" in result.output


def test_surface_for_a_drill_that_cannot_present_one_is_exit_2(run_cli):
    result = run_cli("drills", "--surface", "vllm", "--only", "replica-kill,http-auth")
    assert result.exit_code == 2 and "only replica-kill presents an engine surface, not http-auth" in result.output


def test_model_dir_without_weights_is_exit_2(run_cli, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    result = run_cli("drills", "--model-dir", tmp_path)
    assert result.exit_code == 2 and "make tiny-model" in result.output


def rolling(outcomes=("ok",) * 4, exits=(143, 0, 143), back=(20.0, 25.0, 30.0)) -> dict:
    rows = [Record("stream" if i % 2 else "plain", i, i + 0.1, outcome, None) for i, outcome in enumerate(outcomes)]
    return {"records": rows, "restarts": [rolling_restart.Restart(code, 3.0, b) for code, b in zip(exits, back, strict=True)],
            "replicas": 3}


@pytest.mark.parametrize("measured, expected", [
    (rolling(), [True, True]),
    (rolling(outcomes=("ok", "http_503", "ok", "ok")), [False, True]),
    (rolling(outcomes=("ok", "ok", "ok", "error_event")), [False, True]),
    (rolling(outcomes=("ok", "ok")[:1]), [False, True]),  # no stream at all proves nothing
    (rolling(exits=(143, 1, 0)), [True, False]),  # a crash, not a drain
    (rolling(back=(20.0, None, 30.0)), [True, False]),  # never healthy again
])
def test_rolling_restart_judge(measured, expected):
    assert verdicts(rolling_restart.evaluate(measured)) == expected
