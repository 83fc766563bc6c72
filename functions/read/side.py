"""The read side: the one way the dashboard, the API and the CLI read figures.

A request's principal is resolved once, at the edge (the web package's route wrapper,
or the CLI, which acts as an admin), and `read_side` picks the implementation for its
role: `AdminReadSide` (the raw figures of `queries.py`) or `ViewerReadSide` (the
disclosure-controlled figures). Both answer through the same methods with the same
signatures, so no caller chooses between two APIs; there is no default role and no
fall-back to raw figures: a role without read access is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine

from functions.dimensions import STORED_DIMENSIONS, Dimension
from functions.read import disclosure, queries
from functions.read.csv_export import stream_csv
from functions.read.schemas import (
    DateRange,
    DimensionRow,
    DisclosureInfo,
    Figures,
    GroupInfo,
    GroupRow,
    InvalidParameter,
    UserRow,
)
from shared.config import Settings
from shared.errors import AuthenticationFailed
from shared.roles import READERS, Role

__all__ = [
    "AdminReadSide",
    "Breakdown",
    "GroupBreakdown",
    "ReadSide",
    "Summary",
    "Trend",
    "ViewerReadSide",
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
class ReadSide:
    """What every role's read side shares: the settings, the engine and the group look-up."""

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

    def breakdown_dimensions(self, group_id: str | None) -> tuple[Dimension, ...]:
        """The stored dimensions this side breaks the scope down by (the dashboard's panels)."""
        raise NotImplementedError

    def summary(self, connection: Connection, scope: queries.Scope, date_range: DateRange) -> Summary:
        raise NotImplementedError

    def trend(self, connection: Connection, scope: queries.Scope, date_range: DateRange) -> Trend:
        raise NotImplementedError

    def dimension_breakdown(
        self, connection: Connection, dimension: Dimension, date_range: DateRange, group_id: str | None
    ) -> Breakdown:
        raise NotImplementedError

    def group_breakdown(self, connection: Connection, date_range: DateRange) -> GroupBreakdown:
        raise NotImplementedError

    def user_breakdown(
        self, connection: Connection, date_range: DateRange, *, limit: int, group_id: str | None
    ) -> list[UserRow]:
        raise NotImplementedError

    def csv(
        self,
        date_range: DateRange,
        *,
        group_id: str | None = None,
        dimension_filter: tuple[Dimension, str] | None = None,
    ) -> Iterator[bytes]:
        """The analyses of the range as CSV chunks (per conversation: admins only)."""
        raise NotImplementedError

    def note(self, summary: Summary, breakdowns: list[Breakdown], groups: GroupBreakdown) -> str | None:
        """One line on what this side left out of a page's figures; None when nothing was."""
        raise NotImplementedError


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

    def note(self, summary: Summary, breakdowns: list[Breakdown], groups: GroupBreakdown) -> str | None:
        return None


@dataclass
class ViewerReadSide(ReadSide):
    """Figures under disclosure control (`disclosure.py`): none describes fewer than k people."""

    _control: disclosure.Control = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.role = Role.VIEWER
        self._control = disclosure.Control(settings=self.settings)

    def breakdown_dimensions(self, group_id: str | None) -> tuple[Dimension, ...]:
        if group_id is not None:  # a viewer sees breakdowns of everyone only
            return ()
        return tuple(d for d in STORED_DIMENSIONS if d.disclosure == "partition")

    def summary(self, connection: Connection, scope: queries.Scope, date_range: DateRange) -> Summary:
        control = self._control
        control.check_summary(scope)
        earlier = date_range.previous()
        release = control.release(connection, earlier.through(date_range), scope.group_id)
        return Summary(
            range=date_range,
            current=control.figures(connection, release, date_range, scope.group_id),
            previous_range=earlier,
            previous=control.figures(connection, release, earlier, scope.group_id),
            trend=control.trend(connection, release, date_range, scope.group_id),
            disclosure=control.info(release, date_range, scope.group_id),
        )

    def trend(self, connection: Connection, scope: queries.Scope, date_range: DateRange) -> Trend:
        control = self._control
        control.check_summary(scope)
        release = control.release(connection, date_range, scope.group_id)
        return Trend(
            date_range,
            control.trend(connection, release, date_range, scope.group_id),
            control.info(release, date_range, scope.group_id),
        )

    def dimension_breakdown(
        self, connection: Connection, dimension: Dimension, date_range: DateRange, group_id: str | None
    ) -> Breakdown:
        self._control.check_breakdown(group_id)
        rows, info = self._control.dimension_breakdown(connection, dimension, date_range)
        return Breakdown(dimension, rows, info)

    def group_breakdown(self, connection: Connection, date_range: DateRange) -> GroupBreakdown:
        rows, info = self._control.group_breakdown(connection, date_range)
        return GroupBreakdown(
            rows, queries.hidden_group_count(connection, self.settings.min_group_size), info
        )

    def user_breakdown(
        self, connection: Connection, date_range: DateRange, *, limit: int, group_id: str | None
    ) -> list[UserRow]:
        raise disclosure.ViewerRefused("a viewer sees no figures of one person")

    def csv(
        self,
        date_range: DateRange,
        *,
        group_id: str | None = None,
        dimension_filter: tuple[Dimension, str] | None = None,
    ) -> Iterator[bytes]:
        raise disclosure.ViewerRefused("the export lists conversations: a viewer sees no such rows")

    def note(self, summary: Summary, breakdowns: list[Breakdown], groups: GroupBreakdown) -> str | None:
        withheld_days = summary.disclosure.withheld_days if summary.disclosure else 0
        return disclosure.viewer_note(
            self._control.floor,
            withheld_days=withheld_days,
            merged_values=sum(b.disclosure.merged_values for b in breakdowns if b.disclosure),
            withheld_group_days=groups.disclosure.withheld_group_days if groups.disclosure else 0,
        )


_SIDES: dict[Role, type[ReadSide]] = {Role.ADMIN: AdminReadSide, Role.VIEWER: ViewerReadSide}
assert set(_SIDES) == set(READERS), "every reading role has its read side"


def read_side(role: Role, settings: Settings, engine: Engine) -> ReadSide:
    """The read side of `role`: no default, no fall-back; a role that may not read is refused."""
    side = _SIDES.get(role)
    if side is None:
        raise AuthenticationFailed(f"the {role} role reads no figures", status_code=403)
    return side(settings=settings, engine=engine)
