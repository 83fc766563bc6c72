"""The calibration report: confirmations against estimates, per estimator / model / prompt version.

Each confirmation with minutes (not "AI did not help") is compared with the estimate
the person was shown; a confirmation that arrived before its conversation was analysed
is compared with the conversation's analysis once there is one, and until then it
only counts as "awaiting analysis". The groups are (estimator, estimator model, prompt
version): a new prompt or model starts its own calibration instead of being averaged
with the old one. Inside each group: overall, and per task category. The statistics
are those of `functions.calibration_stats`.

`evaluate_labels` computes the same report for an admin's own records (a CSV of
conversation id and minutes, e.g. a time-tracking export) against the stored
analyses, storing nothing.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from functions.calibration_stats import DEFAULT_RESAMPLES, Agreement, Pair, agreement
from shared.errors import RequestRejected

__all__ = [
    "MAX_CONFIRMED_MINUTES",
    "MAX_LABEL_ROWS",
    "AgreementFigures",
    "CalibrationReport",
    "CategoryCalibration",
    "ConfirmationPairs",
    "EstimatorCalibration",
    "LabelledPair",
    "LabelsRejected",
    "build_report",
    "calibration_status",
    "confirmation_report",
    "evaluate_labels",
    "load_confirmation_pairs",
    "read_labels",
    "render_text",
    "scatter_points",
]

MAX_CONFIRMED_MINUTES = 2400
"""The most a confirmation (or a label) may say: 40 hours, a working week; migration 006's CHECK
repeats it. A conversation-sized task that would take longer by hand is not one task, and a
typo (`4500` for `45`) would otherwise dominate every calibration."""

MAX_LABEL_ROWS = 100_000
"""Rows an `evaluate --labels` file may have (bounded memory and time)."""


@dataclass(frozen=True, slots=True)
class LabelledPair:
    """One comparison and the estimate's provenance."""

    estimator: str
    model: str | None
    prompt_version: str | None
    category: str
    pair: Pair
    conversation_id: str | None = None  # stored confirmations: who confirmed which conversation
    user_id_hash: str | None = None


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class AgreementFigures(_Out):
    """Agreement between people's minutes and the estimate; numbers are null below the minimum."""

    confirmations: int = Field(description="Confirmations with minutes compared with an estimate.")
    enough: bool = Field(description="At least the minimum number of confirmations.")
    message: str | None = Field(description='"not enough confirmations (n of minimum)" when not enough.')
    spearman_rho: float | None = Field(description="Spearman's ρ, confirmed vs most likely minutes.")
    rho_low: float | None = Field(description="Lower end of ρ's 95 % bootstrap interval.")
    rho_high: float | None = Field(description="Upper end of ρ's 95 % bootstrap interval.")
    bias: float | None = Field(description="Median of confirmed ÷ most likely (1 = no bias).")
    bias_q1: float | None = Field(description="First quartile of confirmed ÷ most likely.")
    bias_q3: float | None = Field(description="Third quartile of confirmed ÷ most likely.")
    band_coverage: float | None = Field(description="Share of confirmations inside low–high (0–1).")

    @classmethod
    def of(cls, figures: Agreement) -> AgreementFigures:
        def rounded(value: float | None, digits: int = 3) -> float | None:
            return None if value is None else round(value, digits)

        return cls(
            confirmations=figures.confirmations,
            enough=figures.enough,
            message=figures.message,
            spearman_rho=rounded(figures.spearman_rho),
            rho_low=rounded(figures.rho_interval[0]) if figures.rho_interval else None,
            rho_high=rounded(figures.rho_interval[1]) if figures.rho_interval else None,
            bias=rounded(figures.bias),
            bias_q1=rounded(figures.bias_iqr[0]) if figures.bias_iqr else None,
            bias_q3=rounded(figures.bias_iqr[1]) if figures.bias_iqr else None,
            band_coverage=rounded(figures.band_coverage),
        )


class CategoryCalibration(_Out):
    task_category: str
    agreement: AgreementFigures


class EstimatorCalibration(_Out):
    """One estimator configuration: overall and per task category."""

    estimator: str = Field(description="`llm` or `heuristic`.")
    model: str | None = Field(description="The estimator's model (LLM estimates).")
    prompt_version: str | None = Field(description="Version of the estimator's prompt or rules.")
    overall: AgreementFigures
    categories: list[CategoryCalibration]


class CalibrationReport(_Out):
    """How well the estimates agree with what people say the work would have taken."""

    minimum_confirmations: int = Field(description="Below this many, a group shows no number.")
    confirmations: int = Field(description="Confirmations stored (or label rows read).")
    did_not_help: int = Field(description='Confirmations saying "AI did not help" (no minutes to compare).')
    new_work: int = Field(
        0,
        description='Answers saying "I would not have done this without AI" (new work: no minutes to compare).',
    )
    awaiting_analysis: int = Field(description="Confirmations whose conversation is not analysed yet.")
    compared: int = Field(description="Confirmations compared with an estimate.")
    estimators: list[EstimatorCalibration]


def _seed(*parts: object) -> int:
    """A stable seed per group, so a report is the same every time for the same data."""
    return zlib.crc32("\x1f".join(str(part) for part in parts).encode())


def build_report(
    pairs: Sequence[LabelledPair],
    *,
    minimum: int,
    confirmations: int,
    did_not_help: int = 0,
    awaiting_analysis: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    new_work: int = 0,
) -> CalibrationReport:
    """Group the pairs by estimator configuration, then by category, and compute each agreement."""
    groups: dict[tuple[str, str | None, str | None], list[LabelledPair]] = defaultdict(list)
    for item in pairs:
        groups[(item.estimator, item.model, item.prompt_version)].append(item)
    estimators = []
    for key in sorted(groups, key=lambda k: (-len(groups[k]), tuple(str(part) for part in k))):
        members = groups[key]
        by_category: dict[str, list[Pair]] = defaultdict(list)
        for item in members:
            by_category[item.category].append(item.pair)
        overall = agreement(
            [item.pair for item in members], minimum=minimum, resamples=resamples, seed=_seed(*key)
        )
        categories = [
            CategoryCalibration(
                task_category=category,
                agreement=AgreementFigures.of(
                    agreement(
                        by_category[category],
                        minimum=minimum,
                        resamples=resamples,
                        seed=_seed(*key, category),
                    )
                ),
            )
            for category in sorted(by_category, key=lambda c: (-len(by_category[c]), c))
        ]
        estimators.append(
            EstimatorCalibration(
                estimator=key[0],
                model=key[1],
                prompt_version=key[2],
                overall=AgreementFigures.of(overall),
                categories=categories,
            )
        )
    return CalibrationReport(
        minimum_confirmations=minimum,
        confirmations=confirmations,
        did_not_help=did_not_help,
        new_work=new_work,
        awaiting_analysis=awaiting_analysis,
        compared=len(pairs),
        estimators=estimators,
    )


# --- from the database -----------------------------------------------------------------------

_CONFIRMATIONS_SQL = sa.text(
    """
    SELECT c.conversation_id, c.user_id_hash, c.confirmed_minutes, c.did_not_help, c.new_work, (c.seen_most_likely IS NOT NULL) AS seen,
           CASE WHEN c.seen_most_likely IS NOT NULL THEN c.seen_low ELSE a.manual_time_low END AS low,
           CASE WHEN c.seen_most_likely IS NOT NULL THEN c.seen_most_likely
                ELSE a.manual_time_most_likely END AS most_likely,
           CASE WHEN c.seen_most_likely IS NOT NULL THEN c.seen_high ELSE a.manual_time_high END AS high,
           CASE WHEN c.seen_most_likely IS NOT NULL THEN c.seen_estimator ELSE a.estimator END AS estimator,
           CASE WHEN c.seen_most_likely IS NOT NULL THEN c.seen_model ELSE a.estimator_model END AS model,
           CASE WHEN c.seen_most_likely IS NOT NULL THEN c.seen_prompt_version
                ELSE a.prompt_version END AS prompt_version,
           CASE WHEN c.seen_most_likely IS NOT NULL THEN c.seen_task_category
                ELSE a.task_category END AS category
    FROM time_confirmations c
    LEFT JOIN conversation_analysis a ON a.conversation_id = c.conversation_id AND a.status = 'analyzed'
    ORDER BY c.conversation_id, c.user_id_hash
    """
)


@dataclass(frozen=True, slots=True)
class ConfirmationPairs:
    """The stored confirmations, split into comparable pairs and the rest."""

    pairs: list[LabelledPair]
    confirmations: int
    did_not_help: int
    awaiting_analysis: int
    new_work: int = 0


def load_confirmation_pairs(connection: Connection) -> ConfirmationPairs:
    """Every stored confirmation with the estimate it is compared with (see the module docstring)."""
    pairs: list[LabelledPair] = []
    total = did_not_help = awaiting = new_work = 0
    for row in connection.execute(_CONFIRMATIONS_SQL):
        total += 1
        if row.did_not_help:
            did_not_help += 1
        elif row.new_work:  # no minutes: the person would not have done it by hand
            new_work += 1
        elif row.most_likely is None:
            awaiting += 1
        else:
            pairs.append(
                LabelledPair(
                    estimator=row.estimator,
                    model=row.model,
                    prompt_version=row.prompt_version,
                    category=row.category or "other",
                    pair=Pair(row.confirmed_minutes, row.low, row.most_likely, row.high),
                    conversation_id=row.conversation_id,
                    user_id_hash=row.user_id_hash,
                )
            )
    return ConfirmationPairs(pairs, total, did_not_help, awaiting, new_work)


def confirmation_report(connection: Connection, *, minimum: int) -> CalibrationReport:
    """The calibration report over every stored confirmation."""
    found = load_confirmation_pairs(connection)
    return build_report(
        found.pairs,
        minimum=minimum,
        confirmations=found.confirmations,
        did_not_help=found.did_not_help,
        awaiting_analysis=found.awaiting_analysis,
        new_work=found.new_work,
    )


# --- an admin's own records ------------------------------------------------------------------


class LabelsRejected(RequestRejected):
    """A labels file that cannot be read; the message names the line."""


def read_labels(text: str, *, max_minutes: int = MAX_CONFIRMED_MINUTES) -> dict[str, int]:
    """`conversation id, minutes` rows (a header row is allowed; a later duplicate id wins)."""
    labels: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text))
    for line_number, row in enumerate(reader, start=1):
        if line_number > MAX_LABEL_ROWS + 1:
            raise LabelsRejected(f"more than {MAX_LABEL_ROWS} rows")
        cells = [cell.strip() for cell in row]
        if not cells or not any(cells):
            continue
        if len(cells) < 2:
            raise LabelsRejected(f"line {line_number}: expected `conversation id, minutes`")
        conversation_id, minutes_text = cells[0], cells[1]
        try:
            minutes = float(minutes_text.replace(",", ".")) if minutes_text else None
        except ValueError:
            minutes = None
        if minutes is None:
            if line_number == 1:
                continue  # a header row
            raise LabelsRejected(f"line {line_number}: {minutes_text!r} is not a number of minutes")
        if not conversation_id or len(conversation_id) > 255:
            raise LabelsRejected(f"line {line_number}: the conversation id is empty or too long")
        if not 1 <= minutes <= max_minutes:
            raise LabelsRejected(f"line {line_number}: minutes must be between 1 and {max_minutes}")
        labels[conversation_id] = round(minutes)
    return labels


def evaluate_labels(
    connection: Connection, labels: dict[str, int], *, minimum: int, estimator: str | None = None
) -> CalibrationReport:
    """The agreement of the stored analyses (of `estimator`, or any) with the admin's minutes; reads only."""
    analysis = sa.table(
        "conversation_analysis",
        sa.column("conversation_id"),
        sa.column("status"),
        sa.column("manual_time_low"),
        sa.column("manual_time_most_likely"),
        sa.column("manual_time_high"),
        sa.column("estimator"),
        sa.column("estimator_model"),
        sa.column("prompt_version"),
        sa.column("task_category"),
    )
    pairs: list[LabelledPair] = []
    ids = list(labels)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        rows = connection.execute(
            sa.select(analysis).where(
                analysis.c.conversation_id.in_(chunk),
                analysis.c.status == "analyzed",
                *([analysis.c.estimator == estimator] if estimator else []),
            )
        )
        for row in rows:
            pairs.append(
                LabelledPair(
                    estimator=row.estimator,
                    model=row.estimator_model,
                    prompt_version=row.prompt_version,
                    category=row.task_category or "other",
                    pair=Pair(
                        labels[row.conversation_id],
                        row.manual_time_low,
                        row.manual_time_most_likely,
                        row.manual_time_high,
                    ),
                )
            )
    return build_report(
        pairs, minimum=minimum, confirmations=len(labels), awaiting_analysis=len(labels) - len(pairs)
    )


# --- as text (the CLI) -----------------------------------------------------------------------


def _figures_line(figures: AgreementFigures) -> str:
    if not figures.enough:
        return str(figures.message)
    parts = []
    if figures.spearman_rho is not None:
        interval = f" [{figures.rho_low:.2f}, {figures.rho_high:.2f}]" if figures.rho_low is not None else ""
        parts.append(f"ρ {figures.spearman_rho:.2f}{interval}")
    if figures.bias is not None:
        parts.append(f"bias ×{figures.bias:.2f} (IQR {figures.bias_q1:.2f}–{figures.bias_q3:.2f})")
    if figures.band_coverage is not None:
        parts.append(f"in band {figures.band_coverage:.0%}")
    return f"n={figures.confirmations}: " + ", ".join(parts)


def render_text(report: CalibrationReport, *, what: str = "confirmations") -> str:
    """The report as plain text lines."""
    lines = [
        f"{report.confirmations} {what}, {report.compared} compared with an estimate, "
        f"{report.awaiting_analysis} awaiting analysis, {report.did_not_help} 'AI did not help'; "
        f"minimum {report.minimum_confirmations} per group"
    ]
    if not report.estimators:
        lines.append("nothing to compare yet")
    for group in report.estimators:
        name = " / ".join(part for part in (group.estimator, group.model, group.prompt_version) if part)
        lines.append(f"{name}: {_figures_line(group.overall)}")
        lines.extend(f"  {row.task_category}: {_figures_line(row.agreement)}" for row in group.categories)
    return "\n".join(lines)


def calibration_status(report: CalibrationReport) -> str:
    """One line for printed pages: how far the estimates have been checked against people.

    "not calibrated: no confirmations yet", "not enough confirmations (7 of 20)", or per
    estimator configuration its agreement figures (ρ, bias, band coverage).
    """
    if not report.estimators:
        return "not calibrated: no confirmations yet"
    lines = []
    for group in report.estimators:
        name = " / ".join(part for part in (group.estimator, group.model, group.prompt_version) if part)
        lines.append(f"{name}: {_figures_line(group.overall)}")
    return "; ".join(lines)


def scatter_points(pairs: Iterable[LabelledPair], *, limit: int = 2000) -> list[tuple[str, float, float]]:
    """(estimator label, most likely, confirmed) for the chart, at most `limit` of them."""
    points = []
    for item in pairs:
        label = " / ".join(part for part in (item.estimator, item.model) if part)
        points.append((label, item.pair.most_likely, item.pair.confirmed))
        if len(points) >= limit:
            break
    return points
