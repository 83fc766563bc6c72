"""Faults, duplicates, a killed analyzer and a restarted database: nothing lost, nothing double-counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.embedded_pg import EmbeddedPostgres
from tests.chaos import run_chaos

pytestmark = pytest.mark.slow


def test_chaos_run_balances_exactly(
    tmp_path: Path, analytics_url: str, postgres_server: EmbeddedPostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_chaos(postgres=postgres_server, analytics_url=analytics_url, workdir=tmp_path, count=120)
    with capsys.disabled():
        print("\n" + "\n".join(report.lines()))
    assert report.analysed + report.skipped + report.failed == report.conversations
    assert report.skipped == 2  # the two unmeasurable chats
    assert set(report.failure_reasons) <= {"invalid_output", "transient_error"}
    assert report.duplicates_absorbed >= report.conversations  # every task came twice
    assert report.llm_calls >= report.llm_calls_minimum
