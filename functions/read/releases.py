"""Releases: the figures of closed periods that a viewer reads, audited once and frozen.

A release holds the figures of one closed period (an ISO week or a calendar month,
`ANALYTICS_RELEASE_PERIODS`): everyone's cell and one cell per group listed then (at least
`ANALYTICS_MIN_GROUP_SIZE` = k members). It is published once, after the period closed
plus `ANALYTICS_RELEASE_GRACE_DAYS` (late arrivals), when every date of the period has a
completed run and no run is open, by the aggregator at the end of a run (and by the
command line). It is stored with its version (publication order) and time, and never
recomputed: later analyses, late arrivals, confirmations, toggles and recalibrations
change the admin's figures only.

**The release basis.** The first release covering a day freezes that day's per-person
contributions (`release_basis`: per person, day and sub-cell, the metric sums), so every
release covering the day later (the month after its weeks) reads the same numbers, and
every published figure is a linear form over the same variables: the basis rows.

**What goes in** (declared with each metric, `functions/metrics.py`):

* `additive` metrics of a cell with at least k people (0 people: zeros);
* a `sub_partition` metric only where every sub-cell behind it (its rates, successful and
  not, estimators, priced and unpriced usage) has 0 or at least k people; else null with
  the reason;
* nothing admin-only (a metric without a declaration): among them the minutes by hand
  (manual - active - saved would be new work and overruns) and the calibrated figures
  (their bands use factor_low/high, which the auditor does not model), `VIEWER_ADMIN_ONLY`.

Nothing published (no release, a withheld or missing cell) is null, never 0; a release
records its floor (`audit.k`) and is served withheld once the floor is above it.

Then the auditor (`auditor.release_safely`) gets every figure as a `Form` over the basis
rows (a value weighted by each row's hourly rate, a calibrated figure by its factor) with
every figure published before, and keeps a candidate only while no combination of all of
them is the total of fewer than k people; what it does not keep is withheld. A release the
auditor cannot pass is stored as refused (health says so) and nothing of it is shown.

Model and category breakdowns are not released (admin-only): the summary and the group
breakdown per period are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from functions import runs
from functions.metrics import (
    ADDITIVE,
    ADMIN_ONLY_METRIC,
    ESTIMATOR_COUNTS,
    FIELD_SOURCES,
    METRICS,
    SUB_PARTITION,
    SUM_COLUMNS,
    analysed_rows_sql,
    include_flagged,
    viewer_rule,
)
from functions.read import queries
from functions.read.auditor import Form, release_safely
from functions.read.schemas import DateRange, GroupInfo
from shared.config import ReleasePeriod, Settings

__all__ = [
    "AUDIT_WITHHELD",
    "LOWER_FLOOR",
    "MONEY_OFF",
    "OPENAPI_NOTE",
    "OUT_OF_BUDGET",
    "PARTITIONS",
    "VIEWER_ADMIN_ONLY",
    "Cell",
    "Period",
    "Release",
    "candidate_forms",
    "due_date",
    "due_periods",
    "first_release_due",
    "held_back",
    "load_releases",
    "lower_floors",
    "out_of_budget",
    "pending_periods",
    "period_of",
    "publish_due",
    "released_fields",
    "sum_cells",
]

_log = logging.getLogger(__name__)

OPENAPI_NOTE = (
    " For the viewer role, the figures come from published releases: each closed week or month is "
    "audited once and frozen, the range snaps to whole published periods (`disclosure` says which "
    "and when they were published), the trend has one point per period, and a figure that could "
    "single out fewer than the minimum group size of people is withheld (null, with the reason)."
)

VIEWER_ADMIN_ONLY: dict[str, str] = {
    "calibration": "admin-only for a viewer: calibrated - raw minutes would split a cell by task category",
    "manual_time": "admin-only for a viewer: manual - active - saved minutes would be a few conversations' "
    "new work or overrun",
}
"""Figures a viewer never gets, with the reason (`functions/metrics.py` declares them admin-only)."""

MONEY_OFF = "money is off"  # why value figures are null when no rate was set at publication

_LOCK_KEY = 7_291_042_120  # serialises publishers (the aggregator of concurrent runs, the CLI)

PARTITIONS: tuple[str, ...] = tuple(
    dict.fromkeys(metric.partition for metric in METRICS if metric.partition is not None)
)
"""The sub-partitions a `sub_partition` metric depends on (rate, success, pricing, ...)."""
_FAMILY_COLUMNS: dict[str, tuple[str, ...]] = {
    ADDITIVE: tuple(m.column for m in METRICS if m.viewer == ADDITIVE),
    **{name: tuple(m.column for m in METRICS if m.partition == name) for name in PARTITIONS},
}
assert all(m.partition is not None for m in METRICS if m.viewer == SUB_PARTITION), (
    "a sub_partition metric names its partition"
)


# --- periods -----------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Period:
    """One closed period: an ISO week (Monday–Sunday) or a calendar month."""

    start: date
    end: date
    kind: ReleasePeriod = field(compare=False)

    @property
    def label(self) -> str:
        if self.kind is ReleasePeriod.WEEK:
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.start.year}-{self.start.month:02d}"

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.start.isoformat()}"

    @property
    def range(self) -> DateRange:
        return DateRange.between(self.start, self.end)


def period_of(kind: ReleasePeriod, day: date) -> Period:
    """The week or month that contains `day`."""
    if kind is ReleasePeriod.WEEK:
        start = day - timedelta(days=day.weekday())
        return Period(start, start + timedelta(days=6), kind)
    start = day.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return Period(start, following - timedelta(days=1), kind)


def _periods(kind: ReleasePeriod, first: date, last: date) -> list[Period]:
    """Every period of `kind` that ends in [first's period, last]."""
    found = []
    current = period_of(kind, first)
    while current.end <= last:
        found.append(current)
        current = period_of(kind, current.end + timedelta(days=1))
    return found


def _completed_days(connection: Connection, first: date, last: date) -> set[date]:
    return {
        day
        for (day,) in connection.execute(
            sa.text(
                "SELECT DISTINCT run_date FROM processing_log WHERE status = 'completed' "
                "AND run_date BETWEEN :first AND :last"
            ),
            {"first": first, "last": last},
        )
    }


def _first_completed(connection: Connection) -> date | None:
    first: date | None = connection.execute(
        sa.text("SELECT min(run_date) FROM processing_log WHERE status = 'completed'")
    ).scalar_one()
    return first


def due_date(period: Period, settings: Settings) -> date:
    """The first day a period's release may be published: its end, the grace days, and one more."""
    return period.end + timedelta(days=settings.release_grace_days + 1)


def pending_periods(
    connection: Connection, settings: Settings, today: date
) -> list[tuple[Period, list[date]]]:
    """Closed periods past their grace days and not released yet, each with the dates (from the
    first completed run on) that have no completed run: due when there are none."""
    first = _first_completed(connection)
    if first is None:
        return []
    last = today - timedelta(days=settings.release_grace_days + 1)
    completed = _completed_days(connection, first, last)
    released = {
        (kind, start)
        for kind, start in connection.execute(sa.text("SELECT period_kind, period_start FROM releases"))
    }
    pending = [
        (period, [day for day in period.range.dates() if day not in completed])
        for kind in settings.release_periods
        for period in _periods(kind, first, last)
        if (period.kind.value, period.start) not in released
    ]
    return sorted(pending, key=lambda p: (p[0].end, p[0].kind is ReleasePeriod.MONTH, p[0].start))


def held_back(connection: Connection, settings: Settings, today: date) -> list[tuple[Period, list[date]]]:
    """Releases past due that a date without a completed run holds back (for health), with those
    dates; dates before the first completed run (before the install) hold nothing back."""
    first = _first_completed(connection)
    return [
        (period, blocking)
        for period, missing in pending_periods(connection, settings, today)
        if first is not None and (blocking := [day for day in missing if day >= first])
    ]


def first_release_due(connection: Connection, settings: Settings, today: date) -> tuple[Period, date] | None:
    """Before any release: the first period whose every date has (or, for dates to come, may get) a
    completed run, and the day its release is due; None before the first completed run."""
    first = _first_completed(connection)
    if first is None:
        return None
    yesterday = today - timedelta(days=1)
    completed = _completed_days(connection, first, yesterday)
    found = []
    for kind in settings.release_periods:
        period = period_of(kind, first)
        while not all(day in completed or day > yesterday for day in period.range.dates()):
            period = period_of(kind, period.end + timedelta(days=1))
        found.append(period)
    period = min(found, key=lambda p: (p.end, p.kind is ReleasePeriod.MONTH))
    return period, max(due_date(period, settings), today)


def due_periods(connection: Connection, settings: Settings, today: date) -> list[Period]:
    """Closed periods not released yet whose dates all have a completed run, grace days after
    their end; weeks before months of the same end. Nothing while a run is open."""
    if runs.any_open(connection):
        return []
    return [period for period, missing in pending_periods(connection, settings, today) if not missing]


# --- the basis ---------------------------------------------------------------------------

_SUM_NAMES = [m.column for m in METRICS]
_BASIS_SQL = f"""
SELECT analysis_date, user_id_hash, coalesce(group_ids, '{{}}') AS group_ids, hourly_rate,
    (rated_down OR confirmed_no_help) AS unsuccessful,
    coalesce(ai_unpriced_tokens, 0) > 0 AS unpriced, ai_cost_usd IS NOT NULL AS priced, estimator,
    CASE WHEN calibration_applied THEN estimator || '/' || coalesce(task_category, 'other') END
        AS calibration_key,
    calibration_factor,
    {", ".join(f"{m.aggregate} AS {m.column}" for m in METRICS)}
FROM ({analysed_rows_sql("ca.analysis_date = ANY(:dates)")}) AS analysed
GROUP BY analysis_date, user_id_hash, coalesce(group_ids, '{{}}'), hourly_rate,
    (rated_down OR confirmed_no_help), coalesce(ai_unpriced_tokens, 0) > 0, ai_cost_usd IS NOT NULL,
    estimator, calibration_applied, task_category, calibration_factor
"""


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def _freeze(connection: Connection, settings: Settings, period: Period, now: datetime) -> None:
    """Freeze the days of `period` that no release has frozen yet (the headline's rows: flagged
    estimates apart or included, as ANALYTICS_FLAGGED_ESTIMATES says)."""
    days = period.range.dates()
    frozen = {
        day
        for (day,) in connection.execute(
            sa.text("SELECT analysis_date FROM release_basis_days WHERE analysis_date = ANY(:days)"),
            {"days": days},
        )
    }
    new = [day for day in days if day not in frozen]
    if not new:
        return
    rows = (
        connection.execute(sa.text(_BASIS_SQL), {"dates": new, "include_flagged": include_flagged(settings)})
        .mappings()
        .all()
    )
    if rows:
        connection.execute(
            sa.text(
                "INSERT INTO release_basis (analysis_date, user_id_hash, group_ids, hourly_rate, "
                "unsuccessful, unpriced, priced, estimator, calibration_key, calibration_factor, sums) "
                "VALUES (:analysis_date, :user_id_hash, :group_ids, :hourly_rate, :unsuccessful, "
                ":unpriced, :priced, :estimator, :calibration_key, :calibration_factor, CAST(:sums AS jsonb))"
            ),
            [
                {
                    **{key: row[key] for key in _BASIS_KEYS},
                    "group_ids": sorted(set(row["group_ids"] or ())),
                    "calibration_factor": row["calibration_factor"]
                    if row["calibration_factor"] is not None
                    else 1,
                    "sums": json.dumps({name: _jsonable(row[name]) for name in _SUM_NAMES}),
                }
                for row in rows
            ],
        )
    connection.execute(
        sa.text(
            "INSERT INTO release_basis_days (analysis_date, frozen_at) SELECT unnest(CAST(:days AS date[])), :now"
        ),
        {"days": new, "now": now},
    )


_BASIS_KEYS = (
    "analysis_date",
    "user_id_hash",
    "hourly_rate",
    "unsuccessful",
    "unpriced",
    "priced",
    "estimator",
    "calibration_key",
)


@dataclass(frozen=True)
class Atom:
    """One frozen basis row: a person's contributions of one day and sub-cell."""

    id: int
    day: date
    person: str
    groups: frozenset[str]
    rate: Fraction | None
    unsuccessful: bool
    unpriced: bool
    priced: bool
    estimator: str | None
    calibration: str | None
    factor: Fraction
    sums: Mapping[str, Any]


def _fraction(value: Any) -> Fraction | None:
    return None if value is None else Fraction(str(value))


def _load_atoms(connection: Connection, first: date, last: date) -> list[Atom]:
    rows = connection.execute(
        sa.text(
            "SELECT id, analysis_date, user_id_hash, group_ids, hourly_rate, unsuccessful, unpriced, "
            "priced, estimator, calibration_key, calibration_factor, sums FROM release_basis "
            "WHERE analysis_date BETWEEN :first AND :last ORDER BY id"
        ),
        {"first": first, "last": last},
    ).mappings()
    return [
        Atom(
            id=row["id"],
            day=row["analysis_date"],
            person=row["user_id_hash"],
            groups=frozenset(row["group_ids"] or ()),
            rate=_fraction(row["hourly_rate"]),
            unsuccessful=row["unsuccessful"],
            unpriced=row["unpriced"],
            priced=row["priced"],
            estimator=row["estimator"],
            calibration=row["calibration_key"],
            factor=_fraction(row["calibration_factor"]) or Fraction(1),
            sums=row["sums"],
        )
        for row in rows
    ]


# --- figures as forms --------------------------------------------------------------------

_EVERYONE = "*"


def _in_cell(atom: Atom, period: Period, group_id: str | None) -> bool:
    return period.start <= atom.day <= period.end and (group_id is None or group_id in atom.groups)


def _subcells(family: str, atoms: Sequence[Atom]) -> dict[str, set[str]]:
    """The people of each sub-cell a `family` (a partition) splits the cell's atoms into."""
    cells: dict[str, set[str]] = {}

    def add(name: str, atom: Atom) -> None:
        cells.setdefault(name, set()).add(atom.person)

    for atom in atoms:
        if family == "success":
            add("unsuccessful" if atom.unsuccessful else "successful", atom)
        elif family == "estimator":
            add(f"estimator {atom.estimator}", atom)
        elif family == "pricing":
            if atom.unpriced:
                add("unpriced models", atom)
            if atom.priced:
                add("priced models", atom)
        elif family == "rate":
            add(f"rate {atom.rate}", atom)
        elif family == "calibration":
            add(atom.calibration or "uncalibrated", atom)
        else:
            raise ValueError(f"unknown partition {family!r}")
    return cells


def _family_forms(family: str, atoms: Sequence[Atom]) -> dict[str, dict[Hashable, int | Fraction]]:
    """The linear forms (suffix → coefficients over basis rows) of a family's figures in a cell."""
    if family == ADDITIVE:
        return {"": {atom.id: 1 for atom in atoms}}
    if family == "success":
        return {"successful": {atom.id: 1 for atom in atoms if not atom.unsuccessful}}
    if family == "estimator":
        names = sorted({str(atom.estimator) for atom in atoms})
        return {name: {atom.id: 1 for atom in atoms if str(atom.estimator) == name} for name in names}
    if family == "pricing":
        return {
            "unpriced": {atom.id: 1 for atom in atoms if atom.unpriced},
            "priced": {atom.id: 1 for atom in atoms if atom.priced},
        }
    if family == "rate":
        return {"": {atom.id: atom.rate for atom in atoms if atom.rate is not None}}
    if family == "calibration":
        return {"": {atom.id: atom.factor for atom in atoms}}
    raise ValueError(f"unknown partition {family!r}")


def _figure_id(period: Period, group_id: str | None, family: str, suffix: str) -> str:
    return f"{period.key}|{group_id or _EVERYONE}|{family}|{suffix}"


def _forms(period: Period, group_id: str | None, family: str, atoms: Sequence[Atom]) -> list[Form]:
    return [
        Form(_figure_id(period, group_id, family, suffix), coefficients)
        for suffix, coefficients in _family_forms(family, atoms).items()
        if coefficients  # an empty sub-cell adds no figure
    ]


def _parse(figure_id: str) -> tuple[Period, str | None, str, str]:
    key, group, family, suffix = figure_id.split("|")
    kind, start = key.split(":")
    period = period_of(ReleasePeriod(kind), date.fromisoformat(start))
    return period, None if group == _EVERYONE else group, family, suffix


# --- a release ---------------------------------------------------------------------------


@dataclass
class _CellPlan:
    group: GroupInfo | None
    atoms: list[Atom]
    withheld: str | None = None  # the whole cell
    nulls: dict[str, str] = field(default_factory=dict)  # partition -> why its figures are null
    forms: dict[str, list[Form]] = field(default_factory=dict)  # family -> its candidate forms


def _plan_cell(period: Period, group: GroupInfo | None, atoms: list[Atom], settings: Settings) -> _CellPlan:
    k = settings.min_group_size
    plan = _CellPlan(group, atoms)
    people = {atom.person for atom in atoms}
    if 0 < len(people) < k:
        plan.withheld = f"fewer than {k} people were active"
        return plan
    group_id = group.group_id if group else None
    plan.forms[ADDITIVE] = _forms(period, group_id, ADDITIVE, atoms)
    for family in PARTITIONS:
        if family == "rate" and not settings.money_shown:
            plan.nulls[family] = MONEY_OFF
            continue
        small = sorted(name for name, who in _subcells(family, atoms).items() if 0 < len(who) < k)
        if small:
            plan.nulls[family] = f"fewer than {k} people behind {small[0]}"
            continue
        plan.forms[family] = _forms(period, group_id, family, atoms)
    return plan


def _sums(atoms: Iterable[Atom]) -> dict[str, Any]:
    total: dict[str, Any] = dict.fromkeys(SUM_COLUMNS, 0)
    counts: dict[str, int] = {}
    versions: set[int] = set()
    for atom in atoms:
        for column in SUM_COLUMNS:
            total[column] += int(atom.sums.get(column) or 0)
        for name, count in (atom.sums.get(ESTIMATOR_COUNTS) or {}).items():
            counts[str(name)] = counts.get(str(name), 0) + int(count)
        if atom.sums.get("calibration_version") is not None:
            versions.add(int(atom.sums["calibration_version"]))
    return {**total, ESTIMATOR_COUNTS: counts, "calibration_versions": sorted(versions)}


AUDIT_WITHHELD = "withheld by the audit: with figures published before, it would single out fewer people"
OUT_OF_BUDGET = "withheld: it could not be proven within the auditor's budget"
LOWER_FLOOR = "published under a lower floor"  # ANALYTICS_MIN_GROUP_SIZE was raised since


def _cell_json(plan: _CellPlan, shown: set[str], audit_reason: str = AUDIT_WITHHELD) -> dict[str, Any]:
    group = plan.group.model_dump() if plan.group else {}
    additive = [form.figure_id for form in plan.forms.get(ADDITIVE, [])]
    if plan.withheld is None and not all(figure in shown for figure in additive):
        plan.withheld = audit_reason
    if plan.withheld is not None:
        return {**group, "sums": None, "withheld": plan.withheld, "nulls": {}}
    sums = _sums(plan.atoms)
    nulls = dict(plan.nulls)
    for family in PARTITIONS:
        if family in plan.forms and not all(form.figure_id in shown for form in plan.forms[family]):
            nulls[family] = "withheld by the audit"
    hidden_columns = {column for family in nulls for column in _FAMILY_COLUMNS[family]}
    hidden_columns |= {m.column for m in METRICS if m.viewer == ADMIN_ONLY_METRIC}
    if "calibration" in nulls or viewer_rule("calibration_versions") == ADMIN_ONLY_METRIC:
        hidden_columns.add("calibration_versions")
    if "estimator" in nulls:
        hidden_columns.add(ESTIMATOR_COUNTS)
    released = {name: (None if name in hidden_columns else value) for name, value in sums.items()}
    return {**group, "sums": released, "withheld": None, "nulls": nulls}


def _cell_ids(plan: _CellPlan) -> list[str]:
    return [form.figure_id for forms in plan.forms.values() for form in forms]


def candidate_forms(plans: Sequence[_CellPlan]) -> list[Form]:
    """The release's candidates in priority order: every cell's additive figures (everyone first,
    then groups by size), then the sub-partition figures."""
    first = [form for plan in plans for form in plan.forms.get(ADDITIVE, [])]
    rest = [form for plan in plans for family in PARTITIONS for form in plan.forms.get(family, [])]
    return first + rest


def _publish(
    connection: Connection,
    settings: Settings,
    period: Period,
    published: list[Form],
    atoms_by_id: dict[int, Atom],
    now: datetime,
    *,
    audited: bool,
) -> str:
    _freeze(connection, settings, period, now)
    atoms = _load_atoms(connection, period.start, period.end)
    atoms_by_id.update((atom.id, atom) for atom in atoms)
    groups = sorted(
        queries.listed_groups(connection, settings.min_group_size), key=lambda g: (-g.member_count, g.name)
    )
    plans = [_plan_cell(period, None, atoms, settings)]
    plans += [
        _plan_cell(period, group, [a for a in atoms if group.group_id in a.groups], settings)
        for group in groups
    ]
    candidates = candidate_forms(plans)
    audit: dict[str, Any]
    if audited:
        selection = release_safely(
            published, candidates, lambda atom: atoms_by_id[int(str(atom))].person, settings.min_group_size
        )
        record = selection.record
        # a budget that runs out fails closed: what was kept is proven, the rest is suppressed;
        # only when the figures published before cannot be proven again is the release refused
        passed = record.passed
        kept = set(selection.kept) if passed else set()
        audit = {
            "figures": record.figures,
            "atoms": record.atoms,
            "rank": record.rank,
            "candidates_checked": record.candidates_checked,
            "seconds": round(record.seconds, 4),
            "passed": passed,
            "kept": len(selection.kept),
            "suppressed": len(selection.suppressed),
            "budget_exhausted": selection.budget_exhausted,
            "k": settings.min_group_size,
        }
    else:  # only for tests that prove the attacker finds what an unaudited release leaks
        passed, kept = True, {form.figure_id for form in candidates}
        audit = {"passed": True, "unaudited": True, "k": settings.min_group_size}
    reason = OUT_OF_BUDGET if audit.get("budget_exhausted") else AUDIT_WITHHELD
    cells = [_cell_json(plan, kept, reason) for plan in plans]
    shown = sorted(
        figure for plan in plans if plan.withheld is None for figure in _cell_ids(plan) if figure in kept
    )
    shown_set = set(shown)
    # a family is shown whole or not at all: only what a viewer can see counts as published
    visible = [
        figure
        for plan, cell in zip(plans, cells, strict=True)
        if cell["sums"] is not None
        for family, forms in plan.forms.items()
        if family == ADDITIVE or family not in cell["nulls"]
        for figure in (form.figure_id for form in forms)
        if figure in shown_set
    ]
    connection.execute(
        sa.text(
            "INSERT INTO releases (period_kind, period_start, period_end, status, published_at, cells, "
            "shown_figures, audit) VALUES (:kind, :start, :end, :status, :now, CAST(:cells AS jsonb), "
            "CAST(:shown AS jsonb), CAST(:audit AS jsonb))"
        ),
        {
            "kind": period.kind.value,
            "start": period.start,
            "end": period.end,
            "status": "published" if passed else "refused",
            "now": now,
            "cells": json.dumps({"everyone": cells[0], "groups": cells[1:]}),
            "shown": json.dumps(visible if passed else []),
            "audit": json.dumps(audit),
        },
    )
    if passed:
        shown_now = set(visible)
        published.extend(form for form in candidates if form.figure_id in shown_now)
    else:
        _log.error("release %s %s refused by the auditor: %s", period.kind.value, period.label, audit)
    return "published" if passed else "refused"


def _published_forms(connection: Connection, atoms_by_id: dict[int, Atom]) -> list[Form]:
    """Every figure published so far, as forms over the frozen basis."""
    rows = connection.execute(
        sa.text("SELECT shown_figures FROM releases WHERE status = 'published' ORDER BY version")
    ).all()
    ids = [figure for (figures,) in rows for figure in figures]
    if not ids:
        return []
    atoms = _load_atoms(connection, date.min, date.max)
    atoms_by_id.update((atom.id, atom) for atom in atoms)
    by_cell: dict[tuple[Period, str | None], list[Atom]] = {}
    forms = []
    for figure in ids:
        period, group_id, family, suffix = _parse(figure)
        key = (period, group_id)
        if key not in by_cell:
            by_cell[key] = [a for a in atoms if _in_cell(a, period, group_id)]
        forms.append(Form(figure, _family_forms(family, by_cell[key])[suffix]))
    return forms


def publish_due(
    connection: Connection, settings: Settings, now: datetime, *, audited: bool = True
) -> dict[str, int]:
    """Publish every due release (in the caller's transaction); returns counts by status.

    `audited=False` skips the auditor: for the attacker test's proof that it finds the leak
    of an unaudited release, never used by the product."""
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    due = due_periods(connection, settings, now.astimezone(settings.zone).date())
    counts = {"published": 0, "refused": 0}
    if not due:
        return counts
    atoms_by_id: dict[int, Atom] = {}
    published = _published_forms(connection, atoms_by_id)
    for period in due:
        counts[_publish(connection, settings, period, published, atoms_by_id, now, audited=audited)] += 1
    _log.info("releases: %d published, %d refused", counts["published"], counts["refused"])
    return counts


def out_of_budget(connection: Connection, since: datetime | None = None) -> list[str]:
    """Labels of published releases in which the auditor's budget ran out (published at or after
    `since`): cells of them are withheld unproven, which health and `main.py publish` report."""
    rows = connection.execute(
        sa.text(
            "SELECT period_kind, period_start FROM releases WHERE status = 'published' "
            "AND (audit->>'budget_exhausted')::boolean AND (CAST(:since AS timestamptz) IS NULL "
            "OR published_at >= :since) ORDER BY period_start"
        ),
        {"since": since},
    ).all()
    return [period_of(ReleasePeriod(kind), start).label for kind, start in rows]


def lower_floors(connection: Connection, floor: int) -> list[int]:
    """The floors (k) of published releases below `floor`: viewers saw them, so later releases are
    audited against them and may not pass at the higher floor."""
    rows = connection.execute(
        sa.text(
            "SELECT DISTINCT coalesce((audit->>'k')::int, 0) FROM releases WHERE status = 'published' "
            "AND coalesce((audit->>'k')::int, 0) < :floor ORDER BY 1"
        ),
        {"floor": floor},
    ).all()
    return [k for (k,) in rows]


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One published cell: its summed columns (null where withheld) and why things are withheld."""

    sums: Mapping[str, Any] | None
    withheld: str | None
    nulls: Mapping[str, str]


@dataclass(frozen=True)
class Release:
    version: int
    period: Period
    published_at: datetime
    everyone: Cell
    groups: tuple[tuple[GroupInfo, Cell], ...]

    def cell(self, group_id: str | None) -> Cell | None:
        if group_id is None:
            return self.everyone
        return next((cell for group, cell in self.groups if group.group_id == group_id), None)


def _cell(data: Mapping[str, Any]) -> Cell:
    return Cell(sums=data["sums"], withheld=data["withheld"], nulls=data.get("nulls") or {})


def _floor_cell(cell: Cell, recorded: int | None, floor: int) -> Cell:
    """A cell published under a lower floor than today's is withheld (with the floor it had)."""
    if recorded is not None and recorded >= floor:
        return cell
    was = f"k = {recorded}" if recorded is not None else "k not recorded"
    return Cell(sums=None, withheld=f"{LOWER_FLOOR} ({was}; the floor is {floor} now)", nulls={})


def load_releases(connection: Connection, kind: ReleasePeriod, floor: int) -> list[Release]:
    """The published releases of `kind`, oldest first. A release published under a lower floor
    than `floor` (ANALYTICS_MIN_GROUP_SIZE raised since) is listed with every cell withheld."""
    rows = connection.execute(
        sa.text(
            "SELECT version, period_start, published_at, cells, (audit->>'k')::int AS k FROM releases "
            "WHERE status = 'published' AND period_kind = :kind ORDER BY period_start"
        ),
        {"kind": kind.value},
    ).mappings()
    return [
        Release(
            version=row["version"],
            period=period_of(kind, row["period_start"]),
            published_at=row["published_at"],
            everyone=_floor_cell(_cell(row["cells"]["everyone"]), row["k"], floor),
            groups=tuple(
                (
                    GroupInfo(group_id=g["group_id"], name=g["name"], member_count=g["member_count"]),
                    _floor_cell(_cell(g), row["k"], floor),
                )
                for g in row["cells"]["groups"]
            ),
        )
        for row in rows
    ]


def sum_cells(cells: Sequence[Cell | None]) -> dict[str, Any] | None:
    """The summed columns of several released cells; a column null in any of them is null, and
    all are null (None) when there is no cell or one is missing or withheld: nothing published
    never reads as 0, nor a part of the range as the whole."""
    if not cells or any(cell is None or cell.sums is None for cell in cells):
        return None
    shown = [cell.sums for cell in cells if cell is not None and cell.sums is not None]
    total: dict[str, Any] = {}
    for sums in shown:
        for column, value in sums.items():
            if column in total and total[column] is None:
                continue
            if value is None:
                total[column] = None
            elif isinstance(value, list):
                total[column] = sorted(set(total.get(column) or []) | set(value))
            elif isinstance(value, dict):
                merged = dict(total.get(column) or {})
                for name, count in value.items():
                    merged[name] = merged.get(name, 0) + int(count)
                total[column] = merged
            else:
                total[column] = (total.get(column) or 0) + int(value)
    return total


def released_fields(sums: Mapping[str, Any] | None, settings: Settings) -> dict[str, Any]:
    """`Figures` fields of released sums: a field is null when it is admin-only or any source is null."""
    if sums is None:  # nothing published: every figure null, never 0
        return dict.fromkeys(queries.figure_fields({}, settings), None)
    missing = {column for column, value in sums.items() if value is None}
    present = {column: value for column, value in sums.items() if value is not None}
    fields = queries.figure_fields(present, settings)
    for name in list(fields):
        rule = viewer_rule(name)
        sources = FIELD_SOURCES.get(name, (name,))
        if rule == ADMIN_ONLY_METRIC or any(source in missing for source in sources):
            fields[name] = None
    return fields


def as_of(releases: Iterable[Release]) -> datetime | None:
    """The latest publication time among `releases`."""
    return max((release.published_at for release in releases), default=None)
