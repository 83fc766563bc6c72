"""Health of the pipeline: last run, stale runs, next scheduled run, settings that matter.

The next run comes from Cloud Scheduler itself in production (`get_job` on
`ANALYTICS_SCHEDULER_JOB`: its `schedule_time`, `state` and last attempt status);
locally, and when the job cannot be read, it is computed from `ANALYTICS_SCHEDULE`
in `TZ`, the same values Terraform gives the job.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cronsim import CronSim, CronSimError
from sqlalchemy.engine import Connection, Engine

from functions import runs
from functions.read import releases
from functions.read.queries import latest_analysis_date
from functions.read.schemas import EstimatorInfo, HealthResponse, NextRun, RunInfo, SystemInfo
from shared.config import Settings
from shared.estimators import registry as estimator_registry
from shared.tables import PROCESSING_VERSION

__all__ = ["SchedulerClientFactory", "computed_next_run", "health_report", "next_run"]

_log = logging.getLogger(__name__)

SchedulerClientFactory = Callable[[], Any]
"""Returns an object with `get_job(name=...)` (a `CloudSchedulerClient` or a test fake)."""


@functools.cache
def _cloud_scheduler_client() -> Any:
    """One client per process: every dashboard view reads the job, building a gRPC channel each time would not do."""
    from google.cloud import scheduler_v1

    return scheduler_v1.CloudSchedulerClient()


def computed_next_run(schedule: str, now: datetime) -> datetime:
    """The first time after `now` (aware, in the schedule's zone) that the cron schedule fires."""
    return next(iter(CronSim(schedule, now)))


def _computed(settings: Settings, now: datetime, error: str | None = None) -> NextRun:
    try:
        scheduled_at: datetime | None = computed_next_run(settings.schedule, now.astimezone(settings.zone))
    except (CronSimError, StopIteration) as exc:
        scheduled_at, error = None, f"ANALYTICS_SCHEDULE {settings.schedule!r} is not a valid schedule: {exc}"
    return NextRun(
        scheduled_at=scheduled_at,
        schedule=settings.schedule,
        timezone=settings.timezone,
        source="computed",
        job_state=None,
        last_attempt_status=None,
        error=error,
    )


def _attempt_status(job: Any) -> str | None:
    if getattr(job, "last_attempt_time", None) is None:
        return None
    status = getattr(job, "status", None)
    code = getattr(status, "code", 0) or 0
    return "OK" if code == 0 else f"error {code}: {getattr(status, 'message', '')}".strip()


def next_run(
    settings: Settings, now: datetime, scheduler_client_factory: SchedulerClientFactory | None = None
) -> NextRun:
    """The next scheduled run: from Cloud Scheduler in production, else computed."""
    if not settings.is_production:
        return _computed(settings, now)
    if not settings.scheduler_job:
        return _computed(settings, now, "ANALYTICS_SCHEDULER_JOB is not set; computed from the settings")
    try:
        client = (scheduler_client_factory or _cloud_scheduler_client)()
        job = client.get_job(name=settings.scheduler_job)
    except Exception as exc:  # any API or credential failure: report it, don't fail health
        _log.warning("cannot read Cloud Scheduler job %s: %s", settings.scheduler_job, exc)
        return _computed(settings, now, f"cannot read the Cloud Scheduler job: {type(exc).__name__}")
    scheduled_at = getattr(job, "schedule_time", None)
    state = getattr(job, "state", None)
    return NextRun(
        scheduled_at=scheduled_at.astimezone(settings.zone) if scheduled_at else None,
        schedule=getattr(job, "schedule", "") or settings.schedule,
        timezone=getattr(job, "time_zone", "") or settings.timezone,
        source="cloud_scheduler",
        job_state=getattr(state, "name", None) or (str(state) if state is not None else None),
        last_attempt_status=_attempt_status(job),
        error=None,
    )


def _system_info(settings: Settings) -> SystemInfo:
    configured = settings.effective_estimator.value
    spec = estimator_registry.get(configured)
    return SystemInfo(
        environment=settings.environment.value,
        timezone=settings.timezone,
        idle_threshold_minutes=settings.idle_threshold_minutes,
        estimator=configured,
        estimator_model=spec.model(settings) if spec else None,
        prompt_version=spec.version(settings) if spec else None,  # what new estimates are stamped with
        processing_version=PROCESSING_VERSION,
        min_group_size=settings.min_group_size,
        stale_run_minutes=settings.stale_run_minutes,
        estimators=[
            EstimatorInfo(
                name=item.name,
                label=item.label,
                description=item.description,
                settings=[_variable(name) for name in item.settings],
                price_source=item.price_source,
                configured=item.name == configured,
            )
            for item in estimator_registry.specs()
        ],
    )


def _variable(field_name: str) -> str:
    """The environment variable of a `Settings` field (its first alias)."""
    alias = Settings.model_fields[field_name].validation_alias
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else field_name.upper()


def _info(run: runs.Run | None) -> RunInfo | None:
    return RunInfo.model_validate(run, from_attributes=True) if run is not None else None


def _status(
    last: runs.Run | None, stale: list[uuid.UUID], settings: Settings, yesterday: date, others: int
) -> tuple[str, list[str]]:
    if last is None:
        if others:
            return "unhealthy", [
                f"no nightly run and no run for {yesterday.isoformat()} yet "
                f"({others} manual or backfill run(s) for other dates)"
            ]
        return "unhealthy", ["no processing run has been recorded yet"]
    if last.id in stale:
        return "unhealthy", [
            f"the last run (for {last.run_date.isoformat()}) made no progress for "
            f"{settings.stale_run_minutes} minutes; the next dispatch closes it as stale"
        ]
    if stale:  # another run is stuck open: its dates wait for aggregation, and releases with them
        return "unhealthy", [
            f"{len(stale)} run(s) made no progress for {settings.stale_run_minutes} minutes; the next "
            "dispatch closes them as stale, and until then no release is published"
        ]
    if last.status is runs.RunStatus.COMPLETED:
        return "healthy", []
    if last.status in runs.OPEN_STATUSES:
        return "running", []
    if last.status is runs.RunStatus.STALE:
        return "unhealthy", [
            f"the last run (for {last.run_date.isoformat()}) made no progress for "
            f"{settings.stale_run_minutes} minutes and was closed as stale"
        ]
    detail = f": {last.error_message}" if last.error_message else ""
    return "unhealthy", [f"the last run (for {last.run_date.isoformat()}) failed{detail}"]


@dataclasses.dataclass(frozen=True)
class _ReleaseProblems:
    messages: list[str]
    floors: list[int]  # floors (k) of published releases below today's


def _release_problems(connection: Connection, settings: Settings, today: date) -> _ReleaseProblems:
    """What keeps a viewer from figures they are due: an auditor out of budget, a release held
    back by a date without a completed run (and the command that recovers it)."""
    messages = []
    short = releases.out_of_budget(connection)
    if short:
        messages.append(
            f"{len(short)} release(s) published with cells withheld unproven: the auditor's budget ran "
            f"out (first: {short[0]}); fewer groups (or a higher ANALYTICS_MIN_GROUP_SIZE for groups "
            "listed) keep the audit within it"
        )
    for period, missing in releases.held_back(connection, settings, today):
        dates = ", ".join(day.isoformat() for day in missing[:3]) + (" …" if len(missing) > 3 else "")
        messages.append(
            f"release {period.label} ({period.start.isoformat()} … {period.end.isoformat()}) was due on "
            f"{releases.due_date(period, settings).isoformat()} and is held back: {dates} "
            f"{'has' if len(missing) == 1 else 'have'} no completed run; run `python main.py backfill "
            f"--start-date {missing[0].isoformat()} --end-date {missing[-1].isoformat()}`"
        )
    return _ReleaseProblems(messages, releases.lower_floors(connection, settings.min_group_size))


def health_report(
    engine: Engine,
    settings: Settings,
    now: datetime,
    scheduler_client_factory: SchedulerClientFactory | None = None,
) -> HealthResponse:
    """Describe the pipeline. A read: it writes nothing (the pipeline closes stale runs itself).

    "The last run" is the latest nightly run, or the latest run covering the most recent
    completed date (yesterday in the configured zone); a manual or backfill run for an
    older date is listed under `recent_runs` and never displaces it.
    """
    yesterday = now.astimezone(settings.zone).date() - timedelta(days=1)
    with engine.connect() as connection:
        last = runs.last_run(connection, yesterday)
        last_completed = runs.last_run(connection, yesterday, status=runs.RunStatus.COMPLETED)
        stale = runs.stale_runs(connection, settings)
        recent = runs.recent_runs(connection, exclude=last.id if last is not None else None)
        latest_date = latest_analysis_date(connection)
        refused = connection.execute(
            sa.text(
                "SELECT period_kind, period_start FROM releases WHERE status = 'refused' ORDER BY period_start"
            )
        ).all()
        release_problems = _release_problems(connection, settings, yesterday + timedelta(days=1))
    status, problems = _status(last, stale, settings, yesterday, len(recent))
    if refused:  # the auditor could not pass these releases: viewers do not get them
        status = "unhealthy"
        problems = [
            *problems,
            f"{len(refused)} release(s) not published: the auditor could not prove them safe "
            f"(first: {refused[0][0]} from {refused[0][1].isoformat()})",
        ]
        if release_problems.floors:
            problems.append(
                f"releases published under a lower floor (k = {', '.join(map(str, release_problems.floors))}) "
                f"are withheld from viewers now (ANALYTICS_MIN_GROUP_SIZE={settings.min_group_size}), but "
                "viewers saw them, so later releases are audited against them and cannot pass: set "
                f"ANALYTICS_MIN_GROUP_SIZE back to {release_problems.floors[-1]} to publish again (README: "
                "raising the floor)"
            )
    if release_problems.messages:
        status = "unhealthy"
        problems = [*problems, *release_problems.messages]
    return HealthResponse(
        status=status,
        problems=problems,
        last_run=_info(last),
        last_completed_run=_info(last_completed),
        stale_runs=stale,
        stale_runs_closed=[],
        recent_runs=[info for info in map(_info, recent) if info is not None],
        latest_analysis_date=latest_date,
        next_run=next_run(settings, now, scheduler_client_factory),
        system_info=_system_info(settings),
    )
