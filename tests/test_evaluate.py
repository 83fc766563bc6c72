"""`evaluate --tasks`: an estimator against labelled tasks, the range statistics, heuristic-2's code term.

The task files are written by the tests (a handful of invented tasks); the CLI runs
in-process through click, the LLM path against the fake OpenAI server on loopback.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from click.testing import CliRunner

from functions.calibration_stats import (
    HUMAN_TIME_BINS,
    RangedPair,
    bin_biases,
    range_agreement,
    range_middle,
    spearman,
)
from infra.cli import cli
from infra.evaluate_tasks import (
    TasksRejected,
    evaluate_tasks,
    read_tasks,
    task_conversation,
    task_digest,
)
from shared.config import REPO_ROOT, Settings
from shared.conversation import DigestFeatures, TranscriptDigest
from shared.digest import build_digest
from shared.errors import EstimationFailed
from shared.estimators.base import Estimate
from shared.estimators.heuristic import CODE_TERM, HeuristicEstimator, manual_minutes
from tests.fake_openai import FakeOpenAIServer, fake_openai_fixture

__all__ = ["fake_openai_fixture"]  # the fixture, used by name

DIFF = "\n".join(
    [
        "diff --git a/pkg/util.py b/pkg/util.py",
        "--- a/pkg/util.py",
        "+++ b/pkg/util.py",
        "@@ -10,7 +10,7 @@ def parse(value):",
        "     text = value.strip()",
        "     if not text:",
        "         return None",
        "-    return int(text)",
        "+    return int(text, 10)",
        " ",
        " ",
        " def render(value):",
        "",
    ]
)


def _task(index: int, low: float, high: float | None, *, changed: int = 1, words: int = 30) -> dict[str, Any]:
    body = "\n".join(f"+    step_{index}_{line} = compute({line})" for line in range(changed))
    return {
        "id": f"demo__project-{index}",
        "task_text": f"Task {index}: " + " ".join(["the parser fails on padded input"] * (words // 6 + 1)),
        "answer_text": DIFF + body + "\n",
        "human_minutes_low": low,
        "human_minutes_high": high,
        "repo": "demo/project",
    }


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


# Short fixes, medium ones with more code, long ones with much more: an estimator that counts
# code should rank them.
TASKS = (
    [_task(i, 1, 15, changed=1 + i % 3) for i in range(4)]
    + [_task(10 + i, 15, 60, changed=25 + 5 * i) for i in range(4)]
    + [_task(20 + i, 60, 240, changed=150 + 30 * i) for i in range(3)]
    + [_task(30, 240, None, changed=600)]
)


def _invoke(*arguments: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(arguments))
    return result.exit_code, result.stdout, result.stderr


# --- the statistics ----------------------------------------------------------------------------


def test_range_middles_are_the_bins_and_geometric_elsewhere() -> None:
    assert [range_middle(low, high) for low, high, _ in HUMAN_TIME_BINS] == [7.5, 30.0, 120.0, 480.0]
    assert range_middle(10, 40) == pytest.approx(20.0)  # not a standard bin: the geometric middle
    assert range_middle(100, None) == 200.0  # another open range: twice its lower end
    with pytest.raises(ValueError, match="1 minute"):
        range_middle(0, 15)


def test_in_range_and_band_overlap_are_inclusive_and_open_ended() -> None:
    assert RangedPair(15, 60, 10, 15, 20).in_range  # the edge counts
    assert not RangedPair(15, 60, 10, 14, 20).in_range
    assert RangedPair(15, 60, 1, 5, 15).band_overlaps  # touching is overlapping
    assert not RangedPair(15, 60, 1, 5, 14).band_overlaps
    assert RangedPair(240, None, 1000, 3000, 4800).in_range  # no upper end
    assert not RangedPair(240, None, 100, 200, 239).band_overlaps


def test_range_agreement_by_hand() -> None:
    pairs = [
        RangedPair(1, 15, 5, 10, 20),  # in range, overlaps
        RangedPair(1, 15, 20, 40, 80),  # out, no overlap (20 > 15)
        RangedPair(15, 60, 15, 30, 60),  # in
        RangedPair(15, 60, 50, 100, 200),  # out, overlaps
        RangedPair(60, 240, 100, 200, 400),  # in
    ]
    figures = range_agreement(pairs, resamples=200, seed=1)

    assert figures.count == 5
    assert figures.in_range == pytest.approx(3 / 5)
    assert figures.band_overlap == pytest.approx(4 / 5)
    assert figures.median_estimate == 40
    # the calibration report's own Spearman, against the middles 7.5, 7.5, 30, 30, 120
    assert figures.spearman_rho == pytest.approx(spearman([7.5, 7.5, 30, 30, 120], [10, 40, 30, 100, 200]))
    assert figures.rho_interval is not None and figures.spearman_rho is not None
    low, high = figures.rho_interval
    assert -1 <= low <= figures.spearman_rho <= high <= 1
    assert [(b.human_low, b.count, b.median_estimate) for b in figures.bins] == [
        (1, 2, 25),
        (15, 2, 65),
        (60, 1, 200),
    ]
    assert [round(b.bias, 3) for b in figures.bins] == [
        round(25 / 7.5, 3),
        round(65 / 30, 3),
        round(200 / 120, 3),
    ]
    assert range_agreement(pairs, resamples=200, seed=1) == figures  # seeded: the same interval


def test_range_agreement_without_pairs_has_no_numbers() -> None:
    figures = range_agreement([])
    assert (figures.count, figures.spearman_rho, figures.in_range, figures.bins) == (0, None, None, ())


def test_bins_are_ordered_with_the_open_range_last() -> None:
    pairs = [RangedPair(240, None, 1, 2, 3), RangedPair(1, 15, 1, 2, 3), RangedPair(15, 60, 1, 2, 3)]
    assert [(b.human_low, b.human_high) for b in bin_biases(pairs)] == [(1, 15), (15, 60), (240, None)]


# --- the task file -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "line 2: not valid JSON"),
        ("[1, 2]", "line 2: expected a JSON object"),
        ('{"answer_text": "x", "human_minutes_low": 1, "human_minutes_high": 15}', "line 2: task_text"),
        (
            '{"task_text": "x", "answer_text": "  ", "human_minutes_low": 1, "human_minutes_high": 15}',
            "answer_text",
        ),
        ('{"task_text": "x", "answer_text": "y", "human_minutes_low": "1", "human_minutes_high": 15}', "low"),
        (
            '{"task_text": "x", "answer_text": "y", "human_minutes_low": true, "human_minutes_high": 15}',
            "low",
        ),
        (
            '{"task_text": "x", "answer_text": "y", "human_minutes_low": -1, "human_minutes_high": 15}',
            "between",
        ),
        (
            '{"task_text": "x", "answer_text": "y", "human_minutes_low": 0, "human_minutes_high": 15}',
            "between 1 and 4800",
        ),
        ('{"task_text": "x", "answer_text": "y", "human_minutes_low": 1}', "human_minutes_high is missing"),
        (
            '{"task_text": "x", "answer_text": "y", "human_minutes_low": 60, "human_minutes_high": 15}',
            "below",
        ),
        (
            '{"task_text": "x", "answer_text": "y", "human_minutes_low": 1, "human_minutes_high": 1e999}',
            "high",
        ),
        (
            '{"task_text": "x", "answer_text": "y", "human_minutes_low": 1, "human_minutes_high": 15, "id": []}',
            "id",
        ),
    ],
)
def test_a_bad_line_is_rejected_by_its_number(line: str, problem: str) -> None:
    good = json.dumps(_task(1, 1, 15))
    with pytest.raises(TasksRejected, match=problem) as caught:
        read_tasks(f"{good}\n{line}\n{good}\n")
    assert str(caught.value).startswith("line 2: ")


def test_blank_lines_are_skipped_and_an_empty_file_is_rejected() -> None:
    tasks = read_tasks("\n" + json.dumps(_task(1, 1, 15)) + "\n\n" + json.dumps(_task(2, 240, None)) + "\n")
    assert [(t.line, t.task_id, t.human_low, t.human_high) for t in tasks] == [
        (2, "demo__project-1", 1, 15),
        (4, "demo__project-2", 240, None),
    ]
    with pytest.raises(TasksRejected, match="no tasks"):
        read_tasks("\n  \n")


def test_a_task_is_digested_and_redacted_as_the_analyzer_does() -> None:
    record = _task(1, 15, 60, changed=4) | {
        "task_text": "Please fix the parser. Reported by anna.kovacs@example.com, call +36 30 123 4567."
    }
    (task,) = read_tasks(json.dumps(record))
    settings = Settings()
    digest = task_digest(task, settings)

    conversation = task_conversation(task)
    assert [m.role for m in conversation.messages] == ["user", "assistant"]
    assert conversation.messages[1].text.startswith("```diff\ndiff --git")  # a bare diff, fenced
    assert digest == build_digest(
        conversation, settings.digest_token_budget, regions=settings.pii_regions, mode=settings.digest_mode
    )
    assert "anna.kovacs" not in digest.text and "123 4567" not in digest.text
    assert "Please fix the parser" in digest.text
    assert digest.features.code_lines_by_language == {"diff": DIFF.count("\n") + 4}


def test_an_answer_that_is_not_a_diff_is_kept_as_written() -> None:
    (task,) = read_tasks(
        json.dumps(
            {
                "task_text": "Write a haiku",
                "answer_text": "Autumn moon\nrises",
                "human_minutes_low": 1,
                "human_minutes_high": 15,
            }
        )
    )
    assert task_conversation(task).messages[1].text == "Autumn moon\nrises"


class _FailsOnLongTasks:
    """An estimator that fails on some digests: the failures must be counted, not estimated."""

    name = "picky"
    model: str | None = None
    prompt_version = "picky-1"

    def estimate(self, digest: TranscriptDigest) -> Estimate:
        if digest.features.code_lines > 100:
            raise EstimationFailed("the model refused")
        return HeuristicEstimator().estimate(digest)


def test_estimator_failures_are_counted_and_left_out(tmp_path: Path) -> None:
    tasks = read_tasks(_write(tmp_path / "t.jsonl", TASKS).read_text())
    settings = Settings()
    result = evaluate_tasks(
        tasks, _FailsOnLongTasks(), lambda task: task_digest(task, settings), resamples=200
    )

    failed_ids = {task_id for task_id, _ in result.failed}
    assert failed_ids == {"demo__project-20", "demo__project-21", "demo__project-22", "demo__project-30"}
    assert all("the model refused" in reason for _, reason in result.failed)
    assert result.figures.count == len(TASKS) - 4 and result.tasks == len(TASKS)
    assert [b.human_low for b in result.figures.bins] == [1, 15]  # no invented estimate for the rest
    assert result.as_json()["failed"] == 4


# --- the command -------------------------------------------------------------------------------


def test_evaluate_tasks_json_reports_the_figures(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.jsonl", TASKS)
    code, out, _ = _invoke("evaluate", "--tasks", str(path), "--json")
    assert code == 0, out
    data = json.loads(out)

    assert (data["estimator"], data["version"]) == ("heuristic", HeuristicEstimator().prompt_version)
    assert (data["n"], data["tasks"], data["failed"]) == (len(TASKS), len(TASKS), 0)
    # the same figures as computing them directly from the heuristic's estimates
    settings = Settings()
    pairs = []
    for task in read_tasks(path.read_text()):
        estimate = HeuristicEstimator().estimate(task_digest(task, settings))
        pairs.append(
            RangedPair(task.human_low, task.human_high, estimate.low, estimate.most_likely, estimate.high)
        )
    expected = range_agreement(pairs)
    assert data["spearman"]["rho"] == round(expected.spearman_rho or math.nan, 3)
    assert data["spearman"]["rho"] > 0.8  # more code, more time: these tasks are ranked
    assert data["spearman"]["interval"] == [round(v, 3) for v in expected.rho_interval or ()]
    assert data["in_range"] == round(expected.in_range or math.nan, 3)
    assert data["band_overlap"] == round(expected.band_overlap or math.nan, 3)
    assert [(b["human_minutes_low"], b["human_minutes_high"], b["middle"], b["n"]) for b in data["bins"]] == [
        (1, 15, 7.5, 4),
        (15, 60, 30, 4),
        (60, 240, 120, 3),
        (240, None, 480, 1),
    ]
    assert [b["bias"] for b in data["bins"]] == [round(b.bias, 3) for b in expected.bins]


def test_evaluate_tasks_text_and_nothing_is_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # an analytics database that cannot be reached: the command must not need one
    monkeypatch.setenv("COGNIFORCE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    path = _write(tmp_path / "tasks.jsonl", TASKS)
    code, out, _ = _invoke("evaluate", "--tasks", str(path))
    assert code == 0, out
    assert f"{len(TASKS)} of {len(TASKS)} tasks estimated, 0 failed" in out
    assert "Spearman ρ against the human ranges' middles: " in out and "bootstrap interval" in out
    assert "most likely inside the human range: " in out and "band overlapping it: " in out
    assert "  1–15 min: n 4, middle 7.5" in out and "  > 240 min: n 1, middle 480" in out


def test_a_malformed_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_task(1, 1, 15)) + "\n" + '{"task_text": "x"\n', encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "main.py", "evaluate", "--tasks", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.strip().splitlines() == [
        f"error: {path}: line 2: not valid JSON (Expecting ',' delimiter)"
    ]


def test_a_file_that_is_not_utf8_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"task_text": "caf\xe9"}\n')
    code, out, err = _invoke("evaluate", "--tasks", str(path))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"error: {path}: not UTF-8 text (invalid continuation byte at byte 18)"
    ]


def test_labels_and_tasks_are_exclusive(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.jsonl", TASKS[:1])
    code, _, err = _invoke("evaluate", "--tasks", str(path), "--labels", str(path))
    assert code == 2 and "exactly one of --labels" in err
    code, _, err = _invoke("evaluate")
    assert code == 2 and "exactly one of --labels" in err


def test_the_configured_llm_is_evaluated_and_its_failures_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAIServer
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("ANALYTICS_LLM_RPM", "100000")
    fake_openai.default = "refusal"  # every task but the first two: refused
    fake_openai.enqueue("ok", "ok")
    path = _write(tmp_path / "tasks.jsonl", TASKS[:4])

    code, out, _ = _invoke("evaluate", "--tasks", str(path), "--json")

    assert code == 0, out
    data = json.loads(out)
    assert data["estimator"] == "llm"
    assert (data["n"], data["failed"]) == (2, 2)
    assert all("EstimationFailed" in failure["reason"] for failure in data["failures"])
    assert data["bins"] == [
        {
            "human_minutes_low": 1,
            "human_minutes_high": 15,
            "middle": 7.5,
            "n": 2,
            "median_estimate": 60,
            "bias": 8.0,
        }
    ]
    assert len(fake_openai.requests) == 4


# --- heuristic-2's code term -------------------------------------------------------------------


def _features(**code: int) -> DigestFeatures:
    return DigestFeatures(user_turns=1, user_words=100, code_lines_by_language=MappingProxyType(code))


def test_a_diff_line_counts_a_fraction_of_a_written_line() -> None:
    assert CODE_TERM.effective_lines(_features(diff=100, python=10)) == pytest.approx(
        10 + 100 * CODE_TERM.diff_line_weight
    )
    assert manual_minutes(_features(diff=100), "coding") == manual_minutes(_features(python=30), "coding")


def test_the_code_term_is_the_documented_curve() -> None:
    # 5 × lines^0.7: 10 lines 25 min, 50 lines 77, 100 lines 126, 200 lines 204
    assert [round(CODE_TERM.minutes(_features(python=n))) for n in (10, 50, 100, 200)] == [25, 77, 126, 204]
    assert CODE_TERM.minutes(_features()) == 0
    # a conversation without code is estimated as before: 2 + 100/200 + 0 = 2.5 → 3
    assert manual_minutes(_features(), "writing") == (2, 3, 6)


def test_the_bench_reports_train_held_out_and_baseline(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.jsonl", TASKS * 2)
    completed = subprocess.run(
        [
            sys.executable,
            "bench/bench_estimator.py",
            "--tasks",
            str(path),
            "--folds",
            "3",
            "--resamples",
            "200",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    for label in (
        "heuristic-1 (baseline, all tasks)",
        "heuristic-2 product",
        "tuned: train folds",
        "tuned: held-out folds",
    ):
        assert label in out
    assert out.count("train / ") == 3
    assert "held-out ÷ baseline: ρ " in out


def test_when_no_task_is_estimated_the_command_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAIServer
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("ANALYTICS_LLM_RPM", "100000")
    fake_openai.default = "refusal"
    path = _write(tmp_path / "tasks.jsonl", TASKS[:2])

    code, out, err = _invoke("evaluate", "--tasks", str(path))

    assert code == 1
    assert "0 of 2 tasks estimated, 2 failed" in out
    assert "no task could be estimated (2 failed)" in err


def test_an_llm_without_a_server_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_ESTIMATOR", "llm")
    path = _write(tmp_path / "tasks.jsonl", TASKS[:1])
    code, out, err = _invoke("evaluate", "--tasks", str(path))
    assert (code, out) == (1, "")
    assert err.strip().splitlines() == ["Error: the LLM estimator needs OPENAI_API_KEY or OPENAI_BASE_URL"]
