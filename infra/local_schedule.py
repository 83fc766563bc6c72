"""The nightly schedule without Cloud Scheduler: `serve` fires the dispatcher itself.

The schedule is the one Terraform gives Cloud Scheduler (`ANALYTICS_SCHEDULE` in
`TZ`), and the times come from the same function the dashboard's "Next run" uses
(`functions.read.health.computed_next_run`, built on cronsim), so the page tells
the truth locally too. Each firing is delivered the way Cloud Scheduler delivers
it: a POST of `{}` to the dispatch function (the dispatcher picks yesterday) with
the `X-CloudScheduler-ScheduleTime` header, so the run is recorded as a
`scheduler` run and a repeated delivery of one firing joins the same run.

A firing that fails (the dispatcher down, a database error) is logged and the
loop goes on to the next time; it never stops `serve`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import requests
from cronsim import CronSimError

from functions.read.health import computed_next_run
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.queue import TASK_SECRET_HEADER

__all__ = ["MAX_SLEEP_SECONDS", "LocalSchedule", "scheduled_dispatch"]

_log = logging.getLogger(__name__)

MAX_SLEEP_SECONDS = 60.0  # wake up at least this often (a suspended laptop, a clock change)
SCHEDULE_TIME_HEADER = "X-CloudScheduler-ScheduleTime"


def scheduled_dispatch(settings: Settings, dispatch_url: str) -> Callable[[datetime], None]:
    """A firing: POST `{}` to the dispatch function as Cloud Scheduler does for `scheduled_at`."""

    def fire(scheduled_at: datetime) -> None:
        response = requests.post(
            dispatch_url,
            json={},
            headers={
                TASK_SECRET_HEADER: settings.task_secret.get_secret_value(),
                SCHEDULE_TIME_HEADER: scheduled_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            },
            timeout=settings.task_deadline_seconds,
        )
        if response.status_code != 200:
            raise RuntimeError(f"the dispatcher answered {response.status_code}: {response.text[:300]}")

    return fire


class LocalSchedule:
    """Call `fire(scheduled_at)` at every time the cron `schedule` gives in `zone`.

    `now` and `wait` are the clock: `wait(seconds)` sleeps and returns True when the
    schedule was stopped meanwhile (default: the stop event's own wait). Tests pass
    a clock that jumps.
    """

    def __init__(
        self,
        schedule: str,
        zone: ZoneInfo,
        fire: Callable[[datetime], None],
        *,
        now: Callable[[], datetime] | None = None,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.schedule = schedule
        self.zone = zone
        self._fire = fire
        self._stopped = threading.Event()
        self._now = now or (lambda: datetime.now(zone))
        self._wait = wait or self._stopped.wait
        self._thread: threading.Thread | None = None
        self.fired: list[datetime] = []
        try:  # an invalid schedule fails here, at start, not at midnight
            computed_next_run(schedule, self._now().astimezone(zone))
        except (CronSimError, StopIteration) as exc:
            raise ConfigurationError(
                f"ANALYTICS_SCHEDULE {schedule!r} is not a valid schedule: {exc}"
            ) from exc

    @classmethod
    def for_settings(cls, settings: Settings, dispatch_url: str) -> LocalSchedule:
        return cls(settings.schedule, settings.zone, scheduled_dispatch(settings, dispatch_url))

    def next_run(self) -> datetime:
        """The next time the schedule fires, in its zone."""
        return computed_next_run(self.schedule, self._now().astimezone(self.zone))

    def run(self) -> None:
        """Fire at each scheduled time until `stop()`."""
        due = self.next_run()
        while not self._stopped.is_set():
            remaining = (due - self._now()).total_seconds()
            if remaining > 0:
                if self._wait(min(remaining, MAX_SLEEP_SECONDS)):
                    return
                continue
            try:
                self._fire(due)
                self.fired.append(due)
                _log.info("scheduled run of %s dispatched", due.isoformat())
            except Exception:
                _log.exception("the scheduled run of %s could not be dispatched", due.isoformat())
            due = computed_next_run(self.schedule, max(due, self._now()).astimezone(self.zone))

    def start(self) -> LocalSchedule:
        self._thread = threading.Thread(target=self.run, name="local-schedule", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
