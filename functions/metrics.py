"""The summed metrics of the aggregate tables: declared once, here.

Each metric is a column of `daily_aggregates` and `daily_breakdowns` (the migrations
create the columns; `tests/test_metrics.py` checks that they match this list), the
SQL aggregate that fills it from a group of `conversation_analysis` rows, and its
meaning. The aggregator builds its rebuild SQL from `METRICS`, the API sums the same
columns over a range, and every public metric is a field of the API's `Figures`.
A new metric is one entry here, one migration adding the column to both tables, and
one field in `Figures`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["METRICS", "METRIC_COLUMNS", "Metric", "aggregate_select_sql", "range_sums_sql"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One summed metric: its column, how a group of analyses fills it, and what it means."""

    column: str
    aggregate: str  # SQL over the analysed `conversation_analysis` rows of one group
    description: str
    public: bool = True  # a field of the API's `Figures` under the same name


METRICS: tuple[Metric, ...] = (
    Metric("conversation_count", "count(*)", "Analysed conversations."),
    Metric("message_count", "coalesce(sum(message_count), 0)", "Messages in those conversations."),
    Metric(
        "total_active_time",
        "coalesce(sum(active_duration_minutes), 0)",
        "Minutes people actually worked with the AI.",
    ),
    Metric(
        "total_manual_time_estimated",
        "coalesce(sum(manual_time_most_likely), 0)",
        "Minutes the tasks would take by hand, most likely.",
    ),
    Metric(
        "total_manual_time_low",
        "coalesce(sum(manual_time_low), 0)",
        "Minutes by hand, sum of the low estimates.",
    ),
    Metric(
        "total_manual_time_high",
        "coalesce(sum(manual_time_high), 0)",
        "Minutes by hand, sum of the high estimates.",
    ),
    Metric(
        "total_time_saved", "coalesce(sum(time_saved_minutes), 0)", "Minutes saved, most likely estimate."
    ),
    Metric(
        "total_time_saved_low",
        "coalesce(sum(GREATEST(0, manual_time_low - active_duration_minutes)), 0)",
        "Minutes saved, sum of the low estimates.",
    ),
    Metric(
        "total_time_saved_high",
        "coalesce(sum(GREATEST(0, manual_time_high - active_duration_minutes)), 0)",
        "Minutes saved, sum of the high estimates.",
    ),
    Metric(
        "total_time_saved_successful",
        "coalesce(sum(time_saved_minutes) FILTER (WHERE NOT (rated_down OR confirmed_no_help)), 0)",
        "Minutes saved, most likely, counting only successful conversations: those whose kept "
        "answers were last rated down in Open WebUI, or whose owner said AI did not help, save 0.",
    ),
    Metric(
        "unsuccessful_count",
        "count(*) FILTER (WHERE rated_down OR confirmed_no_help)",
        "Conversations counted as unsuccessful (rated down, or AI did not help).",
    ),
    Metric(
        "confidence_sum",
        "coalesce(sum(confidence_level), 0)",
        "Sum of the estimator confidences (0–100 each), so averages over a range are exact.",
        public=False,
    ),
    Metric(
        "llm_estimated_count",
        "count(*) FILTER (WHERE estimator = 'llm')",
        "Conversations estimated by the LLM.",
    ),
    Metric(
        "heuristic_estimated_count",
        "count(*) FILTER (WHERE estimator = 'heuristic')",
        "Conversations estimated by the offline heuristic.",
    ),
)

METRIC_COLUMNS: tuple[str, ...] = tuple(metric.column for metric in METRICS)


def aggregate_select_sql() -> str:
    """The metrics' aggregates, in `METRIC_COLUMNS` order, for a `SELECT ... GROUP BY`."""
    return ",\n    ".join(metric.aggregate for metric in METRICS)


def range_sums_sql() -> str:
    """Each metric column summed over the selected aggregate rows, named after the column."""
    return ", ".join(f"COALESCE(SUM({column}), 0)::bigint AS {column}" for column in METRIC_COLUMNS)
