"""The API's handlers: a validated query in, a response model (or a streamed response) out.

Authentication, parameter parsing, serialisation and error mapping are done once,
by the route wrapper in `app.py`; these functions only answer the question.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import flask
from sqlalchemy.engine import Connection

from functions.api import disclosure, queries
from functions.api.csv_export import stream_csv
from functions.api.health import health_report
from functions.api.schemas import (
    BreakdownQuery,
    BreakdownResponse,
    DateRange,
    DimensionFilter,
    ExportQuery,
    GroupBreakdownResponse,
    GroupInfo,
    HealthResponse,
    InvalidParameter,
    NoQuery,
    PeriodComparison,
    RangeQuery,
    SummaryQuery,
    SummaryResponse,
    TrendQuery,
    TrendResponse,
    TriggeredRun,
    TriggerQuery,
    TriggerResponse,
    UserBreakdownQuery,
    UserBreakdownResponse,
)
from functions.api.services import ApiServices
from functions.dimensions import Dimension

__all__ = [
    "checked_group",
    "daily_trend",
    "dimension_breakdown",
    "export_csv",
    "group_breakdown",
    "health",
    "previous_range",
    "span",
    "summary",
    "trigger_processing",
    "user_breakdown",
]


def checked_group(connection: Connection, services: ApiServices, group_id: str | None) -> GroupInfo | None:
    """The group a `group` filter names; 422 when it is unknown or too small to show."""
    if group_id is None:
        return None
    group = queries.load_group(connection, group_id)
    if group is None:
        raise InvalidParameter("group", f"no group with id {group_id!r}")
    minimum = services.settings.min_group_size
    if group.member_count < minimum:
        raise InvalidParameter(
            "group",
            f"groups with fewer than {minimum} members are hidden so no individual can be singled out",
        )
    return group


def previous_range(date_range: DateRange) -> DateRange:
    """The range of equal length that ends the day before `date_range` starts."""
    end = date_range.start_date - timedelta(days=1)
    return DateRange(start_date=end - timedelta(days=date_range.days - 1), end_date=end, days=date_range.days)


def _change_pct(current: int, previous: int) -> float | None:
    return round((current - previous) * 100 / previous, 1) if previous else None


def _applied_filter(scope: queries.Scope) -> DimensionFilter | None:
    if scope.dimension is None or scope.value is None:
        return None
    return DimensionFilter(dimension=scope.dimension.name, value=scope.value)


def _scope(query: SummaryQuery) -> queries.Scope:
    """The scope a summary or trend query names (after `check_scope`)."""
    chosen = query.dimension_filter()
    dimension, value = chosen if chosen is not None else (None, None)
    return queries.Scope(
        user_id_hash=query.user_id_hash, group_id=query.group, dimension=dimension, value=value
    )


def span(first: DateRange, last: DateRange) -> DateRange:
    """The dates from the start of `first` to the end of `last`."""
    days = (last.end_date - first.start_date).days + 1
    return DateRange(start_date=first.start_date, end_date=last.end_date, days=days)


def summary(services: ApiServices, query: SummaryQuery) -> SummaryResponse:
    query.check_scope()
    control = disclosure.control_for(services.settings.min_group_size)
    if control is not None:
        control.check_summary(query)
    date_range = query.date_range(services.today())
    earlier = previous_range(date_range)
    info = None
    with services.engine.connect() as connection:
        group = checked_group(connection, services, query.group)
        scope = _scope(query)
        trend: list[Any]
        if control is None:
            trend = list(queries.daily_trend(connection, scope, date_range))
            current = queries.figures(connection, scope, date_range).model_dump()
            before = queries.figures(connection, scope, earlier)
        else:
            release = control.release(connection, span(earlier, date_range), query.group)
            trend = control.trend(connection, release, date_range, query.group)
            current = control.figures(connection, release, date_range, query.group).model_dump()
            before = control.figures(connection, release, earlier, query.group)
            info = control.info(release, date_range, query.group)
    return SummaryResponse(
        **current,
        range=date_range,
        timezone=services.settings.timezone,
        group=group,
        user_id_hash=query.user_id_hash,
        filter=_applied_filter(scope),
        total_conversations=current["conversation_count"],
        confidence_level=current["avg_confidence_level"],
        previous_period=PeriodComparison(
            range=earlier,
            figures=before,
            time_saved_change_pct=_change_pct(current["total_time_saved"], before.total_time_saved),
            conversation_change_pct=_change_pct(current["conversation_count"], before.conversation_count),
        ),
        daily_trend=trend,
        disclosure=info,
    )


def daily_trend(services: ApiServices, query: TrendQuery) -> TrendResponse:
    query.check_scope()
    control = disclosure.control_for(services.settings.min_group_size)
    if control is not None:
        control.check_summary(query)
    date_range = query.date_range(services.today())
    scope = _scope(query)
    info = None
    with services.engine.connect() as connection:
        group = checked_group(connection, services, query.group)
        points: list[Any]
        if control is None:
            points = list(queries.daily_trend(connection, scope, date_range))
        else:
            release = control.release(connection, date_range, query.group)
            points = control.trend(connection, release, date_range, query.group)
            info = control.info(release, date_range, query.group)
    return TrendResponse(
        range=date_range,
        timezone=services.settings.timezone,
        group=group,
        user_id_hash=query.user_id_hash,
        filter=_applied_filter(scope),
        rows=points,
        disclosure=info,
    )


def user_breakdown(services: ApiServices, query: UserBreakdownQuery) -> UserBreakdownResponse:
    date_range = query.date_range(services.today())
    with services.engine.connect() as connection:
        group = checked_group(connection, services, query.group)
        rows = queries.user_breakdown(connection, date_range, limit=query.limit, group_id=query.group)
    return UserBreakdownResponse(
        range=date_range, timezone=services.settings.timezone, group=group, limit=query.limit, rows=rows
    )


def dimension_breakdown(dimension: Dimension) -> Callable[[ApiServices, BreakdownQuery], BreakdownResponse]:
    """The handler of `dimension`'s breakdown route."""

    def handler(services: ApiServices, query: BreakdownQuery) -> BreakdownResponse:
        control = disclosure.control_for(services.settings.min_group_size)
        if control is not None:
            control.check_breakdown(query.group)
        date_range = query.date_range(services.today())
        info = None
        with services.engine.connect() as connection:
            group = checked_group(connection, services, query.group)
            if control is None:
                rows = queries.dimension_breakdown(connection, dimension, date_range, group_id=query.group)
            else:
                rows, info = control.dimension_breakdown(connection, dimension, date_range)
        return BreakdownResponse(
            range=date_range,
            timezone=services.settings.timezone,
            group=group,
            dimension=dimension.name,
            rows=rows,
            disclosure=info,
        )

    handler.__name__ = f"{dimension.name}_breakdown"
    return handler


def group_breakdown(services: ApiServices, query: RangeQuery) -> GroupBreakdownResponse:
    date_range = query.date_range(services.today())
    minimum = services.settings.min_group_size
    control = disclosure.control_for(minimum)
    info = None
    with services.engine.connect() as connection:
        if control is None:
            rows, hidden = queries.group_breakdown(connection, date_range, min_group_size=minimum)
        else:  # the viewer's rows come from the released cells; only the hidden count is shared
            rows, info = control.group_breakdown(connection, date_range)
            hidden = queries.hidden_group_count(connection, minimum)
    return GroupBreakdownResponse(
        range=date_range,
        timezone=services.settings.timezone,
        group=None,
        min_group_size=minimum,
        hidden_group_count=hidden,
        rows=rows,
        disclosure=info,
    )


def export_csv(services: ApiServices, query: ExportQuery) -> flask.Response:
    date_range = query.date_range(services.today())
    with services.engine.connect() as connection:
        checked_group(connection, services, query.group)
    name = f"time-savings-{date_range.start_date.isoformat()}-to-{date_range.end_date.isoformat()}.csv"
    chunks = stream_csv(
        services.engine,
        date_range.start_date,
        date_range.end_date,
        services.settings.zone,
        group_id=query.group,
        dimension_filter=query.dimension_filter(),
    )
    return flask.Response(
        chunks,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def health(services: ApiServices, query: NoQuery) -> HealthResponse:
    return health_report(
        services.engine, services.settings, services.now(), services.scheduler_client_factory
    )


def _triggered(result: Any) -> TriggeredRun:
    return TriggeredRun(
        run_id=result.run_id,
        run_date=result.run_date,
        status=result.status,
        expected=result.expected,
        deferred=result.deferred,
        joined_existing=result.joined_existing,
        late_arrivals=result.late_arrivals,
    )


def trigger_processing(services: ApiServices, query: TriggerQuery) -> TriggerResponse:
    dates = query.target_dates(services.today())
    settings = services.settings
    if dates is None:
        results = [
            services.dispatch(target_date=query.date, trigger="manual", force=query.force, settings=settings)
        ]
    else:
        results = list(
            services.backfill(dates[0], dates[1], force=query.force, trigger="backfill", settings=settings)
        )
    runs = [_triggered(result) for result in results]
    if not runs:
        raise InvalidParameter("start_date", "the range contains no date to process")
    planned = any(run.expected > 0 for run in runs)  # a joined open run has planned work too
    return TriggerResponse(
        status="processing_started" if planned else "nothing_to_do",
        job_id=runs[0].run_id,
        run_ids=[run.run_id for run in runs],
        runs=runs,
    )
