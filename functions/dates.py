"""The date rules every caller applies (the API's parameters, the CLI's `run` and `backfill`, the report).

* A date lies between `MIN_DATE` and `MAX_DATE` (far enough back for any Open WebUI
  data; keeps date arithmetic in range).
* A range is both dates, in order, inclusive, at most `MAX_RANGE_DAYS` days long.
* A date to process is not in the future: today (in the configured time zone,
  `TZ`) is the latest.

A broken rule raises `InvalidParameter` naming the parameter at fault
(`start_date`, `end_date`, `date`); the API answers it with 422, the CLI maps it
onto its option.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from shared.errors import InvalidParameter

__all__ = [
    "MAX_DATE",
    "MAX_DAYS",
    "MAX_RANGE_DAYS",
    "MIN_DATE",
    "checked_day",
    "checked_range",
    "local_today",
]

MAX_RANGE_DAYS = 366  # a leap year
MAX_DAYS = 365  # `days=N`: the N local days ending yesterday
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2100, 12, 31)


def local_today(zone: ZoneInfo) -> date:
    """Today's date in `zone` (the configured `TZ`)."""
    return datetime.now(zone).date()


def _within_bounds(day: date, parameter: str) -> date:
    if not MIN_DATE <= day <= MAX_DATE:
        raise InvalidParameter(
            parameter, f"must be between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}"
        )
    return day


def checked_day(day: date, today: date, parameter: str = "date") -> date:
    """A single date to process: within bounds and not after `today`."""
    _within_bounds(day, parameter)
    if day > today:
        raise InvalidParameter(parameter, "must not be in the future")
    return day


def checked_range(
    start: date | None, end: date | None, what: str, *, today: date | None = None
) -> tuple[date, date]:
    """Both dates, in order, within bounds and at most `MAX_RANGE_DAYS` apart; with `today`, not in the future."""
    if start is None:
        raise InvalidParameter("start_date", "required when end_date is given")
    if end is None:
        raise InvalidParameter("end_date", "required when start_date is given")
    _within_bounds(start, "start_date")
    _within_bounds(end, "end_date")
    if start > end:
        raise InvalidParameter("start_date", "must not be after end_date")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidParameter("end_date", f"{what} may span at most {MAX_RANGE_DAYS} days")
    if today is not None and end > today:
        raise InvalidParameter("end_date", "must not be in the future")
    return start, end
