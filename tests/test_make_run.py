"""`make run` in miniature: `main.py serve` from an empty state folder serves the dashboard, then stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from infra.embedded_pg import EmbeddedPostgres
from infra.local_stack import free_port
from shared.config import REPO_ROOT

pytestmark = pytest.mark.slow


def test_serve_builds_everything_serves_the_dashboard_and_stops(tmp_path: Path) -> None:
    port = free_port()
    environment = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ANALYTICS_", "COGNIFORCE_", "OPENWEBUI_"))
        },
        "ANALYTICS_LOCAL_STATE_DIR": str(tmp_path / "state"),
        "PYTHONUNBUFFERED": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "main.py", "serve", "--days", "3", "--port", str(port)],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def read_until(marker: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        assert server.stdout is not None
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:  # the server's output ended: it exited
                break
            lines.append(line.rstrip())
            if marker in line:
                break
        return "\n".join(lines)

    try:
        started = time.monotonic()
        output = read_until("press Ctrl-C to stop", 240)
        assert "press Ctrl-C to stop" in output, output
        # the dashboard is served before the days are processed (they are processed behind it)
        assert output.count(" completed: ") == 0, output
        assert time.monotonic() - started < 120  # 20 s on an idle machine's warm venv; shared CI is slower
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).raise_for_status()
        output = read_until("processed 3 days", 240)
        assert "processed 3 days: the dashboard shows them all" in output, output
        assert output.count(" completed: ") == 3, output
        assert f"dashboard:  http://127.0.0.1:{port}/" in output
        assert "password:   local-dev-password" in output
        assert re.search(
            r"schedule:   30 0 \* \* \* in Europe/Budapest, next run \d{4}-\d\d-\d\d 00:30 ", output
        )
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json() == {"status": "ok"}

        login = requests.get(f"http://127.0.0.1:{port}/login", timeout=10)
        assert login.status_code == 200 and "password" in login.text.lower()
        summary = requests.get(
            f"http://127.0.0.1:{port}/api/v1/analytics/summary",
            params={"days": 3},
            headers={"Authorization": "Bearer local-dev-password"},
            timeout=10,
        )
        assert summary.status_code == 200
        assert summary.json()["conversation_count"] > 0
        assert summary.json()["estimator"] == "heuristic"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == 0  # a stop is not a failure (make reported "Error 143")
    # everything it started is gone: the function servers and the embedded PostgreSQL
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/login", timeout=5)
    assert not EmbeddedPostgres(tmp_path / "state" / "pgdata").is_running()
    assert (tmp_path / "state" / "demo-webui.db").exists()
