"""CSV export of analyses, streamed in constant memory.

Rows come through a server-side cursor (`stream_results`, fetched a batch at a
time) and leave through a generator, so a million rows never sit in memory.
PostgreSQL renders each row as a finished CSV line (ISO dates, timestamps with the
configured zone's offset, text quoted); the driver then decodes one string per row
instead of converting every value, which is several times faster in pure Python.

Only pseudonymous, non-textual columns leave: no user ids, names, e-mails, task
descriptions or transcript digests. `conversation_id` stays, for admins only (the
export is admin-only): it is what lets an admin audit one estimate against its chat,
and it re-identifies the person for anyone who can also read Open WebUI's database,
which an admin can (README, "What the pseudonyms protect").

Formula safety: a text cell is made inert wherever a spreadsheet could start reading
a formula, not only at its start: after each `,` and `;` (the items of a joined list
such as `models_used`; a spreadsheet in a `;` locale that splits this comma-separated
file at semicolons, or one that splits at commas), and after tab, CR and LF. Where a
formula character (= + - @, tab, CR) follows such a place (quotes in between do not
count) a `'` is put before it, by the same pattern in SQL and in `escape_cell`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.calibrated import CSV_CALIBRATED_COLUMNS
from functions.dimensions import DIMENSIONS, Dimension
from functions.metrics import analysed_rows_sql, saved_cell
from functions.value import CSV_VALUE_COLUMNS
from shared.config import CalibrationMode, Settings

__all__ = ["CSV_COLUMNS", "csv_columns", "escape_cell", "stream_csv"]

# (CSV column, SQL expression, kind): the kind says how the value becomes a cell
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("conversation_id", "conversation_id", "text"),
    ("user_pseudonym", "user_id_hash", "text"),
    ("analysis_date", "analysis_date", "plain"),
    ("first_message_at", "first_message_at", "timestamp"),
    ("last_message_at", "last_message_at", "timestamp"),
    ("total_duration_minutes", "total_duration_minutes", "plain"),
    ("active_duration_minutes", "active_duration_minutes", "plain"),
    ("idle_time_minutes", "idle_time_minutes", "plain"),
    ("manual_time_low_minutes", "manual_time_low", "plain"),
    ("manual_time_most_likely_minutes", "manual_time_most_likely", "plain"),
    ("manual_time_high_minutes", "manual_time_high", "plain"),
    ("time_saved_minutes", saved_cell("time_saved_minutes"), "plain"),  # 0 for new work
    (
        "time_saved_successful_minutes",
        saved_cell("CASE WHEN rated_down OR confirmed_no_help THEN 0 ELSE time_saved_minutes END"),
        "plain",
    ),
    (
        "unsuccessful_reason",
        "CASE WHEN confirmed_no_help THEN 'did_not_help' WHEN rated_down THEN 'rated_down' ELSE '' END",
        "text",
    ),
    ("new_work", "confirmed_new_work", "plain"),  # "I would not have done this without AI"
    ("confidence_level", "confidence_level", "plain"),
    (
        "estimate_flag",
        "estimate_flag",
        "text",
    ),  # why the estimate is not trusted (shared/estimators/flags.py)
    ("task_category", "task_category", "text"),  # the category dimension's column
    ("estimator", "estimator", "text"),
    ("estimator_model", "estimator_model", "text"),
    ("primary_model", "primary_model", "text"),  # the model dimension's column
    ("prompt_version", "prompt_version", "text"),
    ("models_used", "array_to_string(models_used, ';')", "text"),
    ("message_count", "message_count", "plain"),
    ("user_message_count", "user_message_count", "plain"),
    *CSV_VALUE_COLUMNS,
)
# every dimension's CSV column (functions/dimensions.py); those not above come last, as text
_COLUMNS += tuple(
    (d.csv_column, d.csv_sql, "text")
    for d in DIMENSIONS
    if d.csv_column is not None and d.csv_sql is not None and d.csv_column not in {c for c, _, _ in _COLUMNS}
)
CSV_COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _COLUMNS)

# A place where a spreadsheet may begin a cell inside ours (the start, `,` `;` tab CR LF), any
# quotes (a lenient reader drops them), then, looked ahead at, a formula character
# (= + - @ tab CR): `'` goes right before the formula character.
# Python's `re` and PostgreSQL's regular expressions read this pattern the same way.
_FORMULA_PATTERN = r'(^|[,;\t\r\n])("*)(?=[=+\-@\t\r])'
_FORMULA = re.compile(_FORMULA_PATTERN)
# the pattern's two character classes in SQL: the separators and the formula characters
_SEPARATORS_SQL = "',;' || chr(9) || chr(13) || chr(10)"
_FORMULA_CHARACTERS_SQL = "('=', '+', '-', '@', chr(9), chr(13))"
_BATCH_ROWS = 5000


def escape_cell(value: str) -> str:
    """`value` made inert for spreadsheets: `'` before each formula character that could start a cell."""
    return _FORMULA.sub(r"\1\2'", value)


def _cell_sql(expression: str, kind: str) -> str:
    """SQL rendering one value as a CSV cell: '' for NULL, text quoted and escaped like `escape_cell`."""
    if kind == "plain":  # numbers and dates: ISO text, never needs quoting
        return f"coalesce({expression}::text, '')"
    if kind == "timestamp":  # ISO 8601 with the offset of the session zone, set per export
        return f"""coalesce(to_char({expression}, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'), '')"""
    # The pattern can only match at the start or after a separator: a cell with no separator and
    # no formula character first (after quotes) is left as it is without running the regex.
    needs_regex = (
        f"(left(ltrim({expression}, '\"'), 1) IN {_FORMULA_CHARACTERS_SQL} "
        f"OR translate({expression}, {_SEPARATORS_SQL}, '') <> {expression})"
    )
    escaped = (
        f"CASE WHEN {needs_regex} "
        f"THEN regexp_replace({expression}, :formula_pattern, :formula_replacement, 'g') ELSE {expression} END"
    )
    return f"coalesce('\"' || replace({escaped}, '\"', '\"\"') || '\"', '')"


def _query(columns: tuple[tuple[str, str, str], ...]) -> str:
    line = " || ',' || ".join(_cell_sql(expression, kind) for _, expression, kind in columns)
    return (
        f"SELECT {line} || chr(13) || chr(10) AS line FROM "
        f"({analysed_rows_sql('ca.analysis_date BETWEEN :start_date AND :end_date')}) AS analysed "
        "WHERE true {filters} "
        "ORDER BY analysis_date, conversation_id"
    )


# with ANALYTICS_CALIBRATION=show or apply the calibrated columns follow (functions/calibrated.py)
_QUERIES = {False: _query(_COLUMNS), True: _query(_COLUMNS + CSV_CALIBRATED_COLUMNS)}


def csv_columns(*, calibrated: bool) -> tuple[str, ...]:
    """The header of the export: `CSV_COLUMNS`, and the calibrated columns when calibration is on."""
    return CSV_COLUMNS + (tuple(name for name, _, _ in CSV_CALIBRATED_COLUMNS) if calibrated else ())


def stream_csv(
    engine: Engine,
    settings: Settings,
    start_date: date,
    end_date: date,
    *,
    group_id: str | None = None,
    dimension_filter: tuple[Dimension, str] | None = None,
    batch_rows: int = _BATCH_ROWS,
) -> Iterator[bytes]:
    """UTF-8 CSV chunks: a header row, then one row per analysed conversation in the range.

    `group_id` keeps the analyses of that group's members, `dimension_filter` those
    with that value of the dimension (e.g. a tag).
    """
    calibrated = settings.calibration is not CalibrationMode.OFF
    yield (",".join(csv_columns(calibrated=calibrated)) + "\r\n").encode("utf-8")
    filters = "AND :group_id = ANY(group_ids)" if group_id is not None else ""
    params: dict[str, object] = {
        "start_date": start_date,
        "end_date": end_date,
        "group_id": group_id,
        "include_flagged": True,  # every analysed conversation, flagged ones with their flag
        "formula_pattern": _FORMULA_PATTERN,
        "formula_replacement": "\\1\\2'",
        "money": settings.money_shown,  # the value and cost cells stay empty without money
    }
    if dimension_filter is not None:
        dimension, value = dimension_filter
        filters += f" AND {dimension.contains_sql('dimension_value')}"
        params["dimension_value"] = value
    with engine.connect() as connection:
        # timestamps carry the offset of the configured zone, not the database server's
        connection.execute(sa.text("SELECT set_config('TimeZone', :zone, true)"), {"zone": settings.zone.key})
        result = connection.execution_options(stream_results=True, max_row_buffer=batch_rows).execute(
            sa.text(_QUERIES[calibrated].format(filters=filters)), params
        )
        assert getattr(result.cursor, "server_side", False), (
            "the export must stream from a server-side cursor"
        )
        for partition in result.partitions(batch_rows):
            yield "".join(row[0] for row in partition).encode("utf-8")
