"""Disclosure control: what the viewer role sees, so that no figure singles out fewer than k people.

k is `ANALYTICS_MIN_GROUP_SIZE`. Which roles are controlled is decided in
`shared.roles.DISCLOSURE_CONTROLLED` (the viewer); admins get the raw figures of
`queries.py`, unchanged. For a controlled role every figure is a sum of released
**day cells**, and every released cell describes 0 or at least k distinct people
(pseudonyms with analysed conversations in the cell). The people of each day are read
from `conversation_analysis` (one row per person, day and group set of a conversation,
or per person, day and dimension value), the figures from the aggregate tables; the
decisions are made here, in Python:

1. **Day rule**: a day on which fewer than k people were active in the scope (everyone,
   or one group) is withheld from that scope: it adds nothing to a summary or a
   breakdown, and its trend point is a `WithheldPoint`. A range's figures are sums of
   released days, so the difference of two ranges is a sum of released days too.
2. **Partitions** (`disclosure == "partition"`: model, category), per released day:
   values with fewer than k people go to one "Everyone else" row; while that remainder
   has between 1 and k − 1 people, the shown value with the fewest people (then the
   lowest name) joins it. Rows add up to the viewer's total, per day and so per range.
3. **Groups**: a group is listed only with at least k members. A group's day cell is
   released when (a) at least k of its people were active, (b) the active people
   outside it are 0 or at least k, (c) for any two released groups, the people in one
   and not the other (together) are 0 or at least k — nested groups included — else
   the smaller group is withheld that day, (d) the people in no released group (the
   Everyone else row of the group breakdown) are 0 or at least k, else the smallest
   released group is withheld that day, and (e) the people counted by two or more
   released groups are 0 or at least k, else the smallest released group holding some
   of them is withheld that day: so everyone minus the sum of the group rows (with or
   without Everyone else) describes 0 or at least k people too. (c)–(e) are checked
   again after every withholding.
4. **Filters**: `group=` on summary and trend reads that group's released cells. A
   dimension filter, a group filter on a breakdown and a `user_id_hash` are refused
   (403): those are intersections the rules above do not cover.

What this does not cover is said in the README ("What a viewer can and cannot infer").
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from functions import runs
from functions.calibrated import CALIBRATED_FIELDS, VERSION_RANGE_SQL
from functions.dimensions import GROUP, Dimension
from functions.metrics import ESTIMATOR_COUNTS, METRICS, SUM_COLUMNS, analysed_rows_sql
from functions.read import queries
from functions.read.schemas import (
    DailyPoint,
    DateRange,
    DimensionRow,
    DisclosureInfo,
    Figures,
    GroupRow,
    WithheldPoint,
)
from shared.config import Settings
from shared.errors import RequestRejected, RetryableError

__all__ = [
    "BREAKDOWNS_OF_EVERYONE",
    "EVERYONE_ELSE",
    "OPENAPI_NOTE",
    "Control",
    "FiguresBeingRebuilt",
    "Release",
    "ViewerRefused",
    "viewer_note",
]

EVERYONE_ELSE = "Everyone else"
BREAKDOWNS_OF_EVERYONE = "a viewer sees breakdowns of everyone only"
OPENAPI_NOTE = (
    " For the viewer role, every figure is a sum of released day cells of at least the minimum "
    "group size of people (or none): days with fewer active people are withheld, values with fewer "
    "people go into an Everyone else row, and `disclosure` says what was left out. Model, category "
    "and tag filters, a group filter on a breakdown and `user_id_hash` are refused (403)."
)


class FiguresBeingRebuilt(RetryableError):
    """A run is open: a viewer's release decisions and figures could come from different states."""


PAUSE_SECONDS = 120  # Retry-After while a run is open (a nightly run takes minutes)


class ViewerRefused(RequestRejected):
    """A parameter the viewer role may not use (an intersection disclosure control does not cover)."""

    status_code = 403


# --- people per day ----------------------------------------------------------------------

_ANALYSED = "status = 'analyzed' AND analysis_date BETWEEN :start_date AND :end_date"

# per day, one JSON array of [person, group set] pairs: a person's number is local to the
# query (it only tells people apart), and a group's cell holds the conversations whose
# group_ids name it, exactly as the aggregator builds it. One text per day keeps the
# transfer small (a year of a few hundred people is a few hundred rows, not 50 000).
_MEMBERSHIPS_SQL = f"""
WITH entries AS (
    SELECT DISTINCT analysis_date, user_id_hash, {GROUP.values_sql} AS groups
    FROM conversation_analysis WHERE {_ANALYSED}
), numbered AS (
    SELECT analysis_date, dense_rank() OVER (ORDER BY user_id_hash) AS person, groups FROM entries
)
SELECT analysis_date, json_agg(json_build_array(person, groups))::text FROM numbered GROUP BY analysis_date
"""


def _value_people_sql(dimension: Dimension) -> str:
    """Per (day, value) of the days `:days`: the people behind it (pseudonyms, comma-separated)."""
    return f"""
SELECT analysis_date, value, string_agg(DISTINCT user_id_hash, ',')
FROM conversation_analysis CROSS JOIN LATERAL unnest({dimension.values_sql}) AS value
WHERE status = 'analyzed' AND analysis_date = ANY(:days) AND value IS NOT NULL
GROUP BY analysis_date, value
"""


class _People:
    """Counts distinct people behind a set of (person, group set) entries of one day, as bit masks."""

    def __init__(self, entries: list[tuple[str, frozenset[str]]]) -> None:
        """`entries`: the distinct (person, group set of one of their conversations) of the day."""
        self.entries = entries
        self.all = (1 << len(entries)) - 1
        owners: dict[str, int] = {}
        for index, (user, _) in enumerate(entries):
            owners[user] = owners.get(user, 0) | (1 << index)
        self.single = 0
        self.multiple: list[int] = []  # people with conversations of several group sets that day
        for mask in owners.values():
            if mask & (mask - 1):
                self.multiple.append(mask)
            else:
                self.single |= mask
        self.masks: dict[str, int] = {}
        for index, (_, groups) in enumerate(entries):
            for group_id in groups:
                self.masks[group_id] = self.masks.get(group_id, 0) | (1 << index)

    def count(self, mask: int) -> int:
        """Distinct people with at least one entry in `mask`."""
        if not self.multiple:
            return mask.bit_count()
        return (mask & self.single).bit_count() + sum(1 for owned in self.multiple if owned & mask)

    def of(self, group_id: str) -> int:
        return self.masks.get(group_id, 0)


def _fine(people: int, floor: int) -> bool:
    """0 people, or at least the floor."""
    return people == 0 or people >= floor


def _released_groups(people: _People, listed: Iterable[str], floor: int) -> frozenset[str]:
    """The groups whose cell is released on a day (rules 3a–3d)."""
    size = {group_id: people.count(people.of(group_id)) for group_id in listed}
    released = {
        group_id
        for group_id, count in size.items()
        if count >= floor and _fine(people.count(people.all & ~people.of(group_id)), floor)
    }

    def smaller(*group_ids: str) -> str:
        return min(group_ids, key=lambda group_id: (size[group_id], group_id))

    while released:
        withheld: str | None = None
        for first, second in combinations(sorted(released), 2):
            if not people.of(first) & people.of(second):
                continue  # disjoint: the difference holds both, each of at least k people
            if not _fine(people.count(people.of(first) ^ people.of(second)), floor):
                withheld = smaller(first, second)
                break
        if withheld is None:
            covered = twice = 0
            for group_id in released:
                twice |= covered & people.of(group_id)
                covered |= people.of(group_id)
            if not _fine(people.count(people.all & ~covered), floor):
                withheld = smaller(*released)
            elif not _fine(people.count(twice), floor):
                withheld = smaller(*(group_id for group_id in released if people.of(group_id) & twice))
        if withheld is None:
            break
        released.discard(withheld)
    return frozenset(released)


def _shown_values(people: Mapping[str, frozenset[str]], floor: int) -> set[str]:
    """The values of a partition shown on a day; the others go to Everyone else (rule 2)."""
    shown = {value for value, who in people.items() if len(who) >= floor}
    while shown:
        rest: set[str] = set()
        for value, who in people.items():
            if value not in shown:
                rest |= who
        if _fine(len(rest), floor):
            break
        shown.discard(min(shown, key=lambda value: (len(people[value]), value)))
    return shown


def _shown_by_counts(counts: Mapping[str, int], floor: int) -> set[str] | None:
    """Rule 2 from the people per value alone; None when the remainder's people must be counted.

    The remainder has at least as many people as its largest value and at most their sum:
    with 0 values, or a largest value of at least `floor`, it is fine; with a sum below
    `floor` it is too small (merge the smallest shown value); in between it depends on who.
    """
    shown = {value for value, count in counts.items() if count >= floor}
    while shown:
        rest = [count for value, count in counts.items() if value not in shown]
        if not rest or max(rest) >= floor:
            break
        if sum(rest) >= floor:
            return None
        shown.discard(min(shown, key=lambda value: (counts[value], value)))
    return shown


@dataclass(frozen=True)
class Release:
    """Which day cells of a span of dates a controlled role sees."""

    floor: int
    days: frozenset[date]  # released for everyone
    active_days: frozenset[date]  # with at least one analysed conversation
    groups: Mapping[date, frozenset[str]]  # released group cells of each released day
    group_active: Mapping[date, frozenset[str]]  # groups with activity that day
    with_groups: bool  # False: only everyone's days were decided

    def scope_days(self, group_id: str | None) -> frozenset[date]:
        """The released days of everyone, or of one group."""
        if group_id is None:
            return self.days
        if not self.with_groups:
            raise ValueError("this release was loaded without the group cells")
        return frozenset(day for day, groups in self.groups.items() if group_id in groups)

    def withheld_days(self, date_range: DateRange, group_id: str | None = None) -> int:
        """Days of the range with activity in the scope that are not released to it."""
        released = self.scope_days(group_id)
        return sum(
            1
            for day in date_range.dates()
            if day not in released
            and (
                day in self.active_days
                if group_id is None
                else group_id in self.group_active.get(day, frozenset())
            )
        )


# the aggregator writes one daily_aggregates row per person and day with analysed conversations
_ACTIVE_PEOPLE_SQL = (
    "SELECT analysis_date, count(*) FROM daily_aggregates WHERE user_id_hash IS NOT NULL "
    "AND analysis_date BETWEEN :start_date AND :end_date GROUP BY analysis_date"
)


def load_release(connection: Connection, date_range: DateRange, floor: int, *, groups: bool) -> Release:
    """The release decisions for every day of `date_range`; of the group cells too with `groups`."""
    if not groups:  # everyone's days need only the number of people per day
        counts: dict[date, int] = dict(
            connection.execute(sa.text(_ACTIVE_PEOPLE_SQL), date_range.sql_params()).all()
        )
        return Release(
            floor=floor,
            days=frozenset(day for day, count in counts.items() if count >= floor),
            active_days=frozenset(counts),
            groups={},
            group_active={},
            with_groups=False,
        )
    entries: dict[date, list[tuple[str, frozenset[str]]]] = {}
    group_sets: dict[tuple[str, ...], frozenset[str]] = {}
    for day, pairs in connection.execute(sa.text(_MEMBERSHIPS_SQL), date_range.sql_params()):
        day_entries = entries[day] = []
        for person, group_ids in json.loads(pairs):
            key = tuple(group_ids or ())
            if key not in group_sets:
                group_sets[key] = frozenset(key)
            day_entries.append((person, group_sets[key]))
    listed = [group.group_id for group in queries.listed_groups(connection, floor)]
    days: set[date] = set()
    released: dict[date, frozenset[str]] = {}
    active: dict[date, frozenset[str]] = {}
    for day, day_entries in entries.items():
        people = _People(day_entries)
        active[day] = frozenset(people.masks)
        if people.count(people.all) >= floor:
            days.add(day)
            released[day] = _released_groups(people, listed, floor)
    return Release(
        floor=floor,
        days=frozenset(days),
        active_days=frozenset(entries),
        groups=released,
        group_active=active,
        with_groups=True,
    )


# --- sums of released cells --------------------------------------------------------------


def _add(rows: Iterable[Any]) -> dict[str, Any]:
    """Summed columns of several cells (the same sums the range SQL makes).

    Any other column holding a list (a set of versions, say) is the union of the cells' lists.
    """
    total = dict.fromkeys(SUM_COLUMNS, 0)
    counts: Counter[str] = Counter()
    lists: dict[str, set[Any]] = {}
    for row in rows:
        for column in SUM_COLUMNS:
            total[column] += int(row.get(column) or 0)
        for name, count in (row.get(ESTIMATOR_COUNTS) or {}).items():
            counts[str(name)] += int(count)
        for column, value in row.items():
            if isinstance(value, list):
                lists.setdefault(column, set()).update(value)
    return {**total, ESTIMATOR_COUNTS: dict(counts), **{key: sorted(found) for key, found in lists.items()}}


def _order(row: Figures, name: str) -> tuple[int, int, str]:
    return (-row.total_time_saved, -row.conversation_count, name)


_METRIC_SELECT = ", ".join(f"{metric.aggregate} AS {metric.column}" for metric in METRICS)
# the conversations of released days in none of that day's released groups
_OUTSIDE_GROUPS_SQL = (
    f"SELECT analysis_date, {_METRIC_SELECT}, {VERSION_RANGE_SQL} FROM ("
    + analysed_rows_sql(
        "ca.analysis_date BETWEEN :start_date AND :end_date "
        "AND (CAST(:released AS jsonb) -> ca.analysis_date::text) IS NOT NULL "
        "AND NOT (ca.group_ids && ARRAY(SELECT jsonb_array_elements_text("
        "CAST(:released AS jsonb) -> ca.analysis_date::text)))"
    )
    + ") AS analysed GROUP BY analysis_date"
)


# a calibrated category of a version some date uses, whose factor comes from fewer than :floor people
_THIN_CALIBRATION_SQL = """
SELECT EXISTS (
    SELECT 1 FROM calibration_factors f
    WHERE f.calibrated AND f.version IN (SELECT DISTINCT version FROM calibration_dates)
    AND (SELECT count(DISTINCT c.user_id_hash) FROM calibration_confirmations c
         WHERE c.version = f.version AND c.estimator = f.estimator
         AND c.task_category = f.task_category) < :floor
)
"""


@dataclass
class Control:
    """Disclosure control at floor k for one request of a controlled role (caches what it read)."""

    settings: Settings
    _releases: dict[tuple[date, date, bool], Release] = field(default_factory=dict, compare=False, repr=False)
    _thin: bool | None = field(default=None, compare=False, repr=False)  # read once, when first needed

    def _fields(self, connection: Connection, row: RowMapping | Mapping[str, Any]) -> dict[str, Any]:
        """`queries.figure_fields`, without the calibrated fields while a calibration in use rests on
        fewer than k people's answers: calibrated ÷ raw minutes of a category is its factor, the
        median of those few people's own answers (the calibration report is admin-only for this)."""
        fields = queries.figure_fields(row, self.settings)
        if fields.get("calibration_versions") is None:
            return fields  # calibration is off
        if self._thin is None:
            self._thin = bool(
                connection.execute(sa.text(_THIN_CALIBRATION_SQL), {"floor": self.floor}).scalar_one()
            )
        if self._thin:
            fields.update(dict.fromkeys(CALIBRATED_FIELDS))
        return fields

    @property
    def floor(self) -> int:
        return self.settings.min_group_size

    # --- what a viewer may ask

    def check_summary(self, scope: queries.Scope) -> None:
        """Summary and trend: a group is fine; a person or a dimension value is not."""
        if scope.user_id_hash is not None:
            raise ViewerRefused("user_id_hash: a viewer sees no figures of one person")
        if scope.dimension is not None:
            raise ViewerRefused(
                f"{scope.dimension.filter_parameter}: {BREAKDOWNS_OF_EVERYONE}; "
                "filters by model, category or tag are for admins"
            )

    def check_breakdown(self, group_id: str | None) -> None:
        if group_id is not None:
            raise ViewerRefused(f"group: {BREAKDOWNS_OF_EVERYONE}")

    # --- answers

    def release(self, connection: Connection, date_range: DateRange, group_id: str | None = None) -> Release:
        """The release decisions of the range, of the group cells too when a group is asked for.

        Once per request and range: a dashboard page asks for several answers."""
        groups = group_id is not None
        key = (date_range.start_date, date_range.end_date, groups)
        if key not in self._releases:
            if runs.any_open(connection):
                # the analyzer writes analyses before the aggregator rebuilds their dates: between
                # the two, "everyone − a group" computed from both could single one person out
                raise FiguresBeingRebuilt(
                    "the figures are being rebuilt by a run in progress; a viewer's figures return "
                    "when it completes (try again in a few minutes)",
                    retry_after_seconds=PAUSE_SECONDS,
                )
            self._releases[key] = load_release(connection, date_range, self.floor, groups=groups)
        return self._releases[key]

    def figures(
        self, connection: Connection, release: Release, date_range: DateRange, group_id: str | None
    ) -> Figures:
        """The scope's figures over the range: the sum of its released days."""
        days = release.scope_days(group_id)
        rows = queries.daily_sums(connection, queries.Scope(group_id=group_id), date_range)
        return Figures(**self._fields(connection, _add(row for day, row in rows.items() if day in days)))

    def trend(
        self, connection: Connection, release: Release, date_range: DateRange, group_id: str | None
    ) -> list[DailyPoint | WithheldPoint]:
        """One point per date: released days as they are, withheld days as `WithheldPoint`."""
        days = release.scope_days(group_id)
        rows = queries.daily_sums(connection, queries.Scope(group_id=group_id), date_range)
        points: list[DailyPoint | WithheldPoint] = []
        for day in date_range.dates():
            if day in days or day not in rows:
                points.append(DailyPoint(analysis_date=day, **self._fields(connection, rows.get(day, {}))))
            else:
                points.append(WithheldPoint(analysis_date=day))
        return points

    def info(self, release: Release, date_range: DateRange, group_id: str | None = None) -> DisclosureInfo:
        return DisclosureInfo(floor=self.floor, withheld_days=release.withheld_days(date_range, group_id))

    def dimension_breakdown(
        self, connection: Connection, dimension: Dimension, date_range: DateRange
    ) -> tuple[list[DimensionRow], DisclosureInfo]:
        """A partition's rows of everyone: shown values per released day, the rest in Everyone else."""
        if dimension.disclosure != "partition":
            raise ViewerRefused(f"the {dimension.noun} breakdown is for admins")
        release = self.release(connection, date_range)
        day_sums = queries.dimension_day_sums(connection, dimension, date_range)
        counts: dict[date, dict[str, int]] = {}
        for (day, value), row in day_sums.items():
            if day in release.days:
                counts.setdefault(day, {})[value] = int(row["user_count"])
        shown: dict[date, set[str]] = {}
        uncertain = []
        for day, day_counts in counts.items():
            decided = _shown_by_counts(day_counts, self.floor)
            if decided is None:
                uncertain.append(day)
            else:
                shown[day] = decided
        if uncertain:  # only these days need to know who is behind each value
            people: dict[date, dict[str, frozenset[str]]] = {}
            for day, value, who in connection.execute(
                sa.text(_value_people_sql(dimension)), {"days": uncertain}
            ):
                people.setdefault(day, {})[value] = frozenset(who.split(","))
            shown.update({day: _shown_values(values, self.floor) for day, values in people.items()})
        cells: dict[str | None, list[Any]] = {}
        merged: set[str] = set()
        for (day, value), row in day_sums.items():
            if day not in release.days:
                continue
            if value in shown.get(day, ()):
                cells.setdefault(value, []).append(row)
            else:
                cells.setdefault(None, []).append(row)
                merged.add(value)
        rows = sorted(
            (
                DimensionRow(value=value, **self._fields(connection, _add(found)))
                for value, found in cells.items()
                if value is not None
            ),
            key=lambda row: _order(row, row.value or ""),
        )
        if None in cells:
            rows.append(
                DimensionRow(
                    value=None,
                    merged=True,
                    merged_values=len(merged),
                    **self._fields(connection, _add(cells[None])),
                )
            )
        info = DisclosureInfo(
            floor=self.floor, withheld_days=release.withheld_days(date_range), merged_values=len(merged)
        )
        return rows, info

    def group_breakdown(
        self, connection: Connection, date_range: DateRange
    ) -> tuple[list[GroupRow], DisclosureInfo]:
        """Listed groups over their released days, and Everyone else (people in no released group)."""
        release = self.release(connection, date_range, GROUP.name)
        sums = queries.group_cell_sums(connection, date_range, release.groups)
        rows = []
        withheld_cells = 0
        for group in queries.listed_groups(connection, self.floor):
            withheld_cells += release.withheld_days(date_range, group.group_id)
            found = [sums[group.group_id]] if group.group_id in sums else []
            rows.append(
                GroupRow(
                    group_id=group.group_id,
                    name=group.name,
                    member_count=group.member_count,
                    **self._fields(connection, _add(found)),
                )
            )
        rows.sort(key=lambda row: (-row.total_time_saved, row.name, row.group_id or ""))
        released = {day.isoformat(): sorted(groups) for day, groups in release.groups.items()}
        outside = connection.execute(
            sa.text(_OUTSIDE_GROUPS_SQL), {**date_range.sql_params(), "released": json.dumps(released)}
        ).mappings()
        rows.append(
            GroupRow(
                group_id=None,
                name=EVERYONE_ELSE,
                member_count=None,
                merged=True,
                **self._fields(connection, _add(outside)),
            )
        )
        info = DisclosureInfo(
            floor=self.floor,
            withheld_days=release.withheld_days(date_range),
            withheld_group_days=withheld_cells,
        )
        return rows, info


def viewer_note(
    floor: int, *, withheld_days: int, merged_values: int, withheld_group_days: int
) -> str | None:
    """The dashboard's one line for a viewer when something was withheld; None when nothing was."""
    parts = []
    if withheld_days:
        parts.append(
            f"{withheld_days} day{'s' if withheld_days != 1 else ''} with fewer than {floor} active "
            "people are left out"
        )
    if merged_values:
        parts.append(
            f"{merged_values} value{'s' if merged_values != 1 else ''} with fewer than {floor} people "
            f"behind {'them' if merged_values != 1 else 'it'} on some day {'are' if merged_values != 1 else 'is'} "
            f"shown as {EVERYONE_ELSE}"
        )
    if withheld_group_days:
        parts.append(
            f"{withheld_group_days} group-day{'s' if withheld_group_days != 1 else ''} count under "
            f"{EVERYONE_ELSE} instead of their group"
        )
    if not parts:
        return None
    return "For privacy, " + "; ".join(parts) + "."
