"""Calibrated figures: versioned calibrations computed from the confirmations, and which date uses which.

A calibration is, per estimator (`llm`, `heuristic`: they err differently) and task
category, a **bias factor** (the median of confirmed ÷ most likely minutes,
`calibration_stats.ratio_quartiles`) and a **band** (the first and third quartiles of
that ratio), from the (estimator, category) pairs with at least
`ANALYTICS_CALIBRATION_MIN_CONFIRMATIONS` confirmations; other categories keep their raw
figures (factor 1, not calibrated). A conversation's calibrated minutes by hand are its
most likely × the factor (low and high: most likely × the quartiles); its calibrated time
saved is max(0, that − active minutes), like the raw figure.

Versions, the way `value.py` records rates:

* The aggregator (`record_calibration`, when `ANALYTICS_CALIBRATION` is not `off`) stores a
  new version only when the confirmations it would use changed (a fingerprint of exactly
  those confirmations and the minimum); the confirmations themselves are stored with it.
* A date takes the latest version the first time it is aggregated after one exists
  (`aggregates.recompute_dates`, every rebuild) and keeps it afterwards, even when it is
  rebuilt for a late conversation. The first version ever computed applies to every date
  aggregated before it (there was nothing to keep).
* `recalibrate` (`python main.py recalibrate --from YYYY-MM-DD`) moves every date from then
  on to the latest version, on purpose, and rebuilds them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from functions.aggregates import recompute_dates
from functions.calibration import LabelledPair, load_confirmation_pairs
from functions.calibration_stats import quartiles, ratio_quartiles
from functions.metrics import saved_cell
from functions.value import FIRST_RATE_DATE, dates_with_aggregates
from shared.config import CalibrationMode, Settings

__all__ = [
    "CALIBRATED_COLUMNS",
    "CALIBRATED_FIELDS",
    "CSV_CALIBRATED_COLUMNS",
    "VERSION_RANGE_SQL",
    "CalibrationVersion",
    "CategoryFactor",
    "FactorChange",
    "PendingChange",
    "calibrated_figures",
    "calibration_note",
    "category_factors",
    "fingerprint",
    "latest_version",
    "pending_change",
    "recalibrate",
    "recalibrate_history",
    "record_calibration",
    "settings_bounds",
    "versions",
]

MIN_CALIBRATION_PEOPLE = 3  # fewest people whose median no single one of them can move at will
PERSON_WEIGHT = 1
"""What one person's answers weigh in a factor, however many they gave: one median ratio."""
UNBOUNDED = (0.0, math.inf)
_log = logging.getLogger(__name__)
_FACTOR_DIGITS = 4  # NUMERIC(10, 4) in migration 008
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class CategoryFactor:
    """One estimator's task category in a calibration: its factor and band, or 1 when not calibrated."""

    estimator: str
    task_category: str
    confirmations: int
    calibrated: bool
    factor: Decimal
    factor_low: Decimal
    factor_high: Decimal
    unbounded: Decimal | None = None  # what the answers said when the factor was bounded


@dataclass(frozen=True, slots=True)
class CalibrationVersion:
    """A stored calibration version."""

    version: int
    computed_at: Any
    min_confirmations: int
    confirmations: int
    fingerprint: str


def _rounded(value: float) -> Decimal:
    return Decimal(str(round(value, _FACTOR_DIGITS)))


def _bounded(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def category_factors(
    pairs: Sequence[LabelledPair],
    *,
    minimum: int,
    min_people: int = 1,
    bounds: tuple[float, float] = UNBOUNDED,
) -> list[CategoryFactor]:
    """The factor and band of every (estimator, category) the pairs cover.

    Per estimator, because a language model and the heuristic err differently: answers about
    one never correct the other's figures. Poisoning is resisted three ways:

    * **each person weighs once** (`PERSON_WEIGHT`): a person's answers are reduced to their
      own median ratio first, so answering often gives no more say than answering once;
    * **robust**: the factor is the median of the people's medians (the trimmed mean that
      trims all but the middle; the band their quartiles), so fewer than half of the people
      cannot move it outside the range the others' answers span; and an (estimator,
      category) is calibrated only from `minimum` answers given by at least `min_people`
      people;
    * **bounded**: factor and band are held inside `bounds` (`ANALYTICS_CALIBRATION_FACTOR_MIN`
      / `_MAX`), so even a majority cannot scale the figures beyond them; `unbounded` keeps
      what the answers said.
    """
    by_key: dict[tuple[str, str], list[LabelledPair]] = defaultdict(list)
    for item in pairs:
        by_key[(item.estimator, item.category)].append(item)
    factors = []
    for estimator, category in sorted(by_key):
        members = by_key[(estimator, category)]
        by_person: dict[str, list[LabelledPair]] = defaultdict(list)
        for index, item in enumerate(members):  # a label row without a person is its own person
            by_person[item.user_id_hash or f"row-{index}"].append(item)
        person_medians = [  # PERSON_WEIGHT: one value per person, however many answers
            spread[1]
            for answers in by_person.values()
            if (spread := ratio_quartiles([item.pair for item in answers])) is not None
        ]
        if len(members) >= minimum and len(person_medians) >= min_people and person_medians:
            q1, median, q3 = quartiles(person_medians)
            factor = _bounded(median, bounds)
            factors.append(
                CategoryFactor(
                    estimator,
                    category,
                    len(members),
                    True,
                    _rounded(factor),
                    _rounded(_bounded(q1, bounds)),
                    _rounded(_bounded(q3, bounds)),
                    unbounded=None if factor == median else _rounded(median),
                )
            )
        else:
            factors.append(CategoryFactor(estimator, category, len(members), False, _ONE, _ONE, _ONE))
    return factors


_Used = tuple[str, str, str, str, int, int]
"""(conversation, person, estimator, category, confirmed, most likely) of one confirmation used."""


def _used(pairs: Iterable[LabelledPair]) -> list[_Used]:
    """What each stored confirmation contributes to a calibration, sorted."""
    return sorted(
        (
            str(item.conversation_id),
            str(item.user_id_hash),
            item.estimator,
            item.category,
            round(item.pair.confirmed),
            round(item.pair.most_likely),
        )
        for item in pairs
    )


def fingerprint(
    used: Sequence[_Used],
    *,
    minimum: int,
    min_people: int = 1,
    bounds: tuple[float, float] = UNBOUNDED,
) -> str:
    """SHA-256 of the confirmations a calibration uses and its rules (a change makes a new version)."""
    rules: dict[str, Any] = {"minimum": minimum} | ({"min_people": min_people} if min_people > 1 else {})
    if bounds != UNBOUNDED:
        rules["bounds"] = list(bounds)
    payload = json.dumps(rules | {"confirmations": list(used)}, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def settings_bounds(settings: Settings) -> tuple[float, float]:
    """The factor bounds these settings set (`ANALYTICS_CALIBRATION_FACTOR_MIN` / `_MAX`)."""
    return (settings.calibration_factor_min, settings.calibration_factor_max)


def latest_version(connection: Connection) -> int | None:
    """The newest calibration version, None before the first."""
    return connection.execute(sa.text("SELECT max(version) FROM calibrations")).scalar_one()


_APPLIED_FACTORS = sa.text(
    "SELECT estimator, task_category, factor FROM calibration_factors WHERE calibrated AND version = "
    "(SELECT max(version) FROM calibrations WHERE NOT pending)"
)


def _exceeds(old: Decimal, new: Decimal, threshold: float) -> bool:
    """`new` is more than `threshold` times `old`, or less than `old` ÷ `threshold`."""
    if old <= 0 or new <= 0:
        return old != new
    ratio = float(new / old)
    return ratio > threshold or ratio < 1 / threshold


def _changes(
    applied: Mapping[tuple[str, str], Decimal], factors: Iterable[CategoryFactor], threshold: float
) -> list[FactorChange]:
    """The factors moved beyond `threshold` against the applied ones (a newly calibrated category is
    not a change: its first factor applies at once, inside the bounds)."""
    return [
        FactorChange(f.estimator, f.task_category, applied[key], f.factor, f.unbounded)
        for f in factors
        if f.calibrated
        and (key := (f.estimator, f.task_category)) in applied
        and _exceeds(applied[key], f.factor, threshold)
    ]


def _unassigned_dates(connection: Connection) -> list[date]:
    """Dates with aggregates that no calibration version was assigned to yet."""
    assigned = set(connection.execute(sa.text("SELECT analysis_date FROM calibration_dates")).scalars())
    return [day for day in dates_with_aggregates(connection, FIRST_RATE_DATE) if day not in assigned]


def record_calibration(connection: Connection, settings: Settings) -> list[date]:
    """Store a new calibration version if the confirmations changed; the dates to rebuild because of it.

    Nothing is stored before there is a confirmation to compare. Dates aggregated before the
    first version are rebuilt with it; dates that already have a version keep it. A version
    that moves an applied factor by more than `ANALYTICS_CALIBRATION_CHANGE_THRESHOLD` is
    stored *pending*: no date takes it until an admin runs `recalibrate` (`pending_change`
    says what would change).
    """
    connection.execute(sa.text("LOCK TABLE calibrations IN SHARE ROW EXCLUSIVE MODE"))
    minimum = settings.calibration_min_confirmations
    # the disclosure floor, and at least 3: the median of two people's answers is their mean
    min_people = max(settings.min_group_size, MIN_CALIBRATION_PEOPLE)
    bounds = settings_bounds(settings)
    pairs = [item for item in load_confirmation_pairs(connection).pairs if item.conversation_id]
    used = _used(pairs)
    digest = fingerprint(used, minimum=minimum, min_people=min_people, bounds=bounds)
    latest = (
        connection.execute(
            sa.text("SELECT version, fingerprint FROM calibrations ORDER BY version DESC LIMIT 1")
        )
        .mappings()
        .first()
    )
    if latest is None and not used:
        return []
    if latest is not None and latest["fingerprint"] == digest:
        return []
    factors = category_factors(pairs, minimum=minimum, min_people=min_people, bounds=bounds)
    applied = {(row.estimator, row.task_category): row.factor for row in connection.execute(_APPLIED_FACTORS)}
    pending = bool(_changes(applied, factors, settings.calibration_change_threshold))
    version = connection.execute(
        sa.text(
            "INSERT INTO calibrations (min_confirmations, min_people, confirmations, fingerprint, pending) "
            "VALUES (:minimum, :min_people, :confirmations, :fingerprint, :pending) RETURNING version"
        ),
        {
            "minimum": minimum,
            "min_people": min_people,
            "confirmations": len(used),
            "fingerprint": digest,
            "pending": pending,
        },
    ).scalar_one()
    if pending:
        _log.warning(
            "calibration version %d moves a factor beyond ×%s: it waits for `recalibrate`",
            version,
            settings.calibration_change_threshold,
        )
    if factors:
        connection.execute(
            sa.text(
                "INSERT INTO calibration_factors (version, estimator, task_category, confirmations, "
                "calibrated, factor, factor_low, factor_high, unbounded_factor) VALUES (:version, "
                ":estimator, :task_category, :confirmations, :calibrated, :factor, :factor_low, "
                ":factor_high, :unbounded)"
            ),
            [
                {
                    "version": version,
                    "estimator": f.estimator,
                    "task_category": f.task_category,
                    "confirmations": f.confirmations,
                    "calibrated": f.calibrated,
                    "factor": f.factor,
                    "factor_low": f.factor_low,
                    "factor_high": f.factor_high,
                    "unbounded": f.unbounded,
                }
                for f in factors
            ],
        )
    if used:
        connection.execute(
            sa.text(
                "INSERT INTO calibration_confirmations (version, conversation_id, user_id_hash, "
                "estimator, task_category, confirmed_minutes, most_likely) VALUES (:version, "
                ":conversation_id, :user_id_hash, :estimator, :task_category, :confirmed_minutes, :most_likely)"
            ),
            [
                {
                    "version": version,
                    "conversation_id": conversation_id,
                    "user_id_hash": user_id_hash,
                    "estimator": estimator,
                    "task_category": category,
                    "confirmed_minutes": confirmed,
                    "most_likely": most_likely,
                }
                for conversation_id, user_id_hash, estimator, category, confirmed, most_likely in used
            ],
        )
    return _unassigned_dates(connection)


def recalibrate(connection: Connection, since: date) -> list[date]:
    """Apply the latest version (pending or not) and move every date from `since` on to it; the dates."""
    connection.execute(sa.text("LOCK TABLE calibrations IN SHARE ROW EXCLUSIVE MODE"))
    connection.execute(sa.text("UPDATE calibrations SET pending = false WHERE pending"))
    connection.execute(
        sa.text(
            "UPDATE calibration_dates SET version = (SELECT max(version) FROM calibrations), "
            "assigned_at = now() WHERE analysis_date >= :since"
        ),
        {"since": since},
    )
    return dates_with_aggregates(connection, since)


def recalibrate_history(engine: Engine, since: date) -> list[date]:
    """`recalibrate` and the rebuild of every date it touches, in one transaction; the dates."""
    with engine.begin() as connection:
        dates = recalibrate(connection, since)
        recompute_dates(connection, dates)
    return dates


def versions(connection: Connection, numbers: Iterable[int]) -> dict[int, CalibrationVersion]:
    """The stored calibration versions with these numbers."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    return {
        row["version"]: CalibrationVersion(
            version=row["version"],
            computed_at=row["computed_at"],
            min_confirmations=row["min_confirmations"],
            confirmations=row["confirmations"],
            fingerprint=row["fingerprint"],
        )
        for row in connection.execute(
            sa.text("SELECT * FROM calibrations WHERE version = ANY(:versions) ORDER BY version"),
            {"versions": wanted},
        ).mappings()
    }


@dataclass(frozen=True, slots=True)
class FactorChange:
    """A factor a pending version would change: applied → new (and what the answers said, if bounded)."""

    estimator: str
    task_category: str
    applied: Decimal
    new: Decimal
    unbounded: Decimal | None = None

    def __str__(self) -> str:
        bounded = f" (bounded; the answers say {self.unbounded:.2f})" if self.unbounded is not None else ""
        return f"{self.task_category} ({self.estimator}) {self.applied:.2f} → {self.new:.2f}{bounded}"


@dataclass(frozen=True, slots=True)
class PendingChange:
    """The newest calibration version when it waits for `recalibrate`, and the factors it changes."""

    version: int
    changes: tuple[FactorChange, ...]

    @property
    def moved(self) -> str:
        """`coding (llm) 2.50 → 4.00 (bounded; the answers say 100.00)`, one per factor moved."""
        return "; ".join(str(change) for change in self.changes) or "factors within the threshold"

    def __str__(self) -> str:
        return f"a calibration change is pending: {self.moved}; run recalibrate to apply"


def pending_change(connection: Connection, settings: Settings) -> PendingChange | None:
    """The pending calibration version (the newest, when it is pending), None when there is none."""
    newest = connection.execute(
        sa.text(
            "SELECT version FROM calibrations WHERE pending AND version = (SELECT max(version) FROM calibrations)"
        )
    ).scalar_one_or_none()
    if newest is None:
        return None
    applied = {(row.estimator, row.task_category): row.factor for row in connection.execute(_APPLIED_FACTORS)}
    factors = [
        CategoryFactor(
            row.estimator,
            row.task_category,
            row.confirmations,
            row.calibrated,
            row.factor,
            row.factor_low,
            row.factor_high,
            row.unbounded_factor,
        )
        for row in connection.execute(
            sa.text("SELECT * FROM calibration_factors WHERE version = :v ORDER BY estimator, task_category"),
            {"v": newest},
        )
    ]
    return PendingChange(newest, tuple(_changes(applied, factors, settings.calibration_change_threshold)))


# --- the calibrated fields of the API's figures ----------------------------------------------

CALIBRATED_COLUMNS = (
    "total_manual_time_calibrated",
    "total_time_saved_calibrated",
    "total_time_saved_calibrated_low",
    "total_time_saved_calibrated_high",
    "calibrated_count",
)
"""Summed aggregate columns that are read only through the calibrated fields below."""

VERSION_RANGE_SQL = "array_remove(array_agg(DISTINCT calibration_version), NULL) AS calibration_versions"
"""The calibration versions of the selected aggregate rows (for a `SELECT` beside the sums)."""


CALIBRATED_FIELDS = (
    "time_saved_calibrated_minutes",
    "time_saved_calibrated_low_minutes",
    "time_saved_calibrated_high_minutes",
    "manual_time_calibrated_minutes",
    "calibrated_conversation_count",
    "calibration_version",
    "calibration_versions",
)
"""The calibrated fields of `Figures` (all null when nothing is calibrated)."""


def calibrated_figures(
    values: Mapping[str, int], versions_used: Sequence[int] | None, settings: Settings
) -> dict[str, Any]:
    """The calibrated fields of `Figures` from summed aggregate columns.

    Nulls when calibration is off, and when no date of the range has a calibration version
    yet (before the first confirmations are aggregated nothing is calibrated: no figure
    pretends to be).
    """
    used = sorted(versions_used or [])
    if settings.calibration is CalibrationMode.OFF or not used:
        return dict.fromkeys(CALIBRATED_FIELDS)
    return {
        "time_saved_calibrated_minutes": values["total_time_saved_calibrated"],
        "time_saved_calibrated_low_minutes": values["total_time_saved_calibrated_low"],
        "time_saved_calibrated_high_minutes": values["total_time_saved_calibrated_high"],
        "manual_time_calibrated_minutes": values["total_manual_time_calibrated"],
        "calibrated_conversation_count": values["calibrated_count"],
        "calibration_version": used[-1],
        "calibration_versions": used,
    }


# --- the CSV export's calibrated columns (over `metrics.analysed_rows_sql`), when not `off` --------

CSV_CALIBRATED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("calibration_version", "calibration_version", "plain"),
    ("calibrated", "calibration_applied", "plain"),  # false: too few confirmations, factor 1
    ("calibration_factor", "calibration_factor", "plain"),
    ("manual_time_calibrated_minutes", "manual_time_calibrated", "plain"),
    (
        "time_saved_calibrated_minutes",
        saved_cell("GREATEST(0, manual_time_calibrated - active_duration_minutes)"),
        "plain",
    ),
    (
        "time_saved_calibrated_low_minutes",
        saved_cell("GREATEST(0, manual_time_calibrated_low - active_duration_minutes)"),
        "plain",
    ),
    (
        "time_saved_calibrated_high_minutes",
        saved_cell("GREATEST(0, manual_time_calibrated_high - active_duration_minutes)"),
        "plain",
    ),
)


class _Calibrated(Protocol):
    """The fields of a set of figures the note reads (`functions.read.schemas.Figures`)."""

    @property
    def conversation_count(self) -> int | None: ...
    @property
    def calibrated_conversation_count(self) -> int | None: ...
    @property
    def calibration_versions(self) -> list[int] | None: ...


def calibration_note(connection: Connection, figures: _Calibrated, settings: Settings) -> str | None:
    """`calibration v2, 48 confirmations; 310 of 420 conversations in calibrated task categories`.

    None when calibration is off.
    """
    if settings.calibration is CalibrationMode.OFF:
        return None
    if not figures.calibration_versions:
        return "no calibration yet: it is computed when a run is aggregated after people have answered"
    found = versions(connection, figures.calibration_versions)
    used = [found[number] for number in figures.calibration_versions if number in found]
    parts = [f"calibration v{item.version}, {item.confirmations:,} confirmations" for item in used]
    if len(used) > 1:
        parts[0] = "days calibrated with " + parts[0]
    return (
        " and ".join(parts)
        + f"; {figures.calibrated_conversation_count or 0:,} of {figures.conversation_count or 0:,} conversations "
        "in calibrated task categories"
    )
