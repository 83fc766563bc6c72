"""SQL over the aggregate tables: `daily_aggregates`, `daily_breakdowns`, `user_groups`.

Summaries, trends and breakdowns read only these (one row per date, per user-date or
per date-dimension), never `conversation_analysis`; averages are recomputed from
sums (`confidence_sum`), so figures over a range are exact. Only the CSV export
(`csv_export.py`) reads analyses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from functions.calibrated import CALIBRATED_COLUMNS, VERSION_RANGE_SQL, calibrated_figures
from functions.dimensions import TOTAL, Dimension
from functions.metrics import ESTIMATOR_COUNTS, SUM_COLUMNS, range_sums_sql
from functions.read.schemas import (
    DailyPoint,
    DateRange,
    DimensionRow,
    Figures,
    GroupInfo,
    GroupRow,
    UserRow,
)
from functions.value import MONEY_COLUMNS, UNVALUED_SQL, money_figures
from shared.config import EstimatorKind, Settings

__all__ = [
    "Scope",
    "daily_sums",
    "daily_trend",
    "dimension_breakdown",
    "dimension_day_sums",
    "figure_fields",
    "figures",
    "group_breakdown",
    "group_cell_sums",
    "hidden_group_count",
    "latest_analysis_date",
    "listed_groups",
    "load_group",
    "user_breakdown",
]

_SUMS_SQL = f"{range_sums_sql()}, {VERSION_RANGE_SQL}, {UNVALUED_SQL}"


@dataclass(frozen=True)
class Scope:
    """Whose figures: everyone, one pseudonymous user, or one group; optionally one dimension value.

    A dimension value (`dimension`, `value`: e.g. the tag `q4`) reads that value's
    breakdown rows, for everyone or within the group; there are no per-user
    breakdown rows, so it cannot be combined with a user.
    """

    user_id_hash: str | None = None
    group_id: str | None = None
    dimension: Dimension | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if (self.dimension is None) != (self.value is None):
            raise ValueError("give a dimension and its value together")
        if self.dimension is not None and (self.user_id_hash is not None or not self.dimension.stored):
            raise ValueError("a dimension filter reads breakdown rows: not per user, not of groups")

    def source(self) -> tuple[str, dict[str, Any]]:
        """`FROM ... WHERE ...` (without the date condition) and its parameters."""
        if self.dimension is not None:
            return (
                "FROM daily_breakdowns WHERE group_id = :group_id AND dimension = :dimension "
                "AND dimension_value = :dimension_value",
                {
                    "group_id": self.group_id or "",
                    "dimension": self.dimension.name,
                    "dimension_value": self.value,
                },
            )
        if self.group_id is not None:
            return (
                f"FROM daily_breakdowns WHERE group_id = :group_id AND dimension = '{TOTAL}'",
                {"group_id": self.group_id},
            )
        if self.user_id_hash is not None:
            return "FROM daily_aggregates WHERE user_id_hash = :user_id_hash", {
                "user_id_hash": self.user_id_hash
            }
        return "FROM daily_aggregates WHERE user_id_hash IS NULL", {}


def _average(total: int, count: int) -> float | None:
    return round(total / count, 2) if count else None


def _estimator(counts: Mapping[str, int]) -> str:
    """The one estimator behind every estimate, `mixed` when several are, `none` without any."""
    used = [name for name, count in counts.items() if count]
    if len(used) > 1:
        return "mixed"
    return used[0] if used else "none"


def figure_fields(row: RowMapping | Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """Figures fields from a row of summed columns (money and calibration as `settings` say)."""
    values = {column: int(row.get(column) or 0) for column in SUM_COLUMNS}
    count = values["conversation_count"]
    confidence_sum = values.pop("confidence_sum")
    estimators = {str(name): int(n) for name, n in sorted((row.get(ESTIMATOR_COUNTS) or {}).items()) if n}
    money = money_figures(
        values,
        settings,
        unvalued_rows=int(row.get("unvalued_rows") or 0),
        valued_currency=row.get("valued_currency", settings.currency),
    )
    calibrated = calibrated_figures(values, row.get("calibration_versions"), settings)
    for column in (*MONEY_COLUMNS, *CALIBRATED_COLUMNS):
        values.pop(column, None)  # shown as money and calibrated fields, not as raw sums
    return {
        **values,
        **money,
        **calibrated,
        "avg_time_saved_per_conversation": _average(values["total_time_saved"], count),
        "avg_time_saved_per_conversation_low": _average(values["total_time_saved_low"], count),
        "avg_time_saved_per_conversation_high": _average(values["total_time_saved_high"], count),
        "avg_confidence_level": _average(confidence_sum, count),
        "llm_estimated_count": estimators.get(EstimatorKind.LLM.value, 0),
        "heuristic_estimated_count": estimators.get(EstimatorKind.HEURISTIC.value, 0),
        "estimator": _estimator(estimators),
        "estimators": estimators,
    }


_DATES = "analysis_date BETWEEN :start_date AND :end_date"


def figures(connection: Connection, scope: Scope, date_range: DateRange, settings: Settings) -> Figures:
    """Totals of `scope` over `date_range`."""
    source, params = scope.source()
    row = (
        connection.execute(
            sa.text(f"SELECT {_SUMS_SQL} {source} AND {_DATES}"), {**params, **date_range.sql_params()}
        )
        .mappings()
        .one()
    )
    return Figures(**figure_fields(dict(row), settings))


def daily_sums(connection: Connection, scope: Scope, date_range: DateRange) -> dict[date, dict[str, Any]]:
    """The summed columns of `scope` per date of the range that has rows (as dicts: `figure_fields`
    reads each column of each row, and a dict's lookups cost half a `RowMapping`'s)."""
    source, params = scope.source()
    rows = connection.execute(
        sa.text(f"SELECT analysis_date, {_SUMS_SQL} {source} AND {_DATES} GROUP BY analysis_date"),
        {**params, **date_range.sql_params()},
    ).mappings()
    return {row["analysis_date"]: dict(row) for row in rows}


def dimension_day_sums(
    connection: Connection, dimension: Dimension, date_range: DateRange
) -> dict[tuple[date, str], RowMapping]:
    """Everyone's summed columns per (date, value) of a stored dimension, with its `user_count`."""
    rows = connection.execute(
        sa.text(
            f"SELECT analysis_date, dimension_value, SUM(user_count)::int AS user_count, {_SUMS_SQL} "
            f"FROM daily_breakdowns WHERE dimension = :dimension AND group_id = '' AND {_DATES} "
            "GROUP BY analysis_date, dimension_value"
        ),
        {**date_range.sql_params(), "dimension": dimension.name},
    ).mappings()
    return {(row["analysis_date"], row["dimension_value"]): row for row in rows}


def group_cell_sums(
    connection: Connection, date_range: DateRange, cells: Mapping[date, Iterable[str]]
) -> dict[str, RowMapping]:
    """Each group's summed columns over the given (date, group ids) cells of the range."""
    chosen = json.dumps({day.isoformat(): sorted(groups) for day, groups in cells.items()})
    rows = connection.execute(
        sa.text(
            f"SELECT group_id, {_SUMS_SQL} FROM daily_breakdowns "
            f"WHERE dimension = '{TOTAL}' AND {_DATES} AND group_id = ANY(ARRAY("
            "SELECT jsonb_array_elements_text(CAST(:cells AS jsonb) -> analysis_date::text))) "
            "GROUP BY group_id"
        ),
        {**date_range.sql_params(), "cells": chosen},
    ).mappings()
    return {row["group_id"]: row for row in rows}


def listed_groups(connection: Connection, min_group_size: int) -> list[GroupInfo]:
    """The groups large enough to show, by name."""
    rows = connection.execute(
        sa.text(
            "SELECT group_id, name, member_count FROM user_groups "
            "WHERE member_count >= :min_group_size ORDER BY name, group_id"
        ),
        {"min_group_size": min_group_size},
    ).mappings()
    return [GroupInfo(**row) for row in rows]


def daily_trend(
    connection: Connection, scope: Scope, date_range: DateRange, settings: Settings
) -> list[DailyPoint]:
    """One point per date of the range; dates without analyses are zero points."""
    by_date = daily_sums(connection, scope, date_range)
    empty: dict[str, Any] = {}
    return [
        DailyPoint(analysis_date=day, **figure_fields(by_date.get(day, empty), settings))
        for day in date_range.dates()
    ]


def user_breakdown(
    connection: Connection,
    date_range: DateRange,
    settings: Settings,
    *,
    limit: int,
    group_id: str | None = None,
) -> list[UserRow]:
    """The `limit` users who saved the most time, optionally among a group's current members."""
    member_filter = (
        "AND user_id_hash IN (SELECT user_id_hash FROM group_members WHERE group_id = :group_id)"
        if group_id is not None
        else ""
    )
    rows = connection.execute(
        sa.text(
            f"SELECT user_id_hash, COUNT(*) FILTER (WHERE conversation_count > 0) AS active_days, "
            f"{_SUMS_SQL} FROM daily_aggregates "
            f"WHERE user_id_hash IS NOT NULL AND {_DATES} {member_filter} "
            "GROUP BY user_id_hash "
            "ORDER BY SUM(total_time_saved) DESC, SUM(conversation_count) DESC, user_id_hash "
            "LIMIT :limit"
        ),
        {**date_range.sql_params(), "limit": limit, "group_id": group_id},
    ).mappings()
    return [
        UserRow(
            user_id_hash=row["user_id_hash"],
            active_days=int(row["active_days"]),
            **figure_fields(row, settings),
        )
        for row in rows
    ]


def dimension_breakdown(
    connection: Connection,
    dimension: Dimension,
    date_range: DateRange,
    settings: Settings,
    *,
    group_id: str | None = None,
) -> list[DimensionRow]:
    """Totals per value of a stored dimension (model, task category, tag, ...), for everyone or in a group."""
    rows = connection.execute(
        sa.text(
            f"SELECT dimension_value, {_SUMS_SQL} FROM daily_breakdowns "
            f"WHERE dimension = :dimension AND group_id = :group_id AND {_DATES} "
            "GROUP BY dimension_value "
            "ORDER BY SUM(total_time_saved) DESC, SUM(conversation_count) DESC, dimension_value"
        ),
        {**date_range.sql_params(), "dimension": dimension.name, "group_id": group_id or ""},
    ).mappings()
    return [DimensionRow(value=row["dimension_value"], **figure_fields(row, settings)) for row in rows]


def group_breakdown(
    connection: Connection, date_range: DateRange, settings: Settings
) -> tuple[list[GroupRow], int]:
    """Totals per group with at least `settings.min_group_size` members, and how many were hidden."""
    min_group_size = settings.min_group_size
    rows = connection.execute(
        sa.text(
            f"SELECT g.group_id, g.name, g.member_count, {_SUMS_SQL} "
            "FROM user_groups g LEFT JOIN daily_breakdowns b "
            f"ON b.group_id = g.group_id AND b.dimension = '{TOTAL}' "
            f"AND b.{_DATES} "
            "WHERE g.member_count >= :min_group_size "
            "GROUP BY g.group_id, g.name, g.member_count "
            "ORDER BY SUM(total_time_saved) DESC NULLS LAST, g.name, g.group_id"
        ),
        {**date_range.sql_params(), "min_group_size": min_group_size},
    ).mappings()
    shown = [
        GroupRow(
            group_id=row["group_id"],
            name=row["name"],
            member_count=row["member_count"],
            **figure_fields(row, settings),
        )
        for row in rows
    ]
    return shown, hidden_group_count(connection, min_group_size)


def hidden_group_count(connection: Connection, min_group_size: int) -> int:
    """Groups with fewer than `min_group_size` members: never shown, only counted."""
    return int(
        connection.execute(
            sa.text("SELECT COUNT(*) FROM user_groups WHERE member_count < :min_group_size"),
            {"min_group_size": min_group_size},
        ).scalar_one()
    )


def load_group(connection: Connection, group_id: str) -> GroupInfo | None:
    """The group with this id, or None."""
    row = (
        connection.execute(
            sa.text("SELECT group_id, name, member_count FROM user_groups WHERE group_id = :group_id"),
            {"group_id": group_id},
        )
        .mappings()
        .one_or_none()
    )
    return GroupInfo(**row) if row is not None else None


def latest_analysis_date(connection: Connection) -> date | None:
    """The newest date with a global aggregate row."""
    return connection.execute(
        sa.text("SELECT MAX(analysis_date) FROM daily_aggregates WHERE user_id_hash IS NULL")
    ).scalar_one()
