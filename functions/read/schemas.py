"""Pydantic models of the API: query parameters in, responses out.

Every time figure is in minutes and comes with its uncertainty band: the sum of the
per-conversation low and high estimates (`..._low`, `..._high`) around the most
likely value, and with the estimators that produced it.
"""

from __future__ import annotations

import datetime as _dt
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, create_model

from functions.dates import MAX_DATE, MAX_DAYS, MAX_RANGE_DAYS, MIN_DATE, checked_day, checked_range
from functions.dimensions import FILTER_DIMENSIONS, STORED_DIMENSIONS, Dimension
from functions.metrics import METRICS, MINUTES
from functions.runs import RunStatus
from functions.value import MAX_UNPRICED_SHARE, ValueStatus
from shared.errors import InvalidParameter
from shared.estimators import registry as estimator_registry

__all__ = [
    "MAX_DATE",
    "MAX_RANGE_DAYS",
    "MIN_DATE",
    "BreakdownQuery",
    "BreakdownResponse",
    "DailyPoint",
    "DateRange",
    "DimensionFilter",
    "DimensionRow",
    "DisclosureInfo",
    "ErrorResponse",
    "EstimatorInfo",
    "EstimatorLabel",
    "ExportQuery",
    "Figures",
    "FilteredQuery",
    "GroupBreakdownResponse",
    "GroupInfo",
    "GroupRow",
    "HealthResponse",
    "InvalidParameter",
    "ListResponse",
    "NextRun",
    "NoQuery",
    "ParameterProblem",
    "PeriodComparison",
    "RangeQuery",
    "RunInfo",
    "SummaryQuery",
    "SummaryResponse",
    "SystemInfo",
    "TrendQuery",
    "TrendResponse",
    "TriggerQuery",
    "TriggerResponse",
    "TriggeredRun",
    "UserBreakdownQuery",
    "UserBreakdownResponse",
    "UserRow",
    "WithheldPoint",
]

_METRICS = {metric.column: metric for metric in METRICS}
_METRIC_TEXT = {column: metric.description for column, metric in _METRICS.items()}


def _unit(unit: str) -> dict[str, Any]:
    """The unit of a number, named in the OpenAPI document."""
    return {"x-unit": unit}


def _metric(column: str) -> Any:
    """The field of a summed metric: its description and unit from the metric registry."""
    metric = _METRICS[column]
    return Field(
        description=metric.description, json_schema_extra=_unit(metric.unit) if metric.unit else None
    )


def _minutes(description: str) -> Any:
    return Field(description=description, json_schema_extra=_unit(MINUTES))


DEFAULT_DAYS = 30
_BOUNDS = f" Between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}."

RANGE_RULES = (
    "Give either `days` (the N local days ending yesterday, in the configured time zone) "
    "or both `start_date` and `end_date` (inclusive, `start_date ≤ end_date`, at most "
    f"{MAX_RANGE_DAYS} days); with neither, the last {DEFAULT_DAYS} days ending yesterday. "
    "Yesterday is the last day the nightly run has analysed, so a range ending today "
    "would end on a day that is still incomplete."
)


# --- queries ---------------------------------------------------------------------------


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoQuery(_Query):
    """No query parameters."""


PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
"""The pattern of a text parameter: no control characters (PostgreSQL refuses NUL in text)."""

_GROUP = Field(
    None,
    min_length=1,
    max_length=255,
    pattern=PRINTABLE,
    description="Open WebUI group id: only that group's figures (from the analyses of its members). "
    "Groups with fewer members than the minimum group size are refused (422).",
)
_USER = Field(
    None,
    pattern=r"^[0-9a-f]{64}$",
    description="Pseudonymous user id (64 hex characters, as in user-breakdown): only that user's figures.",
)


class RangeQuery(_Query):
    """A local date range: `days`, or `start_date` and `end_date`."""

    days: int | None = Field(
        None,
        ge=1,
        le=MAX_DAYS,
        description=f"Number of local days ending yesterday (1–{MAX_DAYS}). Default {DEFAULT_DAYS}.",
    )
    start_date: date | None = Field(
        None, ge=MIN_DATE, le=MAX_DATE, description="First local date, inclusive (ISO 8601)." + _BOUNDS
    )
    end_date: date | None = Field(
        None, ge=MIN_DATE, le=MAX_DATE, description="Last local date, inclusive (ISO 8601)." + _BOUNDS
    )

    def date_range(self, today: date) -> DateRange:
        """The inclusive range these parameters mean when the local date is `today`."""
        if self.start_date is None and self.end_date is None:
            days = self.days or DEFAULT_DAYS
            end = today - timedelta(days=1)
            return DateRange.between(end - timedelta(days=days - 1), end)
        if self.days is not None:
            raise InvalidParameter("days", "give either days or start_date and end_date, not both")
        start, end = checked_range(self.start_date, self.end_date, "the range")
        return DateRange.between(start, end)


class BreakdownQuery(RangeQuery):
    """A range, optionally within one group."""

    group: str | None = _GROUP


def _filter_field(dimension: Dimension) -> Any:
    return Field(
        None,
        min_length=1,
        max_length=255,
        pattern=PRINTABLE,
        description=f"Only the conversations whose {dimension.label.lower()} is this value "
        f"(as in {dimension.endpoint}); not with user_id_hash or another such filter.",
    )


class _DimensionFilters(BreakdownQuery):
    """A range, a group, and at most one dimension value (`model=`, `category=`, `tag=`, ...)."""

    def dimension_filter(self) -> tuple[Dimension, str] | None:
        """The dimension value to filter on, if one is given; 422 when several are."""
        given = [
            (dimension, value)
            for dimension in FILTER_DIMENSIONS
            if (value := getattr(self, dimension.filter_parameter, None)) is not None
        ]
        if len(given) > 1:
            names = ", ".join(dimension.filter_parameter for dimension, _ in given)
            raise InvalidParameter(given[1][0].filter_parameter, f"give at most one of {names}")
        return given[0] if given else None


# One optional `<name>=` parameter per filterable dimension of the registry.
if TYPE_CHECKING:
    FilteredQuery = _DimensionFilters
else:
    FilteredQuery = create_model(
        "FilteredQuery",
        __base__=_DimensionFilters,
        **{d.filter_parameter: (str | None, _filter_field(d)) for d in FILTER_DIMENSIONS},
    )


class SummaryQuery(FilteredQuery):
    """A range, optionally within one group or for one user (not both), optionally one dimension value."""

    user_id_hash: str | None = _USER

    def check_scope(self) -> None:
        if self.group is not None and self.user_id_hash is not None:
            raise InvalidParameter("user_id_hash", "give either group or user_id_hash, not both")
        chosen = self.dimension_filter()
        if chosen is not None and self.user_id_hash is not None:
            raise InvalidParameter(
                chosen[0].filter_parameter, "give either user_id_hash or a dimension filter, not both"
            )


class TrendQuery(SummaryQuery):
    """Same parameters as the summary."""


class UserBreakdownQuery(BreakdownQuery):
    limit: int = Field(10, ge=1, le=100, description="Number of users, most time saved first (1–100).")


class ExportQuery(FilteredQuery):
    """A range of analyses to export, optionally only those of one group or one dimension value."""


class TriggerQuery(_Query):
    """One date to process, or a range to backfill."""

    date: _dt.date | None = Field(
        None,
        ge=MIN_DATE,
        le=MAX_DATE,
        description="Local date to process (default: yesterday). Not with start_date/end_date." + _BOUNDS,
    )
    start_date: _dt.date | None = Field(
        None, ge=MIN_DATE, le=MAX_DATE, description="Backfill: first local date, inclusive." + _BOUNDS
    )
    end_date: _dt.date | None = Field(
        None, ge=MIN_DATE, le=MAX_DATE, description="Backfill: last local date, inclusive." + _BOUNDS
    )
    force: bool = Field(
        False, description="Re-estimate conversations even when their content has not changed."
    )

    def target_dates(self, today: _dt.date) -> tuple[_dt.date, _dt.date] | None:
        """None for a single dispatch (of `date`, or the dispatcher's default); else the range."""
        if self.start_date is None and self.end_date is None:
            if self.date is not None:
                checked_day(self.date, today)
            return None
        if self.date is not None:
            raise InvalidParameter("date", "give either date or start_date and end_date, not both")
        return checked_range(self.start_date, self.end_date, "a backfill", today=today)


# --- responses --------------------------------------------------------------------------

EstimatorLabel = str  # an estimator's name (`llm`, `heuristic`), `mixed` or `none`


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class DateRange(_Response):
    start_date: date = Field(description="First local date, inclusive.")
    end_date: date = Field(description="Last local date, inclusive.")
    days: int = Field(description="Number of days in the range.", json_schema_extra=_unit("days"))

    @classmethod
    def between(cls, start: date, end: date) -> DateRange:
        """The range from `start` to `end`, inclusive: the one way a range is made."""
        if end < start:
            raise ValueError(f"a range ends on or after its start ({start} … {end})")
        return cls(start_date=start, end_date=end, days=(end - start).days + 1)

    @classmethod
    def ending(cls, end: date, days: int) -> DateRange:
        """The `days` dates that end on `end`."""
        return cls.between(end - timedelta(days=days - 1), end)

    def previous(self) -> DateRange:
        """The range of equal length that ends the day before this one starts."""
        return DateRange.ending(self.start_date - timedelta(days=1), self.days)

    def through(self, last: DateRange) -> DateRange:
        """The dates from the start of this range to the end of `last`."""
        return DateRange.between(self.start_date, last.end_date)

    def dates(self) -> list[date]:
        """Every local date of the range, in order."""
        return [self.start_date + timedelta(days=offset) for offset in range(self.days)]

    def sql_params(self) -> dict[str, date]:
        """The `:start_date` / `:end_date` parameters of a query over the range."""
        return {"start_date": self.start_date, "end_date": self.end_date}


class Figures(_Response):
    """Totals over a set of analyses; time in minutes, each with its low–high band.

    In a viewer's answer (published releases) a figure that depends on a sub-partition
    (rates, success, estimators, priced and unpriced models, calibration) is null where a
    sub-cell behind it has fewer people than the minimum group size; `disclosure` says why.
    Every figure is null where nothing is published (before the first release, a withheld
    period, a group no release lists): nothing published never reads as 0.
    """

    conversation_count: int | None = _metric("conversation_count")
    message_count: int | None = _metric("message_count")
    total_active_time: int | None = _metric("total_active_time")
    total_time_saved: int | None = _metric("total_time_saved")
    total_time_saved_low: int | None = _metric("total_time_saved_low")
    total_time_saved_high: int | None = _metric("total_time_saved_high")
    total_time_saved_successful: int | None = _metric("total_time_saved_successful")
    unsuccessful_count: int | None = _metric("unsuccessful_count")
    flagged_count: int | None = _metric("flagged_count")
    flagged_time_saved: int | None = _metric("flagged_time_saved")
    new_work_conversations: int | None = _metric("new_work_conversations")
    new_work_active_minutes: int | None = _metric("new_work_active_minutes")
    total_manual_time_estimated: int | None = _metric("total_manual_time_estimated")
    total_manual_time_low: int | None = _metric("total_manual_time_low")
    total_manual_time_high: int | None = _metric("total_manual_time_high")
    avg_time_saved_per_conversation: float | None = _minutes(
        "Minutes saved per conversation, most likely (null without conversations)."
    )
    avg_time_saved_per_conversation_low: float | None = _minutes(
        "Minutes saved per conversation, low estimate (null without conversations)."
    )
    avg_time_saved_per_conversation_high: float | None = _minutes(
        "Minutes saved per conversation, high estimate (null without conversations)."
    )
    avg_confidence_level: float | None = Field(
        description="Mean estimator confidence, 0–100.", json_schema_extra=_unit("percent")
    )
    llm_estimated_count: int | None = Field(description="Conversations estimated by the LLM.")
    heuristic_estimated_count: int | None = Field(
        description="Conversations estimated by the offline heuristic."
    )
    estimator: EstimatorLabel | None = Field(
        description="Which estimator made these figures: `llm`, `heuristic` (a rough rule-based "
        "estimate), `mixed`, or `none` without conversations. With another estimator, its name."
    )
    estimators: dict[str, int] | None = Field(
        description=_METRIC_TEXT["estimator_counts"]
        + " Only estimators with at least one conversation; the counts add up to conversation_count."
    )
    # value and cost (functions/value.py); money fields are null unless ANALYTICS_HOURLY_RATE
    # and ANALYTICS_CURRENCY are set
    ai_input_tokens: int | None = Field(description=_METRIC_TEXT["ai_input_tokens"])
    ai_output_tokens: int | None = Field(description=_METRIC_TEXT["ai_output_tokens"])
    ai_cached_tokens: int | None = Field(description=_METRIC_TEXT["ai_cached_tokens"])
    ai_unpriced_tokens: int | None = Field(description=_METRIC_TEXT["ai_unpriced_tokens"])
    ai_cost_usd: float | None = Field(
        description="What the AI answers cost, in USD, priced models only (see ai_cost_complete); "
        "null when money is off or every model is unpriced."
    )
    ai_cost_complete: bool | None = Field(
        description="False when some tokens come from unpriced models: ai_cost_usd is then a lower bound."
    )
    ai_cost_known: bool | None = Field(
        description=f"False when more than {MAX_UNPRICED_SHARE:.0%} of the tokens come from unpriced "
        "models: the cost is unknown, so the return fields (hours_saved_per_100_usd, value_per_usd) "
        "are null."
    )
    analysis_cost_usd: float | None = Field(
        description="What estimating these conversations cost (this product's own LLM requests), in USD, "
        "priced models only: a lower bound when analysis_unpriced_tokens is not 0; null when money is "
        "off or none of those requests was priced (an unpriced model is never $0)."
    )
    analysis_unpriced_tokens: int | None = _metric("analysis_unpriced_tokens")
    currency: str | None = Field(description="ISO 4217 currency of the value fields; null when money is off.")
    value_saved_amount: float | None = Field(
        description="Value of the time saved, most likely, in `currency` (minutes saved × hourly rate)."
    )
    value_saved_low_amount: float | None = Field(description="Value of the time saved, low, in `currency`.")
    value_saved_high_amount: float | None = Field(description="Value of the time saved, high, in `currency`.")
    value_status: ValueStatus | None = Field(
        None,
        description="`valued`: the value fields are computed with the configured rates; `pending`: "
        "some of these days are not valued with them yet, so the value fields are null (never a "
        "0 that was not computed) until they are, see value_note; null when money is off.",
    )
    value_note: str | None = Field(None, description="When pending values will be valued; null otherwise.")
    hours_saved_per_100_usd: float | None = Field(
        description="Hours saved per 100 USD of AI cost, most likely (null without AI cost, or when "
        "the cost is unknown: see ai_cost_known)."
    )
    hours_saved_per_100_usd_low: float | None = Field(description="Hours saved per 100 USD of AI cost, low.")
    hours_saved_per_100_usd_high: float | None = Field(
        description="Hours saved per 100 USD of AI cost, high."
    )
    value_per_usd: float | None = Field(
        description="Value saved ÷ AI cost: `currency` units of value per USD of AI cost, most likely."
    )
    value_per_usd_low: float | None = Field(description="Value saved ÷ AI cost, low.")
    value_per_usd_high: float | None = Field(description="Value saved ÷ AI cost, high.")
    # calibrated figures (functions/calibrated.py); null with ANALYTICS_CALIBRATION=off
    time_saved_calibrated_minutes: int | None = _minutes(
        "Minutes saved, most likely, calibrated: each conversation's most likely minutes by hand × "
        "its estimator's bias factor for its task category (median of people's confirmed ÷ most "
        "likely), minus its active minutes, at least 0; raw where the category has too few "
        "confirmations. Null when calibration is off."
    )
    time_saved_calibrated_low_minutes: int | None = _minutes(
        "Minutes saved, calibrated, low end: most likely × the first quartile of the category's ratio."
    )
    time_saved_calibrated_high_minutes: int | None = _minutes(
        "Minutes saved, calibrated, high end: most likely × the third quartile of the category's ratio."
    )
    manual_time_calibrated_minutes: int | None = _minutes(
        "Minutes by hand, most likely × its estimator's bias factor for its task category "
        "(raw where uncalibrated)."
    )
    calibrated_conversation_count: int | None = Field(
        description="Conversations whose task category was calibrated (the others count raw), "
        "in conversations."
    )
    calibration_version: int | None = _metric("calibration_version")
    calibration_versions: list[int] | None = Field(
        description="Every calibration version the figures' days were calibrated with, oldest first "
        "(a version number, no unit); null when calibration is off or no calibration exists yet "
        "(then every calibrated field is null: nothing is calibrated before the first confirmations "
        "are aggregated)."
    )


class DailyPoint(Figures):
    analysis_date: date = Field(description="Local date the conversations are attributed to.")


class PeriodPoint(DailyPoint):
    """One published period of a viewer's trend: `analysis_date` is its first date."""

    period: str = Field(description="The period: an ISO week (`2026-W05`) or a month (`2026-05`).")
    period_end: date = Field(description="Its last date, inclusive.")
    release_version: int = Field(description="The version of the release these figures are from.")
    published_at: datetime = Field(description="When that release was published (and frozen).")


def _viewer_only(description: str, default: Any = None) -> Any:
    """A field only disclosure-controlled answers (the viewer role) carry; absent when None."""
    return Field(default, description=description, exclude_if=lambda value: value is None)


if TYPE_CHECKING:

    class WithheldPoint(_Response):
        analysis_date: date
        withheld: Literal[True] = True

else:
    WithheldPoint = create_model(
        "WithheldPoint",
        __base__=_Response,
        __doc__="A published period of a viewer's trend whose cell of the scope is withheld (fewer "
        "people than the minimum group size, or the release audit). Every figure is null.",
        analysis_date=(date, Field(description="First date of the withheld period.")),
        withheld=(Literal[True], Field(True, description="Always true: this period's figures are withheld.")),
        **{name: (None, Field(None, description="Withheld.")) for name in Figures.model_fields},
    )


class PublishedPeriod(_Response):
    """A published release a viewer's answer is made of."""

    period: str = Field(description="An ISO week (`2026-W05`) or a month (`2026-05`).")
    start_date: date
    end_date: date
    release_version: int
    published_at: datetime = Field(description="When the release was published; it never changes after.")
    withheld: str | None = Field(
        None, description="Why this period's cell of the scope is withheld (then it adds nothing)."
    )


class DisclosureInfo(_Response):
    """Which published releases a viewer's answer is made of, and what they withhold."""

    floor: int = Field(
        description="The minimum group size: no published figure, nor any combination of published "
        "figures, is the total of fewer people (proved by the release auditor before publication)."
    )
    period_kind: str | None = Field(
        description="`week` or `month`: the periods the range snapped to; null before any release."
    )
    requested_range: DateRange = Field(description="The range asked for; `range` is the snapped one.")
    periods: list[PublishedPeriod] = Field(description="The published periods of `range`, oldest first.")
    as_published_on: datetime | None = Field(
        description="The latest publication time of those releases: the figures are as published then."
    )
    withheld_periods: int = Field(
        0, description="Periods whose cell of the scope is withheld (fewer people, or the audit)."
    )
    null_figures: dict[str, str] = Field(
        default_factory=dict,
        description="Sub-partitions whose figures are null in at least one period, with the reason "
        "(e.g. `rate`: fewer people than the floor behind one hourly rate).",
    )


class GroupInfo(_Response):
    group_id: str
    name: str
    member_count: int


class PeriodComparison(_Response):
    """The period of equal length just before the requested one."""

    range: DateRange
    figures: Figures
    time_saved_change_pct: float | None = Field(
        description="Change of total_time_saved against this period, in percent (null when it was 0)."
    )
    conversation_change_pct: float | None = Field(
        description="Change of conversation_count against this period, in percent (null when it was 0)."
    )


class DimensionFilter(_Response):
    """A dimension filter that was applied (`tag=q4_report`: dimension `tag`, value `q4_report`)."""

    dimension: str
    value: str


class SummaryResponse(Figures):
    """Totals over the range.

    `total_conversations` and `confidence_level` are the specification's names;
    `conversation_count` and `avg_confidence_level` carry the same values under the
    names every other set of figures (trend points, breakdown rows) uses.
    """

    range: DateRange
    timezone: str = Field(description="IANA zone whose local dates these are.")
    group: GroupInfo | None = Field(description="The group filter, if any.")
    user_id_hash: str | None = Field(description="The user filter, if any.")
    filter: DimensionFilter | None = Field(description="The dimension filter (`model`, `tag`, ...), if any.")
    total_conversations: int | None = Field(
        description="The specification's name for conversation_count (the same value)."
    )
    confidence_level: float | None = Field(
        description="The specification's name for avg_confidence_level (the same value), 0–100.",
        json_schema_extra=_unit("percent"),
    )
    previous_period: PeriodComparison
    daily_trend: list[PeriodPoint | DailyPoint | WithheldPoint] = Field(
        description="One point per local date of the range; for the viewer role one point per "
        "published period (a withheld point where that period's cell is withheld)."
    )
    disclosure: DisclosureInfo | None = _viewer_only(
        "The published releases the figures come from, and what they withhold (the viewer role only)."
    )


class ListResponse(_Response):
    """The envelope of every list endpoint: what was asked, what one row stands for, the rows."""

    range: DateRange
    timezone: str = Field(description="IANA zone whose local dates these are.")
    group: GroupInfo | None = Field(description="The group filter, if any.")
    dimension: str = Field(
        description="What one row stands for: `date` (trend), `user`, `group`, or a breakdown dimension."
    )


class TrendResponse(ListResponse):
    dimension: Literal["date"] = "date"
    user_id_hash: str | None = Field(description="The user filter, if any.")
    filter: DimensionFilter | None = Field(description="The dimension filter (`model`, `tag`, ...), if any.")
    rows: list[PeriodPoint | DailyPoint | WithheldPoint] = Field(
        description="One point per local date of the range, oldest first; for the viewer role one "
        "point per published period (withheld points where its cell is withheld)."
    )
    disclosure: DisclosureInfo | None = _viewer_only(
        "The published releases the figures come from, and what they withhold (the viewer role only)."
    )


class UserRow(Figures):
    user_id_hash: str = Field(description="Pseudonymous user id (HMAC-SHA256, 64 hex characters).")
    active_days: int = Field(
        description="Days of the range with at least one analysed conversation.",
        json_schema_extra=_unit("days"),
    )


class UserBreakdownResponse(ListResponse):
    dimension: Literal["user"] = "user"
    limit: int = Field(description="At most this many users.")
    rows: list[UserRow] = Field(description="Most time saved first.")


class DimensionRow(Figures):
    value: str | None = Field(
        description="The dimension's value: the model id, task category, tag, ...; null for the "
        "viewer role's Everyone else row."
    )
    merged: bool | None = _viewer_only(
        "True on the Everyone else row of the viewer role: the values with too few people behind them."
    )
    merged_values: int | None = _viewer_only("How many values the Everyone else row holds.")


class BreakdownResponse(ListResponse):
    dimension: str = Field(
        description="Which dimension the rows split by.",
        json_schema_extra={"enum": [d.name for d in STORED_DIMENSIONS]},
    )
    rows: list[DimensionRow] = Field(
        description="Most time saved first (the viewer role's Everyone else row last)."
    )
    disclosure: DisclosureInfo | None = _viewer_only(
        "The published releases the figures come from, and what they withhold (the viewer role only)."
    )


class GroupRow(Figures):
    group_id: str | None = Field(description="Open WebUI group id; null on the Everyone else row.")
    name: str
    member_count: int | None = Field(description="Members; null on the Everyone else row.")
    merged: bool | None = _viewer_only(
        "True on the Everyone else row of the viewer role: people in none of the groups shown that day."
    )


class GroupBreakdownResponse(ListResponse):
    dimension: Literal["group"] = "group"
    min_group_size: int = Field(description="Groups with fewer members are not shown.")
    hidden_group_count: int = Field(description="Groups left out because they are too small.")
    rows: list[GroupRow] = Field(
        description="Every group large enough to show, most time saved first (the viewer role's "
        "Everyone else row last)."
    )
    disclosure: DisclosureInfo | None = _viewer_only(
        "The published releases the figures come from, and what they withhold (the viewer role only)."
    )


class RunInfo(_Response):
    run_id: UUID
    run_date: date
    status: RunStatus
    trigger: str
    started_at: datetime
    completed_at: datetime | None
    processing_duration_seconds: int | None
    conversations_expected: int
    conversations_processed: int
    conversations_skipped: int
    conversations_failed: int
    conversations_deferred: int
    late_arrivals: int = Field(
        description="Conversations the nightly run found by id although dated before its window "
        "(e.g. imported chats that keep their export's dates); analysed on their own dates."
    )
    estimates_reused: int
    estimates_flagged: int = Field(
        description="Of the run's analysed conversations, those whose estimate was flagged: the "
        "estimator did not know (low confidence, a band too wide, the same answer as most others)."
    )
    estimate_flags: dict[str, int] = Field(description="Flagged estimates per reason.")
    same_answer_share: float | None = Field(
        description="Share of the run's different conversations that got one same answer, when that "
        "reached ANALYTICS_FLAG_SAME_ANSWER_SHARE (null otherwise)."
    )
    flag_note: str | None = Field(
        description='The flags in one sentence, e.g. "the estimator gave the same answer to 95 % of '
        'conversations; 16 of 16 estimates flagged (same answer as most others 16)".'
    )
    total_llm_requests: int
    total_llm_cost_usd: float | None = Field(
        description="What the run's own LLM requests cost, in USD, priced models only (a lower bound "
        "when total_llm_unpriced_tokens is not 0); null when none of them was priced, never $0 for "
        "an unpriced model."
    )
    total_llm_unpriced_tokens: int = Field(
        description="Tokens (prompt and completion) of the run's own requests to models without a price."
    )
    error_message: str | None


class NextRun(_Response):
    scheduled_at: datetime | None = Field(description="Next scheduled run, in the configured zone.")
    schedule: str = Field(description="Cron schedule.")
    timezone: str
    source: Literal["cloud_scheduler", "computed"] = Field(
        description="`cloud_scheduler`: read from the deployed job; `computed`: from the settings."
    )
    job_state: str | None = Field(description="The Cloud Scheduler job's state (ENABLED, PAUSED, ...).")
    last_attempt_status: str | None = Field(description="Outcome of the job's last attempt, if known.")
    error: str | None = Field(description="Why the job could not be read, if it could not.")


def _estimator_names(schema: dict[str, Any]) -> None:
    """The enum of registered estimator names, read from the registry when the schema is made."""
    schema["enum"] = list(estimator_registry.names())


class EstimatorInfo(_Response):
    """A registered estimator (`shared/estimators/registry.py`)."""

    name: str = Field(description="Stored with every analysis it makes.", json_schema_extra=_estimator_names)
    label: str = Field(description="Short label, as on the dashboard.")
    description: str = Field(description="What makes its estimates.")
    settings: list[str] = Field(description="The environment variables it reads.")
    price_source: str = Field(description="Where the cost of its own estimates comes from.")
    configured: bool = Field(description="The estimator new analyses use.")


class SystemInfo(_Response):
    environment: str
    timezone: str
    idle_threshold_minutes: int
    estimator: str = Field(
        description="Estimator new analyses use (one of the registered estimators).",
        json_schema_extra=_estimator_names,
    )
    estimator_model: str | None
    prompt_version: str | None = Field(description="Version stamped on new estimates.")
    processing_version: str
    min_group_size: int
    stale_run_minutes: int
    estimators: list[EstimatorInfo] = Field(
        default_factory=list, description="Every registered estimator, the configured one marked."
    )


class HealthResponse(_Response):
    status: Literal["healthy", "running", "unhealthy"] = Field(
        description="`healthy`: the last run completed; `running`: one is in progress; "
        "`unhealthy`: the last run failed or went stale, or there is none, or a release viewers are "
        "due is refused by the auditor, held back by a date without a completed run, or published "
        "with cells the auditor's budget could not prove."
    )
    problems: list[str] = Field(description="Human-readable reasons for a status other than healthy.")
    last_run: RunInfo | None
    last_completed_run: RunInfo | None
    stale_runs_closed: list[UUID] = Field(
        description="Kept for compatibility; always empty: a read never closes a run (see `stale_runs`)."
    )
    stale_runs: list[UUID] = Field(
        default_factory=list,
        description="Open runs with no progress for the stale limit; the next dispatch closes them as stale.",
    )
    recent_runs: list[RunInfo] = Field(
        default_factory=list,
        description="The latest other runs of every trigger (manual and backfill runs are listed as such).",
    )
    latest_analysis_date: date | None = Field(description="Newest local date with aggregated figures.")
    next_run: NextRun
    system_info: SystemInfo


class TriggeredRun(_Response):
    run_id: UUID
    run_date: date
    status: RunStatus
    expected: int = Field(description="Conversations enqueued for analysis.")
    deferred: int = Field(description="Conversations left for the next run (over the per-run limit).")
    joined_existing: bool = Field(description="True when an open run for that date was joined.")
    late_arrivals: int = Field(
        0, description="Of `expected`: conversations never seen before, dated before the run's window."
    )


class TriggerResponse(_Response):
    status: Literal["processing_started", "nothing_to_do"] = Field(
        description="`nothing_to_do` when no conversation was planned on any run (every run is then "
        "already completed); `processing_started` otherwise."
    )
    job_id: UUID = Field(description="The first run's id (the specification's name).")
    run_ids: list[UUID]
    runs: list[TriggeredRun]


class ParameterProblem(_Response):
    parameter: str
    message: str


class ErrorResponse(_Response):
    error: str = Field(description="Machine-readable code, e.g. `invalid_parameter`, `unauthorized`.")
    message: str
    detail: list[ParameterProblem] | None = None
