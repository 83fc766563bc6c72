"""Every command the README shows works on a fresh clone with nothing configured (issue 21).

The commands are read from the README, as tests/test_readme.py reads it: the rows of the
"Commands" table and every `python main.py ...` code span. Their placeholders are filled
(a recent date for DATE/A/B/…, the demo's last month for YYYY-MM, files in a temporary
folder); ISO dates are moved to the last week so the test stays bounded. The clone gets
the demo built by `serve` first; then each command runs with nothing running, and again
while `serve` is running. A traceback, or an exit status the README does not promise,
fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from infra.local_stack import free_port
from infra.readme_settings import README
from shared.config import REPO_ROOT

pytestmark = pytest.mark.slow

SERVE_DAYS = 3
# exit statuses the README promises besides 0 (see its "Commands" table)
PROMISED_EXIT = {"health": {0, 1}, "recalibrate": {1}}
NOT_RUN = {"serve"}  # run around the others: built first, then running while they run


def readme_commands() -> list[str]:
    """The command lines (after `python main.py`) the README shows, placeholders as written."""
    text = README.read_text(encoding="utf-8")
    table = text.split("### Commands", 1)[1].split("| command | what it does |", 1)[1].split("\n\n", 1)[0]
    found = [match for match in re.findall(r"^\| `([^`]+)` \|", table, re.M)]
    for span in re.findall(r"`python main\.py ([^`]+)`", text):
        found.append(" ".join(span.split()))
    assert len(found) > 15, found
    return list(dict.fromkeys(found))


def filled(command: str, folder: Path, today: date) -> list[str] | None:
    """The command's arguments with its placeholders filled; None for a form that names no command."""
    if "COMMAND" in command:
        return None  # `python main.py COMMAND` / `-v COMMAND …`: the general form, not a command
    command = re.sub(r"\[[^\]]*\]", "", command)  # optional parts: the required form
    recent = (today - timedelta(days=2)).isoformat()
    month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    words = []
    for word in shlex.split(command):
        word = re.sub(r"^\d{4}-\d\d-\d\d$", recent, word)
        word = {
            "…": recent,
            "D": recent,
            "A": recent,
            "B": recent,
            "DATE": recent,
            "YYYY-MM": month,
            "2026-05": month,
            "N": "7",
            "ID": "user-1",
            "FILE.html": str(folder / "report.html"),
            "report.html": str(folder / "report.html"),
            "FILE.csv": str(folder / "labels.csv"),
            "FILE.jsonl": str(folder / "tasks.jsonl"),
        }.get(word, word)
        words.append(word)
    return words


def test_the_readme_commands_are_read_and_filled() -> None:
    commands = readme_commands()
    names = {command.split()[0] for command in commands if not command.startswith(("-", "COMMAND"))}
    assert {
        "serve",
        "run",
        "backfill",
        "report",
        "reprice",
        "evaluate",
        "recalibrate",
        "calibration",
    } <= names
    today = date(2026, 12, 8)
    assert filled("report --month YYYY-MM --out FILE.html", Path("/x"), today) == [
        "report",
        "--month",
        "2026-11",
        "--out",
        "/x/report.html",
    ]
    assert filled("run [--date D] [--force] [--inline]", Path("/x"), today) == ["run"]
    assert filled("reprice --from 2026-01-01", Path("/x"), today) == ["reprice", "--from", "2026-12-06"]
    assert filled("-v COMMAND …", Path("/x"), today) is None


def _environment(clone: Path) -> dict[str, str]:
    """Nothing configured: no analytics, Open WebUI, LLM or product variable from this shell."""
    return {
        **{
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ANALYTICS_", "COGNIFORCE_", "OPENWEBUI_", "OPENAI_", "PYTEST_"))
            and key != "WEBUI_SECRET_KEY"
        },
        "PYTHONUNBUFFERED": "1",
        "TZ": "Europe/Budapest",
    }


@contextmanager
def _serving(clone: Path, until: str) -> Iterator[tuple[subprocess.Popen[str], list[str], float]]:
    """`python main.py serve` in the clone, read until a line contains `until`; stopped after."""
    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "main.py", "serve", "--days", str(SERVE_DAYS), "--port", str(free_port())],
        cwd=clone,
        env=_environment(clone),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    url_after = float("nan")
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("dashboard:") and url_after != url_after:
                url_after = time.monotonic() - started
            if until in line:
                break
        assert any(until in line for line in lines), "\n".join(lines)
        yield server, lines, url_after
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == 0
    assert "Traceback" not in "\n".join(lines)


def _run_every_command(clone: Path, folder: Path, when: str) -> list[str]:
    today = datetime.now(ZoneInfo("Europe/Budapest")).date()
    ran = []
    for command in readme_commands():
        arguments = filled(command, folder, today)
        if arguments is None or arguments[0] in NOT_RUN:
            continue
        result = subprocess.run(
            [sys.executable, "main.py", *arguments],
            cwd=clone,
            env=_environment(clone),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        said = f"{when}: `python main.py {' '.join(arguments)}` exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stdout + result.stderr, said
        assert result.returncode in PROMISED_EXIT.get(arguments[0], {0}), said
        ran.append(arguments[0])
    return ran


def test_every_readme_command_on_a_fresh_clone_idle_and_while_serving(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True, timeout=120)
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "labels.csv").write_text("conversation_id,minutes\nno-such-chat,30\n", encoding="utf-8")
    task = {
        "id": "T-1",
        "task_text": "Rename a field in the settings form",
        "answer_text": "Done: renamed it.",
        "human_minutes_low": 15,
        "human_minutes_high": 60,
    }
    (folder / "tasks.jsonl").write_text(json.dumps(task) + "\n", encoding="utf-8")

    with _serving(clone, f"processed {SERVE_DAYS} days") as (_, _lines, url_after):
        print(f"fresh clone: dashboard URL after {url_after:.1f} s")
    ran = _run_every_command(clone, folder, "nothing running")
    assert {"report", "calibration", "evaluate", "reprice", "recalibrate", "stats", "health"} <= set(ran)
    assert (folder / "report.html").exists()

    with _serving(clone, "press Ctrl-C to stop"):
        _run_every_command(clone, folder, "while serve runs")
