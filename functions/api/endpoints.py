"""The API's handlers: a validated query in, a response model (or a streamed response) out.

Authentication, parameter parsing, serialisation and error mapping are done once,
by the route wrapper in `app.py`; these functions only answer the question.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask

from functions.api.services import ApiServices
from functions.dimensions import Dimension
from functions.read import queries
from functions.read.health import health_report
from functions.read.schemas import (
    BreakdownQuery,
    BreakdownResponse,
    DimensionFilter,
    ExportQuery,
    GroupBreakdownResponse,
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
from functions.read.side import ReadSide

__all__ = [
    "daily_trend",
    "dimension_breakdown",
    "export_csv",
    "group_breakdown",
    "health",
    "summary",
    "trigger_processing",
    "user_breakdown",
]


def _change_pct(current: int | None, previous: int | None) -> float | None:
    if current is None or not previous:  # nothing published, or nothing to compare with
        return None
    return round((current - previous) * 100 / previous, 1)


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


def summary(services: ApiServices, read: ReadSide, query: SummaryQuery) -> SummaryResponse:
    query.check_scope()
    scope = _scope(query)
    date_range = query.date_range(services.today())
    with read.engine.connect() as connection:
        group = read.group(connection, query.group)
        answer = read.summary(connection, scope, date_range)
    current = answer.current.model_dump()
    before = answer.previous
    return SummaryResponse(
        **current,
        range=answer.range,
        timezone=services.settings.timezone,
        group=group,
        user_id_hash=query.user_id_hash,
        filter=_applied_filter(scope),
        total_conversations=current["conversation_count"],
        confidence_level=current["avg_confidence_level"],
        previous_period=PeriodComparison(
            range=answer.previous_range,
            figures=before,
            time_saved_change_pct=_change_pct(current["total_time_saved"], before.total_time_saved),
            conversation_change_pct=_change_pct(current["conversation_count"], before.conversation_count),
        ),
        daily_trend=answer.trend,
        disclosure=answer.disclosure,
    )


def daily_trend(services: ApiServices, read: ReadSide, query: TrendQuery) -> TrendResponse:
    query.check_scope()
    scope = _scope(query)
    date_range = query.date_range(services.today())
    with read.engine.connect() as connection:
        group = read.group(connection, query.group)
        answer = read.trend(connection, scope, date_range)
    return TrendResponse(
        range=answer.range,
        timezone=services.settings.timezone,
        group=group,
        user_id_hash=query.user_id_hash,
        filter=_applied_filter(scope),
        rows=answer.rows,
        disclosure=answer.disclosure,
    )


def user_breakdown(services: ApiServices, read: ReadSide, query: UserBreakdownQuery) -> UserBreakdownResponse:
    date_range = query.date_range(services.today())
    with read.engine.connect() as connection:
        group = read.group(connection, query.group)
        rows = read.user_breakdown(connection, date_range, limit=query.limit, group_id=query.group)
    return UserBreakdownResponse(
        range=date_range, timezone=services.settings.timezone, group=group, limit=query.limit, rows=rows
    )


def dimension_breakdown(
    dimension: Dimension,
) -> Callable[[ApiServices, ReadSide, BreakdownQuery], BreakdownResponse]:
    """The handler of `dimension`'s breakdown route."""

    def handler(services: ApiServices, read: ReadSide, query: BreakdownQuery) -> BreakdownResponse:
        date_range = query.date_range(services.today())
        with read.engine.connect() as connection:
            group = read.group(connection, query.group)
            answer = read.dimension_breakdown(connection, dimension, date_range, query.group)
        return BreakdownResponse(
            range=date_range,
            timezone=services.settings.timezone,
            group=group,
            dimension=dimension.name,
            rows=answer.rows,
            disclosure=answer.disclosure,
        )

    handler.__name__ = f"{dimension.name}_breakdown"
    return handler


def group_breakdown(services: ApiServices, read: ReadSide, query: RangeQuery) -> GroupBreakdownResponse:
    date_range = query.date_range(services.today())
    with read.engine.connect() as connection:
        answer = read.group_breakdown(connection, date_range)
    return GroupBreakdownResponse(
        range=date_range,
        timezone=services.settings.timezone,
        group=None,
        min_group_size=read.settings.min_group_size,
        hidden_group_count=answer.hidden_group_count,
        rows=answer.rows,
        disclosure=answer.disclosure,
    )


def export_csv(services: ApiServices, read: ReadSide, query: ExportQuery) -> flask.Response:
    date_range = query.date_range(services.today())
    with read.engine.connect() as connection:
        read.group(connection, query.group)
    name = f"time-savings-{date_range.start_date.isoformat()}-to-{date_range.end_date.isoformat()}.csv"
    chunks = read.csv(
        date_range,
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
