"""The summed metrics of the aggregate tables: declared once, here.

Each metric is a column of `daily_aggregates` and `daily_breakdowns` (the migrations
create the columns; `tests/test_metrics.py` checks that they match this list), the
SQL aggregate that fills it from a group of `conversation_analysis` rows, and its
meaning. The aggregator builds its rebuild SQL from `METRICS`, the API sums the same
columns over a range, and every public metric is a field of the API's `Figures`.
A new metric is one entry here, one migration adding the column to both tables, and
one field in `Figures`.

Most metrics are sums. `estimator_counts` is a count per value (kind ``"counts"``):
a JSON object `{"llm": 12, "heuristic": 3}` of conversations per estimator, so the
estimator's identity is data and a third estimator needs no schema change (the
tables check that the counts add up to `conversation_count`; see migration 004).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from shared.config import FlaggedEstimates, Settings

__all__ = [
    "ADDITIVE",
    "ADMIN_ONLY_METRIC",
    "ANALYSED_ROWS_SQL",
    "ESTIMATOR_COUNTS",
    "FIELD_SOURCES",
    "FLAGGED_COLUMNS",
    "FLAGGED_ROWS_SQL",
    "HEADLINE_ROWS",
    "METRICS",
    "METRIC_COLUMNS",
    "MINUTES",
    "SAVED_ROWS",
    "SUB_PARTITION",
    "SUM_COLUMNS",
    "Metric",
    "ViewerRule",
    "aggregate_select_sql",
    "analysed_rows_sql",
    "include_flagged",
    "range_sums_sql",
    "saved_cell",
    "viewer_rule",
]


MINUTES = "minutes"
SAVED_ROWS = "FILTER (WHERE NOT confirmed_new_work)"
"""Which rows' minutes count as time saved: not those their owner called new work ("I would not have
done this without AI": counted apart by `new_work_*`, never as hours saved)."""


def saved_cell(expression: str) -> str:
    """A per-conversation time-saved (or value-saved) SQL expression: 0 for new work (see `SAVED_ROWS`)."""
    return f"CASE WHEN confirmed_new_work THEN 0 ELSE {expression} END"


ViewerRule = Literal["additive", "sub_partition", "admin"]
"""What a viewer may see of a metric (in a published release, `functions/read/releases.py`):

* `additive`: a sum over people with no weight of its own (conversations, minutes saved with
  their band, active minutes): releasable per cell of at least k people;
* `sub_partition`: it depends on how the cell's people split (group rates, category factors,
  priced and unpriced models, successful and not, estimators): releasable only where every
  sub-cell behind it has 0 or at least k people, else null with the reason;
* `admin` (the default): never in a release. A new metric is admin-only until it declares otherwise.
"""
ADDITIVE: Final = "additive"
SUB_PARTITION: Final = "sub_partition"
ADMIN_ONLY_METRIC: Final = "admin"


@dataclass(frozen=True, slots=True)
class Metric:
    """One summed metric: its column, how a group of analyses fills it, and what it means."""

    column: str
    aggregate: str  # SQL over the analysed `conversation_analysis` rows of one group
    description: str
    public: bool = True  # a field of the API's `Figures` under the same name
    kind: Literal["sum", "counts"] = "sum"  # "counts": a JSON object of counts per value
    summed: bool = True  # False: recorded with the row, not added up over a range
    unit: str | None = None  # "minutes" for time; named in the OpenAPI document (`x-unit`)
    viewer: ViewerRule = ADMIN_ONLY_METRIC  # what a viewer may see of it (see ViewerRule)
    partition: str | None = None  # sub_partition: the split it depends on (functions/read/releases.py)

    def range_sum_sql(self) -> str:
        """SQL summing this column over the selected aggregate rows, named after the column."""
        if self.kind == "counts":
            # every row's object unnested, its counts summed per key, folded back into one object
            return (
                "(SELECT coalesce(jsonb_object_agg(key, total), '{}'::jsonb) FROM ("
                "SELECT key, sum(value::text::bigint) AS total "
                f"FROM unnest(array_agg({self.column})) AS maps(counts), jsonb_each(maps.counts) "
                f"GROUP BY key) AS summed) AS {self.column}"
            )
        return f"COALESCE(SUM({self.column}), 0)::bigint AS {self.column}"


def _counts_of(expression: str) -> str:
    """SQL over a group of `conversation_analysis` rows: a JSON object of rows per value of `expression`."""
    return (
        "(SELECT coalesce(jsonb_object_agg(name, n), '{}'::jsonb) FROM ("
        f"SELECT name, count(*) AS n FROM unnest(array_agg({expression})) AS used(name) "
        "WHERE name IS NOT NULL GROUP BY name) AS counted)"
    )


METRICS: tuple[Metric, ...] = (
    Metric("conversation_count", "count(*)", "Analysed conversations.", viewer=ADDITIVE),
    Metric(
        "message_count",
        "coalesce(sum(message_count), 0)",
        "Messages in those conversations.",
        viewer=ADDITIVE,
    ),
    Metric(
        "total_active_time",
        "coalesce(sum(active_duration_minutes), 0)",
        "Minutes people actually worked with the AI.",
        unit=MINUTES,
        viewer=ADDITIVE,
    ),
    # the minutes by hand are admin-only for a viewer: with active and saved minutes of the same cell,
    # manual - active - saved is the new-work and clipped (active > manual) minutes of a few conversations
    Metric(
        "total_manual_time_estimated",
        "coalesce(sum(manual_time_most_likely), 0)",
        "Minutes the tasks would take by hand, most likely.",
        unit=MINUTES,
    ),
    Metric(
        "total_manual_time_low",
        "coalesce(sum(manual_time_low), 0)",
        "Minutes by hand, sum of the low estimates.",
        unit=MINUTES,
    ),
    Metric(
        "total_manual_time_high",
        "coalesce(sum(manual_time_high), 0)",
        "Minutes by hand, sum of the high estimates.",
        unit=MINUTES,
    ),
    Metric(
        "total_time_saved",
        f"coalesce(sum(time_saved_minutes) {SAVED_ROWS}, 0)",
        "Minutes saved, most likely estimate (new work left out).",
        unit=MINUTES,
        viewer=ADDITIVE,
    ),
    Metric(
        "total_time_saved_low",
        f"coalesce(sum(GREATEST(0, manual_time_low - active_duration_minutes)) {SAVED_ROWS}, 0)",
        "Minutes saved, sum of the low estimates.",
        unit=MINUTES,
        viewer=ADDITIVE,
    ),
    Metric(
        "total_time_saved_high",
        f"coalesce(sum(GREATEST(0, manual_time_high - active_duration_minutes)) {SAVED_ROWS}, 0)",
        "Minutes saved, sum of the high estimates.",
        unit=MINUTES,
        viewer=ADDITIVE,
    ),
    Metric(
        "total_time_saved_successful",
        "coalesce(sum(time_saved_minutes) FILTER (WHERE NOT (rated_down OR confirmed_no_help "
        "OR confirmed_new_work)), 0)",
        "Minutes saved, most likely, counting only successful conversations: those whose kept "
        "answers were last rated down in Open WebUI, or whose owner said AI did not help, save 0.",
        viewer=SUB_PARTITION,
        partition="success",
    ),
    Metric(
        "unsuccessful_count",
        "count(*) FILTER (WHERE rated_down OR confirmed_no_help)",
        "Conversations counted as unsuccessful (rated down, or AI did not help).",
        viewer=SUB_PARTITION,
        partition="success",
    ),
    Metric(
        "confidence_sum",
        "coalesce(sum(confidence_level), 0)",
        "Sum of the estimator confidences (0–100 each), so averages over a range are exact.",
        public=False,
        viewer=ADDITIVE,
    ),
    Metric(
        "estimator_counts",
        _counts_of("estimator"),
        'Conversations per estimator that made their estimate, e.g. `{"llm": 12, "heuristic": 3}`.',
        public=False,
        kind="counts",
        viewer=SUB_PARTITION,
        partition="estimator",
    ),
)

# money (functions/value.py): integer units so range sums stay exact
_VALUE = "coalesce(round(sum({minutes} * hourly_rate) " + SAVED_ROWS + " * 1000 / 60), 0)"
METRICS += (
    Metric(
        "ai_input_tokens",
        "coalesce(sum(ai_input_tokens), 0)",
        "Prompt tokens of the AI answers, regenerations included (cached tokens included), in tokens.",
        viewer=ADDITIVE,
    ),
    Metric(
        "ai_output_tokens",
        "coalesce(sum(ai_output_tokens), 0)",
        "Completion tokens of the AI answers, regenerations included, in tokens.",
        viewer=ADDITIVE,
    ),
    Metric(
        "ai_cached_tokens",
        "coalesce(sum(ai_cached_tokens), 0)",
        "Of the prompt tokens, those billed at the cached price, in tokens.",
        viewer=ADDITIVE,
    ),
    Metric(
        "ai_unpriced_tokens",
        "coalesce(sum(ai_unpriced_tokens), 0)",
        "Tokens of models without a price (prompt and completion), in tokens; they are not in ai_cost_usd.",
        viewer=SUB_PARTITION,
        partition="pricing",
    ),
    Metric(
        "ai_cost_micro_usd",
        "coalesce(round(sum(ai_cost_usd) * 1000000), 0)",
        "AI cost of the priced models, in millionths of a USD.",
        public=False,
        viewer=SUB_PARTITION,
        partition="pricing",
    ),
    Metric(
        "analysis_cost_micro_usd",
        "coalesce(round(sum(llm_cost_usd) * 1000000), 0)",
        "The estimator's own LLM cost, priced models only, in millionths of a USD.",
        public=False,
    ),
    Metric(
        "analysis_unpriced_tokens",
        "coalesce(sum(prompt_tokens + completion_tokens) FILTER (WHERE llm_cost_usd IS NULL), 0)",
        "Tokens (prompt and completion) of the estimator's own requests to models without a price, "
        "in tokens; they are not in analysis_cost_usd.",
    ),
    Metric(
        "analysis_priced_tokens",
        "coalesce(sum(prompt_tokens + completion_tokens) FILTER (WHERE llm_cost_usd IS NOT NULL), 0)",
        "Tokens of the estimator's own requests to priced models, in tokens (analysis_cost_usd is null "
        "when there are none and some are unpriced).",
        public=False,
    ),
    Metric(
        "value_saved_milli",
        _VALUE.format(minutes="time_saved_minutes"),
        "Value of the minutes saved, most likely, in thousandths of the currency.",
        public=False,
        viewer=SUB_PARTITION,
        partition="rate",
    ),
    Metric(
        "value_saved_low_milli",
        _VALUE.format(minutes="GREATEST(0, manual_time_low - active_duration_minutes)"),
        "Value of the minutes saved, low, in thousandths of the currency.",
        public=False,
        viewer=SUB_PARTITION,
        partition="rate",
    ),
    Metric(
        "value_saved_high_milli",
        _VALUE.format(minutes="GREATEST(0, manual_time_high - active_duration_minutes)"),
        "Value of the minutes saved, high, in thousandths of the currency.",
        public=False,
        viewer=SUB_PARTITION,
        partition="rate",
    ),
    Metric(
        "value_rate_id",
        "max(value_rate_id)",
        "The `value_rates` period the row was valued with.",
        public=False,
        summed=False,
    ),
)


# new work (functions/success.py): conversations their owner says would not have happened without AI
METRICS += (
    Metric(
        "new_work_conversations",
        "count(*) FILTER (WHERE confirmed_new_work)",
        'Conversations whose owner said "I would not have done this without AI": new work enabled, '
        "not time saved (their minutes are in no time-saved figure).",
    ),
    Metric(
        "new_work_active_minutes",
        "coalesce(sum(active_duration_minutes) FILTER (WHERE confirmed_new_work), 0)",
        "Minutes people actively worked with the AI in those new-work conversations.",
        unit=MINUTES,
    ),
)


# calibrated minutes (functions/calibrated.py): each analysed row carries the calibration of its
# date's version, its estimator and its category (`manual_time_calibrated*`; raw where the category is uncalibrated)
# Admin-only for a viewer: the bands use each category's factor_low/high and uncalibrated rows add raw
# minutes, a relation the release auditor does not model (calibrated - raw splits a cell by category).
_CALIBRATED_SAVED = "coalesce(sum(GREATEST(0, {manual} - active_duration_minutes)) " + SAVED_ROWS + ", 0)"
METRICS += (
    Metric(
        "total_manual_time_calibrated",
        "coalesce(sum(manual_time_calibrated), 0)",
        "Minutes by hand, most likely × its estimator's factor for its task category (raw where uncalibrated).",
        public=False,
    ),
    Metric(
        "total_time_saved_calibrated",
        _CALIBRATED_SAVED.format(manual="manual_time_calibrated"),
        "Minutes saved with the calibrated minutes by hand, most likely.",
        public=False,
    ),
    Metric(
        "total_time_saved_calibrated_low",
        _CALIBRATED_SAVED.format(manual="manual_time_calibrated_low"),
        "Minutes saved, calibrated, low end of the band (first quartile of the category's ratio).",
        public=False,
    ),
    Metric(
        "total_time_saved_calibrated_high",
        _CALIBRATED_SAVED.format(manual="manual_time_calibrated_high"),
        "Minutes saved, calibrated, high end of the band (third quartile of the category's ratio).",
        public=False,
    ),
    Metric(
        "calibrated_count",
        "count(*) FILTER (WHERE calibration_applied)",
        "Conversations whose task category had enough confirmations to be calibrated.",
        public=False,
    ),
    Metric(
        "calibration_version",
        "max(calibration_version)",
        "The calibration version the figures were calibrated with (the newest one when a range "
        "spans several; see calibration_versions); null with ANALYTICS_CALIBRATION=off or before "
        "the first calibration.",
        summed=False,
    ),
)


# flagged estimates (shared/estimators/flags.py): their conversations and minutes on their own, whether
# or not the headline includes them (ANALYTICS_FLAGGED_ESTIMATES). Filtered, so that they are right over
# any set of analysed rows; the aggregator also fills them from the flagged rows alone (functions/aggregates.py).
_FLAGGED = "estimate_flag IS NOT NULL"
METRICS += (
    Metric(
        "flagged_count",
        f"count(*) FILTER (WHERE {_FLAGGED})",
        "Analysed conversations whose estimate was flagged (low confidence, a band too wide, or the "
        "same answer as most of its run); with ANALYTICS_FLAGGED_ESTIMATES=apart they are not in "
        "the other figures.",
    ),
    Metric(
        "flagged_time_saved",
        f"coalesce(sum(time_saved_minutes) FILTER (WHERE {_FLAGGED}), 0)",
        "Minutes saved, most likely, by the flagged estimates alone.",
        unit=MINUTES,
    ),
)
FLAGGED_COLUMNS: tuple[str, ...] = ("flagged_count", "flagged_time_saved")

# The rows the headline figures are built from: every analysed row, or (apart) the unflagged ones.
# A bind parameter, so that every SQL text built here stays one constant: pass `include_flagged()`.
HEADLINE_ROWS = "(ca.estimate_flag IS NULL OR :include_flagged)"


def include_flagged(settings: Settings) -> bool:
    """The `:include_flagged` parameter of every analysed-rows query."""
    return settings.flagged_estimates is FlaggedEstimates.INCLUDE


_METRIC_RULES = {metric.column: metric.viewer for metric in METRICS}

_BANDS = ("", "_low", "_high")
FIELD_SOURCES: dict[str, tuple[str, ...]] = {
    # fields of the API's `Figures` that are not a metric of the same name: the metrics they come from
    **{f"avg_time_saved_per_conversation{b}": (f"total_time_saved{b}", "conversation_count") for b in _BANDS},
    "avg_confidence_level": ("confidence_sum", "conversation_count"),
    **dict.fromkeys(
        ("llm_estimated_count", "heuristic_estimated_count", "estimator", "estimators"), ("estimator_counts",)
    ),
    "ai_cost_usd": ("ai_cost_micro_usd", "ai_unpriced_tokens"),
    "ai_cost_complete": ("ai_unpriced_tokens",),
    "analysis_cost_usd": ("analysis_cost_micro_usd", "analysis_priced_tokens", "analysis_unpriced_tokens"),
    "currency": ("value_saved_milli",),
    **{f"value_saved{b}_amount": (f"value_saved{b}_milli",) for b in _BANDS},
    **{f"hours_saved_per_100_usd{b}": (f"total_time_saved{b}", "ai_cost_micro_usd") for b in _BANDS},
    **{f"value_per_usd{b}": (f"value_saved{b}_milli", "ai_cost_micro_usd") for b in _BANDS},
    "time_saved_calibrated_minutes": ("total_time_saved_calibrated",),
    "time_saved_calibrated_low_minutes": ("total_time_saved_calibrated_low",),
    "time_saved_calibrated_high_minutes": ("total_time_saved_calibrated_high",),
    "manual_time_calibrated_minutes": ("total_manual_time_calibrated",),
    "calibrated_conversation_count": ("calibrated_count",),
    "calibration_versions": ("calibration_version",),
}
"""Where each derived field of `Figures` comes from; a field is as releasable as its least releasable source."""

_ORDER: dict[str, int] = {ADDITIVE: 0, SUB_PARTITION: 1, ADMIN_ONLY_METRIC: 2}


def viewer_rule(field: str) -> ViewerRule:
    """What a viewer may see of a field of `Figures`: the strictest rule of the metrics behind it.

    A field that is neither a metric nor declared in `FIELD_SOURCES` is admin-only."""
    sources = FIELD_SOURCES.get(field, (field,))
    rules = [_METRIC_RULES.get(source, ADMIN_ONLY_METRIC) for source in sources]
    return max(rules, key=_ORDER.__getitem__)


def analysed_rows_sql(dates_condition: str, *, flagged_only: bool = False) -> str:
    """The analysed rows whose `ca.analysis_date` meets the condition, with usage and rate.

    The headline's rows (`HEADLINE_ROWS`: bind `:include_flagged`), or with `flagged_only` the rows
    whose estimate is flagged.

    Each row has its calibration (the version of its date, the factor and band of its task
    category: `manual_time_calibrated`, `_low`, `_high`; the raw minutes where the category is
    not calibrated), its AI usage (summed over its models; the cost of priced models only,
    NULL when none is priced) and its hourly rate: from the rate period in effect on its
    date, the lowest rate of its listed groups, else the period's default rate; NULL (no
    value) when the period has no money.
    """
    rows = f"ca.{_FLAGGED}" if flagged_only else HEADLINE_ROWS
    return _ANALYSED_ROWS_SQL.replace("{dates_condition}", f"{rows} AND {dates_condition}")


_ANALYSED_ROWS_SQL = """
SELECT ca.*,
    coalesce(usage.input_tokens, 0) AS ai_input_tokens,
    coalesce(usage.output_tokens, 0) AS ai_output_tokens,
    coalesce(usage.cached_tokens, 0) AS ai_cached_tokens,
    coalesce(usage.unpriced_tokens, 0) AS ai_unpriced_tokens,
    usage.cost_usd AS ai_cost_usd,
    rate.id AS value_rate_id,
    rate.currency AS value_currency,
    CASE WHEN rate.hourly_rate IS NOT NULL THEN round(coalesce(group_rate.rate, rate.hourly_rate), 2) END
        AS hourly_rate,
    calibration_date.version AS calibration_version,
    coalesce(calibration.calibrated, false) AS calibration_applied,
    CASE WHEN calibration.calibrated THEN calibration.factor ELSE 1 END AS calibration_factor,
    CASE WHEN calibration.calibrated THEN round(ca.manual_time_most_likely * calibration.factor)::integer
        ELSE ca.manual_time_most_likely END AS manual_time_calibrated,
    CASE WHEN calibration.calibrated THEN round(ca.manual_time_most_likely * calibration.factor_low)::integer
        ELSE ca.manual_time_low END AS manual_time_calibrated_low,
    CASE WHEN calibration.calibrated THEN round(ca.manual_time_most_likely * calibration.factor_high)::integer
        ELSE ca.manual_time_high END AS manual_time_calibrated_high
FROM conversation_analysis ca
LEFT JOIN LATERAL (
    SELECT sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(cached_tokens) AS cached_tokens,
        sum(input_tokens + output_tokens) FILTER (WHERE cost_usd IS NULL) AS unpriced_tokens,
        sum(cost_usd) AS cost_usd
    FROM conversation_model_usage WHERE conversation_id = ca.conversation_id
) AS usage ON true
LEFT JOIN LATERAL (
    SELECT id, currency, hourly_rate, group_hourly_rates FROM value_rates
    WHERE effective_from <= ca.analysis_date ORDER BY effective_from DESC LIMIT 1
) AS rate ON true
LEFT JOIN LATERAL (
    SELECT min((rate.group_hourly_rates ->> g.name)::numeric) AS rate FROM user_groups g
    WHERE g.group_id = ANY(ca.group_ids) AND (rate.group_hourly_rates ->> g.name) IS NOT NULL
) AS group_rate ON true
LEFT JOIN calibration_dates AS calibration_date ON calibration_date.analysis_date = ca.analysis_date
LEFT JOIN calibration_factors AS calibration ON calibration.version = calibration_date.version
    AND calibration.estimator = ca.estimator AND calibration.task_category = coalesce(ca.task_category, 'other')
WHERE ca.status = 'analyzed' AND {dates_condition}
"""
# the rows the aggregator rebuilds the dates `:dates` from, and their flagged ones
ANALYSED_ROWS_SQL = analysed_rows_sql("ca.analysis_date = ANY(:dates)")
FLAGGED_ROWS_SQL = analysed_rows_sql("ca.analysis_date = ANY(:dates)", flagged_only=True)

METRIC_COLUMNS: tuple[str, ...] = tuple(metric.column for metric in METRICS)
SUM_COLUMNS: tuple[str, ...] = tuple(
    metric.column for metric in METRICS if metric.kind == "sum" and metric.summed
)
ESTIMATOR_COUNTS = "estimator_counts"


def aggregate_select_sql() -> str:
    """The metrics' aggregates, in `METRIC_COLUMNS` order, for a `SELECT ... GROUP BY`."""
    return ",\n    ".join(metric.aggregate for metric in METRICS)


def range_sums_sql() -> str:
    """Each metric column summed over the selected aggregate rows, named after the column."""
    return ", ".join(metric.range_sum_sql() for metric in METRICS if metric.summed)
