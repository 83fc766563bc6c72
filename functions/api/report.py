"""The monthly report: one or two A4 pages for print, from the same aggregate figures as the API.

`/report?month=YYYY-MM` (or `start_date` and `end_date`) serves it; `python main.py
report --month YYYY-MM --out FILE.html` writes the same page to a self-contained file
(styles inlined, the trend chart embedded) for e-mailing. No JavaScript: print CSS only.

Everything on it comes from `functions.read.queries` (the figures the API and the
dashboard show, with the same minimum group size) and the recorded rate periods.
"""

from __future__ import annotations

import base64
import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import flask
import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Connection, Engine

from functions.api import charts
from functions.api.dashboard import TEMPLATE_FILTERS, TEMPLATE_GLOBALS
from functions.api.services import ApiServices
from functions.calibrated import calibration_note
from functions.calibration import calibration_status, confirmation_report
from functions.dates import MAX_DATE, MIN_DATE, checked_range
from functions.dimensions import CATEGORY, MODEL
from functions.read import queries
from functions.read.schemas import (
    DateRange,
    DimensionRow,
    Figures,
    GroupRow,
)
from functions.read.side import ReadSide, read_side
from functions.value import FIRST_RATE_DATE, rate_periods
from shared.config import Settings
from shared.errors import InvalidParameter
from shared.estimators import registry as estimator_registry
from shared.roles import Role

__all__ = ["ReportData", "ReportQuery", "collect", "render_report", "report_page", "write_report"]

_HERE = Path(__file__).resolve().parent
_CSS = _HERE / "static" / "report.css"
_TOP_ROWS = 8  # models and groups listed on the page; the rest are summed in one line


class ReportQuery(BaseModel):
    """A calendar month, or a custom inclusive range; neither: the last full month."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    month: str | None = Field(None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM.")
    start_date: date | None = Field(None, ge=MIN_DATE, le=MAX_DATE)
    end_date: date | None = Field(None, ge=MIN_DATE, le=MAX_DATE)

    def date_range(self, today: date) -> DateRange:
        if self.month is not None:
            if self.start_date is not None or self.end_date is not None:
                raise InvalidParameter("month", "give either month or start_date and end_date")
            year, month = (int(part) for part in self.month.split("-"))
            if not MIN_DATE.year <= year <= MAX_DATE.year:
                raise InvalidParameter("month", f"must be between {MIN_DATE.year} and {MAX_DATE.year}")
            start = date(year, month, 1)
            end = date(year, month, calendar.monthrange(year, month)[1])
        elif self.start_date is not None or self.end_date is not None:
            start, end = checked_range(self.start_date, self.end_date, "a report")
        else:
            end = today.replace(day=1) - timedelta(days=1)
            start = end.replace(day=1)
        return DateRange.between(start, end)


@dataclass
class ReportData:
    date_range: DateRange
    figures: Figures
    previous: Figures
    trend: list[Any]
    categories: list[DimensionRow]
    models: list[DimensionRow]  # most hours saved per 100 USD of AI cost first
    groups: list[GroupRow]
    hidden_groups: int
    min_group_size: int
    rates: list[dict[str, Any]]
    settings: Settings
    calibration: str  # functions.calibration.calibration_status over every confirmation
    generated_at: datetime
    best_model: DimensionRow | None = None
    calibrated_note: str | None = None  # functions.calibrated.calibration_note; None when off
    other_models: int = 0
    other_groups: int = 0
    notes: list[str] = field(default_factory=list)


def _by_return(rows: list[DimensionRow]) -> list[DimensionRow]:
    """Most hours saved per dollar first; models without an AI cost (unpriced) after, by hours."""
    return sorted(
        rows,
        key=lambda row: (
            row.hours_saved_per_100_usd is None,
            -(row.hours_saved_per_100_usd or 0),
            -(row.total_time_saved or 0),
            row.value,
        ),
    )


def collect(read: ReadSide, connection: Connection, date_range: DateRange, now: datetime) -> ReportData:
    """The figures of the report, from the read side the API uses (an admin's)."""
    settings = read.settings
    summary = read.summary(connection, queries.Scope(), date_range)
    models = _by_return(read.dimension_breakdown(connection, MODEL, date_range, None).rows)
    group_answer = read.group_breakdown(connection, date_range)
    groups = [row for row in group_answer.rows if row.conversation_count]
    hidden = group_answer.hidden_group_count
    priced = [row for row in models if row.hours_saved_per_100_usd is not None]
    figures = summary.current
    return ReportData(
        date_range=date_range,
        figures=figures,
        previous=summary.previous,
        trend=summary.trend,
        categories=read.dimension_breakdown(connection, CATEGORY, date_range, None).rows,
        models=models[:_TOP_ROWS],
        other_models=max(0, len(models) - _TOP_ROWS),
        groups=groups[:_TOP_ROWS],
        other_groups=max(0, len(groups) - _TOP_ROWS),
        hidden_groups=hidden,
        min_group_size=settings.min_group_size,
        rates=rate_periods(connection, date_range.start_date, date_range.end_date),
        settings=settings,
        calibration=calibration_status(
            confirmation_report(connection, minimum=settings.calibration_min_confirmations)
        ),
        generated_at=now,
        best_model=priced[0] if priced else None,
        calibrated_note=calibration_note(connection, figures, settings),
    )


def _money(amount: float | None, currency: str | None) -> str:
    """`105.00 EUR`; without a currency the bare amount (the first end of a band)."""
    if amount is None:
        return "–"
    text = f"{amount:,.0f}" if abs(amount) >= 10_000 else f"{amount:,.2f}"
    return f"{text} {currency}" if currency else text


def _usd(amount: float | None) -> str:
    if amount is None:
        return "unpriced"
    return f"{amount:,.2f} USD" if amount >= 0.01 or amount == 0 else f"{amount:,.4f} USD"


def _number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _tokens(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:,.1f} M"
    return f"{count / 1000:,.1f} k" if count >= 1000 else str(count)


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_ENV.filters.update(TEMPLATE_FILTERS)
_ENV.globals.update(TEMPLATE_GLOBALS)
_ENV.filters.update(money=_money, usd=_usd, number=_number, tokens=_tokens)
_ENV.globals["estimator_specs"] = estimator_registry.ESTIMATORS  # read at render time


def render_report(data: ReportData, *, standalone: bool, chart_src: str = "", css_href: str = "") -> str:
    """The report's HTML: `standalone` inlines the styles and the trend chart (for a file)."""
    if standalone:
        chart_src = "data:image/svg+xml;base64," + base64.b64encode(charts.trend_chart(data.trend)).decode()
    return _ENV.get_template("report.html").render(
        data=data,
        current=data.figures,
        previous=data.previous,
        money=data.settings.money_shown,
        calibration=data.calibration,
        first_rate_date=FIRST_RATE_DATE,
        inline_css=_CSS.read_text(encoding="utf-8") if standalone else None,
        css_href=css_href,
        chart_src=chart_src,
    )


def report_page(services: ApiServices, read: ReadSide) -> flask.Response:
    """`/report`: the report of a month or range, as a print-ready page."""
    try:
        query = ReportQuery.model_validate(flask.request.args.to_dict())
    except ValidationError as exc:
        raise InvalidParameter.from_validation(exc) from exc
    date_range = query.date_range(services.today())
    with read.engine.connect() as connection:
        data = collect(read, connection, date_range, services.now())
    params = urlencode(
        {"start_date": date_range.start_date.isoformat(), "end_date": date_range.end_date.isoformat()}
    )
    html = render_report(
        data,
        standalone=False,
        chart_src=flask.url_for("chart", chart="daily-trend") + "?" + params,
        css_href=flask.url_for("assets", filename="report.css"),
    )
    response = flask.make_response(html)
    response.mimetype = "text/html"
    return response


def write_report(
    engine: Engine, settings: Settings, out: Path, query: ReportQuery, *, now: datetime | None = None
) -> DateRange:
    """Write the standalone report of `query` to `out`; returns the range it covers."""
    now = now or datetime.now(settings.zone)
    date_range = query.date_range(now.date())
    read = read_side(Role.ADMIN, settings, engine)  # the command line acts as an admin
    with engine.connect() as connection:
        data = collect(read, connection, date_range, now)
    out.write_text(render_report(data, standalone=True), encoding="utf-8")
    return date_range
