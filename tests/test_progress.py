"""Progress while runs are open, read from the run ledger: on a terminal one updating line with
an ETA, elsewhere plain lines at most every N seconds, and one line per run as it finishes.

Real runs on the embedded Postgres: the dispatcher opens them, a queue at the network edge
delivers their tasks to the real analyzer and aggregator one by one in the background while
the watcher polls the ledger."""

from __future__ import annotations

import io
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from functions import aggregator, analyzer, dispatcher
from functions.pipeline import run_id_of
from functions.runs import Run
from infra.cli import cli
from infra.progress import RunProgress, watch_runs
from shared.config import get_settings, reset_settings_cache
from shared.db import reset_engines
from shared.queue import EnqueueReport
from tests.pipeline_support import Dataset, assert_books_balance, build_dataset

DAYS = [date(2026, 11, 3), date(2026, 11, 4), date(2026, 11, 5)]
ERASE = "\r\x1b[K"


class _Terminal(io.StringIO):
    """What a terminal receives (`isatty()` is true, as for a real one)."""

    def isatty(self) -> bool:
        return True


class _LaterQueue:
    """Holds tasks and delivers them to the real analyzer and aggregator one by one, later."""

    def __init__(self, pause_seconds: float) -> None:
        self._pause = pause_seconds
        self._tasks: list[tuple[str, dict[str, Any]]] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._deliver, daemon=True)

    def enqueue(self, target: str, payload: dict[str, Any], *, name: str) -> bool:
        with self._lock:
            if name in self._seen:
                return False
            self._seen.add(name)
            self._tasks.append((target, payload))
        return True

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, Any]]]) -> EnqueueReport:
        report = EnqueueReport()
        for name, payload in tasks:
            report.created += self.enqueue(target, payload, name=name)
        return report

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _deliver(self) -> None:
        settings = get_settings()
        while not self._stop.is_set():
            with self._lock:
                task = self._tasks.pop(0) if self._tasks else None
            if task is None:
                time.sleep(0.01)
                continue
            target, payload = task
            if target == "analyze":
                analyzer.analyze(payload, settings=settings, queue=self)
            else:
                aggregator.aggregate_run(run_id_of(payload))
            time.sleep(self._pause)


@pytest.fixture
def dataset(tmp_path: Path, analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    data = build_dataset(tmp_path / "webui.db", days=DAYS, chats_per_day=5)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", data.url)
    monkeypatch.setenv("ANALYTICS_QUEUE_BACKEND", "inline")
    reset_settings_cache()
    reset_engines()
    return data


def _describe(run: Run) -> str:
    return f"{run.run_date} run {run.id} {run.status}: {run.conversations_processed} analysed"


def _watch(engine: Engine, status: TextIO, *, interval: float = 30.0) -> tuple[list[uuid.UUID], str]:
    """Open a run per day, deliver their tasks slowly in the background, watch until all are final."""
    queue = _LaterQueue(pause_seconds=0.04)
    settings = get_settings()
    run_ids = [
        dispatcher.dispatch(target_date=day, trigger="backfill", settings=settings, queue=queue).run_id
        for day in DAYS
    ]
    out = io.StringIO()
    progress = RunProgress(len(run_ids), _describe, out=out, status=status, interval_seconds=interval)
    queue.start()
    try:
        found = watch_runs(engine, run_ids, progress, timeout=120, poll_seconds=0.02)
    finally:
        queue.stop()
    assert all(run.status == "completed" for run in found)
    assert_books_balance(engine)
    return run_ids, out.getvalue()


def _counts(line: str) -> tuple[int, int, int]:
    found = re.search(r"(\d+)/3 runs finished; conversations (\d+) analysed, (\d+) skipped", line)
    assert found, line
    return int(found[1]), int(found[2]), int(found[3])


def _each_run_once(out: str, run_ids: list[uuid.UUID]) -> None:
    lines = out.splitlines()
    assert len(lines) == 3
    assert sorted(str(run_id) for run_id in run_ids) == sorted(line.split()[2] for line in lines)
    assert all("completed: 5 analysed" in line for line in lines)


def _terminal_output(engine: Engine, kind: str) -> tuple[list[uuid.UUID], str, str]:
    """Watch with the status going to an injected terminal stream or to a real pseudo-terminal."""
    if kind == "injected":
        terminal = _Terminal()
        run_ids, out = _watch(engine, terminal)
        return run_ids, out, terminal.getvalue()
    master, slave = os.openpty()
    received = bytearray()

    def read() -> None:  # drain the pty so its small buffer never blocks the writer
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    with os.fdopen(slave, "w", encoding="utf-8") as status:
        assert status.isatty()
        run_ids, out = _watch(engine, status)
    reader.join(timeout=10)
    os.close(master)
    return run_ids, out, received.decode()


@pytest.mark.parametrize("kind", ["injected", "pty"])
def test_on_a_terminal_one_line_updates_in_place_with_an_eta(
    dataset: Dataset, analytics_engine: Engine, kind: str
) -> None:
    run_ids, out, text = _terminal_output(analytics_engine, kind)
    _each_run_once(out, run_ids)
    assert "\n" not in text  # never a new line: the one line is rewritten
    frames = [frame for frame in text.split(ERASE) if frame]
    assert len(frames) >= 5  # it moved while the runs were open
    counts = [_counts(frame) for frame in frames]
    assert counts == sorted(counts)  # runs finished, analysed, skipped only grow
    assert counts[0][0] == 0 and counts[-1][0] >= 2
    assert any(0 < analysed < 15 for _, analysed, _ in counts)  # seen mid-run, not only at the end
    assert any(re.search(r"; ETA (\d+s|\d+m\d\ds)$", frame) for frame in frames)
    assert all(re.search(r"; ETA (--|\d+s|\d+m\d\ds|\d+h\d\dm)$", frame) for frame in frames)
    assert text.endswith(ERASE)  # the terminal is left on a clean line


def test_not_on_a_terminal_plain_lines_at_most_every_n_seconds(
    dataset: Dataset, analytics_engine: Engine
) -> None:
    log = io.StringIO()
    run_ids, out = _watch(analytics_engine, log, interval=3600)
    _each_run_once(out, run_ids)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and "ETA" not in log.getvalue()
    assert len(lines) == 2  # the first one, then the hour never passed: only the final one
    assert _counts(lines[0])[0] == 0 and lines[-1].startswith("progress: 3/3 runs finished")
    assert "15 analysed, 3 skipped, 0 failed of 18 planned" in lines[-1]


def test_not_on_a_terminal_with_a_short_interval_each_change_is_a_line(
    dataset: Dataset, analytics_engine: Engine
) -> None:
    log = io.StringIO()
    _watch(analytics_engine, log, interval=0)
    lines = log.getvalue().splitlines()
    assert len(lines) > 3 and len(set(lines)) == len(lines)  # a line per change, none repeated
    assert [_counts(line) for line in lines] == sorted(_counts(line) for line in lines)


def test_the_cli_prints_each_run_as_it_finishes_and_a_final_progress_line(
    dataset: Dataset, analytics_engine: Engine
) -> None:
    result = CliRunner().invoke(
        cli,
        ["backfill", "--inline", "--start-date", "2026-11-03", "--end-date", "2026-11-05"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    run_lines = [line for line in result.stdout.splitlines() if " run " in line]
    assert len(run_lines) == 3 and all("completed: 6 planned, 5 analysed" in line for line in run_lines)
    assert [line[:10] for line in run_lines] == [day.isoformat() for day in DAYS]
    progress_lines = [line for line in result.stderr.splitlines() if line.startswith("progress:")]
    assert progress_lines and progress_lines[-1].startswith("progress: 3/3 runs finished")
    assert "15 analysed, 3 skipped, 0 failed of 18 planned" in progress_lines[-1]

    again = CliRunner().invoke(cli, ["run", "--inline", "--date", "2026-11-05"], catch_exceptions=False)
    assert again.exit_code == 0
    assert again.stdout.count(" run ") == 1 and "completed: 0 planned" in again.stdout
    assert again.stderr.splitlines()[-1].startswith("progress: 1/1 runs finished")

    quiet = CliRunner().invoke(
        cli, ["run", "--inline", "--date", "2026-11-05", "--json"], catch_exceptions=False
    )
    assert "progress:" not in quiet.output  # --json prints the JSON only


def test_serve_prints_each_later_run_once_as_it_finishes(
    dataset: Dataset, analytics_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.cli import _report_finished_runs
    from infra.local_queues import inline_queue

    settings = get_settings()
    reported: set[uuid.UUID] = set()
    _report_finished_runs(settings, reported)
    assert capsys.readouterr().out == ""  # nothing has run yet
    nightly = dispatcher.dispatch(target_date=DAYS[0], settings=settings, queue=inline_queue(settings))
    _report_finished_runs(settings, reported)
    (line,) = capsys.readouterr().out.splitlines()
    assert f"run {nightly.run_id}  completed: 6 planned, 5 analysed" in line
    _report_finished_runs(settings, reported)
    assert capsys.readouterr().out == ""  # once
