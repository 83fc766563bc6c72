"""Daily aggregates and breakdowns, rebuilt for given dates from `conversation_analysis`.

A pure function of the analyses (and of the calibration version each date keeps, see
`functions/calibrated.py`): the rows of the dates are deleted and rebuilt in
the caller's transaction, under an advisory lock so two rebuilds never interleave.

Two passes: every metric from the headline's rows (with `ANALYTICS_FLAGGED_ESTIMATES=apart`
the unflagged ones), then the flagged metrics from the flagged rows alone, added to the same
rows (or to a row of its own where a day, person or split has nothing but flagged estimates).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from functions.dimensions import GROUP, STORED_DIMENSIONS, TOTAL
from functions.metrics import (
    ANALYSED_ROWS_SQL,
    FLAGGED_COLUMNS,
    FLAGGED_ROWS_SQL,
    METRIC_COLUMNS,
    METRICS,
    aggregate_select_sql,
    include_flagged,
)
from shared.config import get_settings

__all__ = ["lock_aggregates", "recompute_dates"]

_AGGREGATION_LOCK_KEY = 7_291_042_119

_METRICS = aggregate_select_sql()
_METRIC_COLUMNS = ", ".join(METRIC_COLUMNS)

_REBUILD_DAILY = f"""
INSERT INTO daily_aggregates (analysis_date, user_id_hash, {_METRIC_COLUMNS},
    avg_time_saved_per_conversation, avg_confidence_level)
SELECT analysis_date, user_id_hash, {_METRICS},
    round(avg(CASE WHEN confirmed_new_work THEN 0 ELSE time_saved_minutes END), 2), round(avg(confidence_level), 2)
FROM ({ANALYSED_ROWS_SQL}) AS analysed
GROUP BY GROUPING SETS ((analysis_date), (analysis_date, user_id_hash))
"""


_FLAGGED_METRICS = ", ".join(metric.aggregate for metric in METRICS if metric.column in FLAGGED_COLUMNS)
_FLAGGED_COLUMNS = ", ".join(FLAGGED_COLUMNS)
_FLAGGED_UPDATE = ", ".join(f"{column} = EXCLUDED.{column}" for column in FLAGGED_COLUMNS)

_ADD_FLAGGED_DAILY = f"""
INSERT INTO daily_aggregates (analysis_date, user_id_hash, {_FLAGGED_COLUMNS})
SELECT analysis_date, user_id_hash, {_FLAGGED_METRICS}
FROM ({FLAGGED_ROWS_SQL}) AS analysed
GROUP BY GROUPING SETS ((analysis_date), (analysis_date, user_id_hash))
ON CONFLICT (analysis_date, user_id_hash) DO UPDATE SET {_FLAGGED_UPDATE}
"""


def _splits_sql() -> str:
    """One (dimension, value) row per value of each registered dimension, plus the scope's total."""
    parts = [f"SELECT '{TOTAL}'::text AS dimension, ''::text AS dimension_value"]
    parts += [
        f"SELECT DISTINCT '{d.name}'::text, value FROM unnest({d.values_sql}) AS value WHERE value IS NOT NULL"
        for d in STORED_DIMENSIONS
    ]
    return "\n    UNION ALL ".join(parts)


# Everyone split by every stored dimension (functions/dimensions.py); each group's
# totals and its own split. Groups overlap (a person can be in several), so group rows
# need not add up to the total; nor do the rows of an overlapping dimension (tags).
def _breakdowns_sql(rows_sql: str, columns: str, metrics: str, conflict: str = "") -> str:
    return f"""
WITH analysed AS (
    {rows_sql}
), scoped AS (
    SELECT analysed.*, '' AS scope_group FROM analysed
    UNION ALL
    SELECT analysed.*, member_of.group_id FROM analysed
    CROSS JOIN LATERAL (SELECT DISTINCT unnest({GROUP.values_sql}) AS group_id) AS member_of
)
INSERT INTO daily_breakdowns (analysis_date, group_id, dimension, dimension_value, user_count,
    {columns})
SELECT analysis_date, scope_group, dimension, dimension_value, count(DISTINCT user_id_hash), {metrics}
FROM scoped CROSS JOIN LATERAL (
    {_splits_sql()}
) AS split(dimension, dimension_value)
WHERE NOT (scope_group = '' AND dimension = '{TOTAL}')
GROUP BY analysis_date, scope_group, dimension, dimension_value
{conflict}"""


_REBUILD_BREAKDOWNS = _breakdowns_sql(ANALYSED_ROWS_SQL, _METRIC_COLUMNS, _METRICS)
# a split with only flagged estimates gets a row of its own, its people counted (disclosure reads user_count)
_ADD_FLAGGED_BREAKDOWNS = _breakdowns_sql(
    FLAGGED_ROWS_SQL,
    _FLAGGED_COLUMNS,
    _FLAGGED_METRICS,
    f"ON CONFLICT (analysis_date, group_id, dimension, dimension_value) DO UPDATE SET {_FLAGGED_UPDATE}",
)


# A date keeps the calibration version it was first aggregated with; a date without one takes
# the latest that is not pending (functions/calibrated.py; `recalibrate` moves dates on purpose).
_ASSIGN_CALIBRATION = """
INSERT INTO calibration_dates (analysis_date, version)
SELECT day, latest.version FROM unnest(CAST(:dates AS date[])) AS day,
    (SELECT max(version) AS version FROM calibrations WHERE NOT pending) AS latest
WHERE latest.version IS NOT NULL
ON CONFLICT (analysis_date) DO NOTHING
"""


def lock_aggregates(connection: Connection) -> None:
    """Wait for the aggregates (held to the end of the caller's transaction): writers never interleave."""
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _AGGREGATION_LOCK_KEY})


def recompute_dates(connection: Connection, dates: Iterable[date]) -> None:
    """Rebuild the aggregates and breakdowns of `dates` inside the caller's transaction."""
    day_list = sorted(set(dates))
    if not day_list:
        return
    lock_aggregates(connection)
    params = {"dates": day_list}
    connection.execute(sa.text(_ASSIGN_CALIBRATION), params)
    connection.execute(sa.text("DELETE FROM daily_aggregates WHERE analysis_date = ANY(:dates)"), params)
    connection.execute(sa.text("DELETE FROM daily_breakdowns WHERE analysis_date = ANY(:dates)"), params)
    headline = {**params, "include_flagged": include_flagged(get_settings())}
    connection.execute(sa.text(_REBUILD_DAILY), headline)
    connection.execute(sa.text(_REBUILD_BREAKDOWNS), headline)
    connection.execute(sa.text(_ADD_FLAGGED_DAILY), params)
    connection.execute(sa.text(_ADD_FLAGGED_BREAKDOWNS), params)
