"""`serve`'s own nightly schedule: it fires the real dispatcher when the cron says, and the page's
"Next run" is the same time. A clock that jumps stands in for waiting until half past midnight."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import functions_framework
import pytest
from sqlalchemy.engine import Engine

from functions.dispatcher import yesterday
from functions.read.health import next_run
from infra.local_schedule import MAX_SLEEP_SECONDS, LocalSchedule, scheduled_dispatch
from infra.openwebui_fixture import ChatBuilder, OpenWebUIFixture
from shared.config import REPO_ROOT, get_settings, reset_settings_cache
from shared.db import reset_engines
from shared.errors import ConfigurationError
from tests.loopback import serve_wsgi
from tests.pipeline_support import rows

BUDAPEST = ZoneInfo("Europe/Budapest")


class JumpingClock:
    """`now()` and a `wait(seconds)` that moves time forward instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.current = start
        self.waits: list[float] = []
        self.stopped = threading.Event()

    def now(self) -> datetime:
        return self.current

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.current += timedelta(seconds=seconds)
        return self.stopped.is_set()


def test_fires_at_the_scheduled_time_and_next_run_equals_the_schedule() -> None:
    clock = JumpingClock(datetime(2026, 12, 2, 0, 27, 30, tzinfo=BUDAPEST))
    fired: list[datetime] = []

    def fire(at: datetime) -> None:
        fired.append(at)
        if len(fired) == 2:
            clock.stopped.set()

    schedule = LocalSchedule("30 0 * * *", BUDAPEST, fire, now=clock.now, wait=clock.wait)
    assert schedule.next_run() == datetime(2026, 12, 2, 0, 30, tzinfo=BUDAPEST)
    settings = get_settings()  # the defaults: the same schedule and zone Terraform gives Cloud Scheduler
    assert (settings.schedule, settings.timezone) == ("30 0 * * *", "Europe/Budapest")
    assert next_run(settings, clock.now()).scheduled_at == schedule.next_run()

    schedule.run()
    assert fired == [
        datetime(2026, 12, 2, 0, 30, tzinfo=BUDAPEST),
        datetime(2026, 12, 3, 0, 30, tzinfo=BUDAPEST),
    ]
    assert max(clock.waits) <= MAX_SLEEP_SECONDS  # it wakes up often enough to notice a clock change
    assert clock.current >= fired[-1]
    assert next_run(settings, clock.now()).scheduled_at == schedule.next_run()


def test_a_failed_firing_is_logged_and_the_schedule_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    clock = JumpingClock(datetime(2026, 3, 28, 23, 0, tzinfo=BUDAPEST))  # over the switch to summer time
    attempts: list[datetime] = []

    def fire(at: datetime) -> None:
        attempts.append(at)
        if len(attempts) == 1:
            raise ConnectionError("the dispatcher is down")
        clock.stopped.set()

    LocalSchedule("30 0 * * *", BUDAPEST, fire, now=clock.now, wait=clock.wait).run()
    assert attempts == [
        datetime(2026, 3, 29, 0, 30, tzinfo=BUDAPEST),
        datetime(2026, 3, 30, 0, 30, tzinfo=BUDAPEST),
    ]
    assert "could not be dispatched" in caplog.text


def test_an_invalid_schedule_fails_at_start() -> None:
    with pytest.raises(ConfigurationError, match="ANALYTICS_SCHEDULE '60 0 \\* \\* \\*'"):
        LocalSchedule("60 0 * * *", BUDAPEST, lambda at: None)


@pytest.fixture
def dispatch_url(
    tmp_path: Path, analytics_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, list[str]]]:
    """The real dispatch function (functions-framework) on loopback, its tasks run in process."""
    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    person = fixture.add_user(name="Someone")
    day = datetime.now(BUDAPEST).date() - timedelta(days=1)
    chats = []
    for hour in (9, 14):
        chat = ChatBuilder(datetime(day.year, day.month, day.day, hour, tzinfo=BUDAPEST))
        chat.turn("Draft an e-mail to the team about Friday", "Dear team, ...", think=0)
        chat.turn("Make it shorter", "Team: Friday is off.", think=60)
        chats.append(fixture.add_chat(person, chat))
    fixture.dispose()
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", f"sqlite:///{tmp_path / 'webui.db'}")
    monkeypatch.setenv("ANALYTICS_QUEUE_BACKEND", "inline")
    reset_settings_cache()
    reset_engines()
    app = functions_framework.create_app(target="dispatch", source=str(REPO_ROOT / "main.py"))
    with serve_wsgi(app) as url:
        yield url + "/", chats


def test_a_firing_starts_the_nightly_run_through_the_dispatch_function(
    dispatch_url: tuple[str, list[str]], analytics_engine: Engine
) -> None:
    url, chats = dispatch_url
    settings = get_settings()
    today = datetime.now(BUDAPEST).date()
    clock = JumpingClock(datetime(today.year, today.month, today.day, 0, 29, 50, tzinfo=BUDAPEST))
    fire = scheduled_dispatch(settings, url)

    def fire_twice(at: datetime) -> None:  # Cloud Scheduler delivers at least once: so does this test
        fire(at)
        fire(at)
        clock.stopped.set()

    schedule = LocalSchedule(settings.schedule, settings.zone, fire_twice, now=clock.now, wait=clock.wait)
    schedule.run()
    assert schedule.fired == [datetime(today.year, today.month, today.day, 0, 30, tzinfo=BUDAPEST)]

    runs = rows(
        analytics_engine,
        "SELECT run_date, trigger, status, conversations_expected, conversations_processed FROM processing_log",
    )
    assert runs == [
        {
            "run_date": yesterday(settings),
            "trigger": "scheduler",
            "status": "completed",
            "conversations_expected": len(chats),
            "conversations_processed": len(chats),
        }
    ]
