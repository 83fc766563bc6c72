"""The read side: the one way the dashboard, the API and the CLI read figures.

A request's principal is resolved once, at the edge (the web package's route wrapper,
or the CLI, which acts as an admin), and `read_side` picks the implementation for its
role: `AdminReadSide` (the raw figures of `queries.py`) or `ViewerReadSide` (the
disclosure-controlled figures). Both answer through the same methods with the same
signatures, so no caller chooses between two APIs (a viewer's come from published
releases, `releases.py`); there is no default role and no
fall-back to raw figures: a role without read access is refused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.engine import Connection, Engine

from functions.dimensions import STORED_DIMENSIONS, Dimension
from functions.read import queries, releases
from functions.read.csv_export import stream_csv
from functions.read.schemas import (
    DateRange,
    DimensionRow,
    DisclosureInfo,
    Figures,
    GroupInfo,
    GroupRow,
    InvalidParameter,
    PeriodPoint,
    PublishedPeriod,
    UserRow,
    WithheldPoint,
)
from shared.config import ReleasePeriod, Settings
from shared.errors import AuthenticationFailed, RequestRejected
from shared.roles import DISCLOSURE_CONTROLLED, READERS, Role

__all__ = [
    "AdminReadSide",
    "Breakdown",
    "GroupBreakdown",
    "ReadSide",
    "Summary",
    "Trend",
    "ViewerReadSide",
    "ViewerRefused",
    "read_side",
]


@dataclass(frozen=True)
class Summary:
    """A scope's figures over a range and the range of equal length before it, with its trend."""

    range: DateRange
    current: Figures
    previous_range: DateRange
    previous: Figures
    trend: list[Any]
    disclosure: DisclosureInfo | None = None


@dataclass(frozen=True)
class Trend:
    range: DateRange
    rows: list[Any]
    disclosure: DisclosureInfo | None = None


@dataclass(frozen=True)
class Breakdown:
    dimension: Dimension
    rows: list[DimensionRow]
    disclosure: DisclosureInfo | None = None


@dataclass(frozen=True)
class GroupBreakdown:
    rows: list[GroupRow]
    hidden_group_count: int
    disclosure: DisclosureInfo | None = None


@dataclass
class ReadSide(ABC):
    """What every role's read side shares (settings, engine, the group look-up) and must answer."""

    settings: Settings
    engine: Engine
    role: Role = field(init=False)

    @property
    def people_visible(self) -> bool:
        """Whether per-person rows (top users, the CSV export) are readable on this side."""
        return False

    def group(self, connection: Connection, group_id: str | None) -> GroupInfo | None:
        """The group a `group` filter names; 422 when it is unknown or too small to show."""
        if group_id is None:
            return None
        group = queries.load_group(connection, group_id)
        if group is None:
            raise InvalidParameter("group", f"no group with id {group_id!r}")
        minimum = self.settings.min_group_size
        if group.member_count < minimum:
            raise InvalidParameter(
                "group",
                f"groups with fewer than {minimum} members are hidden so no individual can be singled out",
            )
        return group

    # --- the figures: every side implements these, with these signatures

    @abstractmethod
    def breakdown_dimensions(self, group_id: str | None) -> tuple[Dimension, ...]:
        """The stored dimensions this side breaks the scope down by (the dashboard's panels)."""
        ...

    @abstractmethod
    def summary(self, connection: Connection, scope: queries.Scope, date_range: DateRange) -> Summary: ...

    @abstractmethod
    def trend(self, connection: Connection, scope: queries.Scope, date_range: DateRange) -> Trend: ...

    @abstractmethod
    def dimension_breakdown(
        self, connection: Connection, dimension: Dimension, date_range: DateRange, group_id: str | None
    ) -> Breakdown: ...

    @abstractmethod
    def group_breakdown(self, connection: Connection, date_range: DateRange) -> GroupBreakdown: ...

    @abstractmethod
    def user_breakdown(
        self, connection: Connection, date_range: DateRange, *, limit: int, group_id: str | None
    ) -> list[UserRow]: ...

    @abstractmethod
    def csv(
        self,
        date_range: DateRange,
        *,
        group_id: str | None = None,
        dimension_filter: tuple[Dimension, str] | None = None,
    ) -> Iterator[bytes]:
        """The analyses of the range as CSV chunks (per conversation: admins only)."""
        ...

    @abstractmethod
    def note(
        self,
        connection: Connection,
        summary: Summary,
        breakdowns: list[Breakdown],
        groups: GroupBreakdown,
        today: date,
    ) -> str | None:
        """One line on what this side left out of a page's figures; None when nothing was."""
        ...


@dataclass
class AdminReadSide(ReadSide):
    """The raw figures of the aggregate tables."""

    def __post_init__(self) -> None:
        self.role = Role.ADMIN

    @property
    def people_visible(self) -> bool:
        return True

    def breakdown_dimensions(self, group_id: str | None) -> tuple[Dimension, ...]:
        return STORED_DIMENSIONS

    def summary(self, connection: Connection, scope: queries.Scope, date_range: DateRange) -> Summary:
        earlier = date_range.previous()
        return Summary(
            range=date_range,
            current=queries.figures(connection, scope, date_range, self.settings),
            previous_range=earlier,
            previous=queries.figures(connection, scope, earlier, self.settings),
            trend=list(queries.daily_trend(connection, scope, date_range, self.settings)),
        )

    def trend(self, connection: Connection, scope: queries.Scope, date_range: DateRange) -> Trend:
        return Trend(date_range, list(queries.daily_trend(connection, scope, date_range, self.settings)))

    def dimension_breakdown(
        self, connection: Connection, dimension: Dimension, date_range: DateRange, group_id: str | None
    ) -> Breakdown:
        rows = queries.dimension_breakdown(
            connection, dimension, date_range, self.settings, group_id=group_id
        )
        return Breakdown(dimension, rows)

    def group_breakdown(self, connection: Connection, date_range: DateRange) -> GroupBreakdown:
        rows, hidden = queries.group_breakdown(connection, date_range, self.settings)
        return GroupBreakdown(rows, hidden)

    def user_breakdown(
        self, connection: Connection, date_range: DateRange, *, limit: int, group_id: str | None
    ) -> list[UserRow]:
        return queries.user_breakdown(connection, date_range, self.settings, limit=limit, group_id=group_id)

    def csv(
        self,
        date_range: DateRange,
        *,
        group_id: str | None = None,
        dimension_filter: tuple[Dimension, str] | None = None,
    ) -> Iterator[bytes]:
        return stream_csv(
            self.engine,
            self.settings,
            date_range.start_date,
            date_range.end_date,
            group_id=group_id,
            dimension_filter=dimension_filter,
        )

    def note(
        self,
        connection: Connection,
        summary: Summary,
        breakdowns: list[Breakdown],
        groups: GroupBreakdown,
        today: date,
    ) -> str | None:
        return None


@dataclass
class ViewerReadSide(ReadSide):
    """Published releases only (`releases.py`): no live query of the figures, no per-day figure.

    A range snaps to the whole published periods inside it (weeks; months for 8 weeks or
    more when months are published); when it holds none, to the latest published period
    ending by its end. The answer says which periods, and when they were published."""

    _releases: dict[ReleasePeriod, list[releases.Release]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self.role = Role.VIEWER

    def breakdown_dimensions(self, group_id: str | None) -> tuple[Dimension, ...]:
        return ()  # model and category breakdowns are not released: admin-only

    def _kind(self, date_range: DateRange) -> ReleasePeriod:
        periods = self.settings.release_periods
        if ReleasePeriod.MONTH in periods and (
            date_range.days >= _MONTHS_FROM_DAYS or ReleasePeriod.WEEK not in periods
        ):
            return ReleasePeriod.MONTH
        return ReleasePeriod.WEEK

    def _published(self, connection: Connection, kind: ReleasePeriod) -> list[releases.Release]:
        if kind not in self._releases:
            self._releases[kind] = releases.load_releases(connection, kind, self.settings.min_group_size)
        return self._releases[kind]

    def _snap(
        self, connection: Connection, date_range: DateRange
    ) -> tuple[ReleasePeriod, list[releases.Release], list[releases.Release]]:
        """The kind, the published releases of the range, and as many just before them."""
        kind = self._kind(date_range)
        published = self._published(connection, kind)
        inside = [
            r
            for r in published
            if r.period.start >= date_range.start_date and r.period.end <= date_range.end_date
        ]
        if not inside:
            ending = [r for r in published if r.period.end <= date_range.end_date]
            inside = ending[-1:]
        if not inside:
            return kind, [], []
        before = [r for r in published if r.period.end < inside[0].period.start]
        return kind, inside, before[-len(inside) :]

    def _info(
        self,
        kind: ReleasePeriod,
        requested: DateRange,
        chosen: Sequence[releases.Release],
        group_id: str | None,
        *,
        cells: Sequence[releases.Cell] = (),
    ) -> DisclosureInfo:
        periods = []
        withheld = 0
        nulls: dict[str, str] = {}
        for release in chosen:
            cell = release.cell(group_id)
            reason = cell.withheld if cell is not None else "the group was not listed when this was published"
            withheld += reason is not None
            if cell is not None:
                nulls.update({name: why for name, why in cell.nulls.items() if name not in nulls})
            periods.append(
                PublishedPeriod(
                    period=release.period.label,
                    start_date=release.period.start,
                    end_date=release.period.end,
                    release_version=release.version,
                    published_at=release.published_at,
                    withheld=reason,
                )
            )
        for cell in cells:
            withheld += cell.withheld is not None
            nulls.update({name: why for name, why in cell.nulls.items() if name not in nulls})
        nulls.update(releases.VIEWER_ADMIN_ONLY)
        return DisclosureInfo(
            floor=self.settings.min_group_size,
            period_kind=kind.value if chosen else None,
            requested_range=requested,
            periods=periods,
            as_published_on=releases.as_of(chosen),
            withheld_periods=withheld,
            null_figures=nulls,
        )

    def _figures(self, chosen: Sequence[releases.Release], group_id: str | None) -> Figures:
        cells = [r.cell(group_id) for r in chosen]
        return Figures(**releases.released_fields(releases.sum_cells(cells), self.settings))

    def _points(self, chosen: Sequence[releases.Release], group_id: str | None) -> list[Any]:
        points: list[Any] = []
        for release in chosen:
            cell = release.cell(group_id)
            if cell is None or cell.sums is None:
                points.append(WithheldPoint(analysis_date=release.period.start))
                continue
            points.append(
                PeriodPoint(
                    analysis_date=release.period.start,
                    period=release.period.label,
                    period_end=release.period.end,
                    release_version=release.version,
                    published_at=release.published_at,
                    **releases.released_fields(cell.sums, self.settings),
                )
            )
        return points

    @staticmethod
    def _check(scope: queries.Scope) -> None:
        if scope.user_id_hash is not None:
            raise ViewerRefused("user_id_hash: a viewer sees no figures of one person")
        if scope.dimension is not None:
            raise ViewerRefused(
                f"{scope.dimension.filter_parameter}: a viewer sees the published summary and group "
                "breakdown only; filters by model, category or tag are for admins"
            )

    @staticmethod
    def _span(chosen: Sequence[releases.Release], fallback: DateRange) -> DateRange:
        if not chosen:
            return fallback
        return DateRange.between(chosen[0].period.start, chosen[-1].period.end)

    def summary(self, connection: Connection, scope: queries.Scope, date_range: DateRange) -> Summary:
        self._check(scope)
        kind, chosen, before = self._snap(connection, date_range)
        snapped = self._span(chosen, date_range)
        return Summary(
            range=snapped,
            current=self._figures(chosen, scope.group_id),
            previous_range=self._span(before, snapped.previous()),
            previous=self._figures(before, scope.group_id),
            trend=self._points(chosen, scope.group_id),
            disclosure=self._info(kind, date_range, chosen, scope.group_id),
        )

    def trend(self, connection: Connection, scope: queries.Scope, date_range: DateRange) -> Trend:
        self._check(scope)
        kind, chosen, _ = self._snap(connection, date_range)
        return Trend(
            self._span(chosen, date_range),
            self._points(chosen, scope.group_id),
            self._info(kind, date_range, chosen, scope.group_id),
        )

    def dimension_breakdown(
        self, connection: Connection, dimension: Dimension, date_range: DateRange, group_id: str | None
    ) -> Breakdown:
        raise ViewerRefused(f"the {dimension.noun} breakdown is not published: it is for admins")

    def group_breakdown(self, connection: Connection, date_range: DateRange) -> GroupBreakdown:
        kind, chosen, _ = self._snap(connection, date_range)
        groups: dict[str, GroupInfo] = {}
        cells: dict[str, list[releases.Cell]] = {}
        for release in chosen:
            for group, cell in release.groups:
                groups.setdefault(group.group_id, group)
                cells.setdefault(group.group_id, []).append(cell)
        rows = []
        for group_id, group in groups.items():
            sums = releases.sum_cells([release.cell(group_id) for release in chosen])
            if sums is None:
                continue  # withheld in every period of the range
            rows.append(
                GroupRow(
                    group_id=group.group_id,
                    name=group.name,
                    member_count=group.member_count,
                    **releases.released_fields(sums, self.settings),
                )
            )
        rows.sort(key=lambda row: (-(row.total_time_saved or 0), row.name, row.group_id or ""))
        info = self._info(
            kind, date_range, chosen, None, cells=[c for found in cells.values() for c in found]
        )
        return GroupBreakdown(
            rows, queries.hidden_group_count(connection, self.settings.min_group_size), info
        )

    def user_breakdown(
        self, connection: Connection, date_range: DateRange, *, limit: int, group_id: str | None
    ) -> list[UserRow]:
        raise ViewerRefused("a viewer sees no figures of one person")

    def csv(
        self,
        date_range: DateRange,
        *,
        group_id: str | None = None,
        dimension_filter: tuple[Dimension, str] | None = None,
    ) -> Iterator[bytes]:
        raise ViewerRefused("the export lists conversations: a viewer sees no such rows")

    def note(
        self,
        connection: Connection,
        summary: Summary,
        breakdowns: list[Breakdown],
        groups: GroupBreakdown,
        today: date,
    ) -> str | None:
        info = summary.disclosure
        if info is None or not info.periods:
            text = (
                "No release is published yet: a viewer sees the figures of closed weeks and months, "
                f"{self.settings.release_grace_days} days after they close"
            )
            if releases.load_releases(connection, ReleasePeriod.WEEK, 0) or releases.load_releases(
                connection, ReleasePeriod.MONTH, 0
            ):
                return text + ". None is published for this range."
            coming = releases.first_release_due(connection, self.settings, today)
            if coming is None:
                return text + ". The first is due once the nightly runs have completed a whole week."
            period, due = coming
            return f"{text}. The first release, {_period_text(period)}, is due on {due:%d %b %Y}."
        first, last = info.periods[0], info.periods[-1]
        which = first.period if first is last else f"{first.period} … {last.period}"
        published = info.as_published_on.date().isoformat() if info.as_published_on else "?"
        parts = [
            f"Figures of {len(info.periods)} published {info.period_kind}(s), {which}, as published on {published}"
        ]
        withheld = info.withheld_periods + (groups.disclosure.withheld_periods if groups.disclosure else 0)
        if withheld:
            parts.append(f"{withheld} cell(s) withheld so that no one can be singled out")
        nulls = {**(groups.disclosure.null_figures if groups.disclosure else {}), **info.null_figures}
        nulls = {
            name: why
            for name, why in nulls.items()
            if why != releases.MONEY_OFF and name not in releases.VIEWER_ADMIN_ONLY
        }
        if nulls:
            parts.append(
                "Some figures are null (" + "; ".join(f"{k}: {v}" for k, v in sorted(nulls.items())) + ")"
            )
        return ". ".join(parts) + "."


def _period_text(period: releases.Period) -> str:
    """'week of 15–21 Jun 2026' or 'month of June 2026'."""
    if period.kind is ReleasePeriod.MONTH:
        return f"month of {period.start:%B %Y}"
    return f"week of {period.start:%d %b} – {period.end:%d %b %Y}"


_MONTHS_FROM_DAYS = 56  # a range of 8 weeks or more snaps to months (when months are published)


class ViewerRefused(RequestRejected):
    """A parameter or route the viewer role may not use (nothing of it is published): 403."""

    status_code = 403


# which reading roles are disclosure-controlled is decided once, in shared.roles
_SIDES: dict[Role, type[ReadSide]] = {
    role: ViewerReadSide if role in DISCLOSURE_CONTROLLED else AdminReadSide for role in READERS
}


def read_side(role: Role, settings: Settings, engine: Engine) -> ReadSide:
    """The read side of `role`: no default, no fall-back; a role that may not read is refused."""
    side = _SIDES.get(role)
    if side is None:
        raise AuthenticationFailed(f"the {role} role reads no figures", status_code=403)
    return side(settings=settings, engine=engine)
