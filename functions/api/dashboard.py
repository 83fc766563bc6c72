"""The dashboard: login form, the server-rendered page, its SVG charts and static assets.

No JavaScript: range presets, the custom range and the group filter are links and a
GET form; charts are SVG images from `/charts/...`. The session cookie is
HttpOnly, SameSite=Strict, Secure in production and expires with the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import flask
from pydantic import ValidationError
from werkzeug.wrappers import Response

from functions.api import calibration_views, charts
from functions.api.services import ApiServices
from functions.backfill_progress import BackfillProgress, read_backfill
from functions.calibrated import calibration_note
from functions.dimensions import DIMENSIONS, GROUP, Dimension, dimension
from functions.read import queries
from functions.read.health import health_report
from functions.read.schemas import (
    BreakdownQuery,
    DateRange,
    DimensionRow,
    Figures,
    GroupInfo,
    HealthResponse,
)
from functions.read.side import ReadSide
from functions.value import COST_UNKNOWN, MAX_UNPRICED_SHARE
from shared.auth import client_address, password_role, session_cookie_name, valid_for_some_role
from shared.errors import AuthenticationFailed, InvalidParameter, RateLimited, validation_problems
from shared.roles import SESSION_ROLES, Role

__all__ = [
    "CHART_NAMES",
    "PRESET_DAYS",
    "TEMPLATE_FILTERS",
    "TEMPLATE_GLOBALS",
    "chart",
    "dashboard_page",
    "login_page",
    "login_submit",
    "logout",
    "same_origin",
    "static_file",
    "wait_text",
]

PRESET_DAYS = (7, 30, 90, 365)
STATIC_DIR = Path(__file__).resolve().parent / "static"
_TOP_USERS = 10
TREND_CHART = "daily-trend"
CHART_NAMES: tuple[str, ...] = (TREND_CHART, *(d.chart for d in DIMENSIONS))


@dataclass(frozen=True)
class Panel:
    """One breakdown panel of the page: its dimension and rows."""

    dimension: Dimension
    rows: list[DimensionRow]


def same_origin(request: flask.Request) -> bool:
    """False when the request carries an Origin of another host (a cross-site form post)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # browsers send Origin on POST; SameSite=Strict covers old ones
    return urlsplit(origin).netloc == request.host


def _render(template: str, status: int = 200, **context: Any) -> flask.Response:
    response = flask.make_response(flask.render_template(template, **context), status)
    response.mimetype = "text/html"
    return response


# --- login and logout --------------------------------------------------------------------


def wait_text(seconds: int) -> str:
    """`45 seconds`, `4 minutes 10 seconds`: how long a locked-out client must wait."""
    minutes, rest = divmod(max(1, seconds), 60)
    parts = [f"{minutes} minute{'s' if minutes != 1 else ''}"] if minutes else []
    if rest or not minutes:
        parts.append(f"{rest} second{'s' if rest != 1 else ''}")
    return " ".join(parts)


def _locked_out(exc: RateLimited) -> Response:
    response: Response = _render(
        "login.html",
        429,
        error=f"Too many failed attempts. Try again in {wait_text(exc.retry_after_seconds)}.",
    )
    response.headers["Retry-After"] = str(exc.retry_after_seconds)
    return response


def _session_value(services: ApiServices) -> str | None:
    """The request's session cookie when its signature holds (alive or not)."""
    cookie = flask.request.cookies.get(session_cookie_name(services.settings))
    return cookie if cookie and services.signer and services.signer.verify(cookie) else None


def _client(services: ApiServices) -> str:
    return client_address(flask.request, behind_google_front_end=services.settings.is_production)


def login_page(services: ApiServices) -> Response:
    cookie = _session_value(services)
    signer, sessions = services.signer, services.sessions
    if cookie and signer and sessions and sessions.role(signer.session_id(cookie)):
        return flask.redirect(flask.url_for("dashboard"), code=303)
    assert services.limiter is not None
    try:
        services.limiter.check(_client(services))
    except RateLimited as exc:
        return _locked_out(exc)
    return _render("login.html")


def login_submit(services: ApiServices) -> Response:
    """The password decides the role: the admin password signs in an admin, the viewer's a viewer."""
    settings = services.settings
    if not same_origin(flask.request):
        raise AuthenticationFailed("cross-site sign-in refused", status_code=403)
    client = _client(services)
    assert services.limiter is not None and services.signer is not None and services.sessions is not None
    password = flask.request.form.get("password", "")

    def session_role() -> Role:
        role = password_role(password, settings, roles=SESSION_ROLES)
        if role is None:
            raise AuthenticationFailed("wrong password")
        return role

    try:
        role = services.limiter.attempt(
            client,
            password,
            session_role,
            known=lambda: valid_for_some_role(password, settings, services.role_lookup),
        )
    except RateLimited as exc:
        return _locked_out(exc)
    except AuthenticationFailed:
        return _render("login.html", 401, error="Wrong password.")
    value = services.signer.issue()
    services.sessions.create(services.signer.session_id(value), role)
    response = flask.redirect(flask.url_for("dashboard"), code=303)
    response.set_cookie(
        session_cookie_name(settings),
        value,
        max_age=services.signer.ttl_seconds,
        path="/",
        secure=settings.is_production,
        httponly=True,
        samesite="Strict",
    )
    return response


def logout(services: ApiServices) -> Response:
    """Ends the session on the server (its cookie is refused from now on) and clears the cookie."""
    cookie = _session_value(services)
    if cookie and services.sessions and services.signer:
        services.sessions.revoke(services.signer.session_id(cookie))
    response = flask.redirect(flask.url_for("login"), code=303)
    response.delete_cookie(
        session_cookie_name(services.settings),
        path="/",
        secure=services.settings.is_production,
        httponly=True,
        samesite="Strict",
    )
    return response


def static_file(services: ApiServices, filename: str) -> flask.Response:
    return flask.send_from_directory(STATIC_DIR, filename, max_age=3600)


# --- the page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Filters:
    query: BreakdownQuery
    date_range: DateRange
    error: str | None


def _filters(services: ApiServices, args: dict[str, str]) -> _Filters:
    wanted = {key: value for key, value in args.items() if key in ("days", "start_date", "end_date", "group")}
    wanted = {key: value for key, value in wanted.items() if value != ""}
    try:
        query = BreakdownQuery.model_validate(wanted)
        return _Filters(query, query.date_range(services.today()), None)
    except ValidationError as exc:
        error = str(validation_problems(exc, whole="range")[0])
    except InvalidParameter as exc:
        error = str(exc)
    try:
        query = BreakdownQuery.model_validate({"group": wanted.get("group") or None})
    except ValidationError:
        query = BreakdownQuery.model_validate({})
    return _Filters(query, query.date_range(services.today()), error)


def _query_string(date_range: DateRange, group: str | None, *, preset: int | None) -> str:
    params: dict[str, str] = (
        {"days": str(preset)}
        if preset
        else {"start_date": date_range.start_date.isoformat(), "end_date": date_range.end_date.isoformat()}
    )
    if group:
        params["group"] = group
    return urlencode(params)


def _processing(services: ApiServices) -> BackfillProgress | None:
    """Locally, how far `serve`'s backfill is (the page shows it and refreshes until done)."""
    with services.engine.connect() as connection:
        return read_backfill(connection, services.settings, services.now())


def _health(services: ApiServices) -> HealthResponse | None:
    try:
        return health_report(
            services.engine, services.settings, services.now(), services.scheduler_client_factory
        )
    except Exception:  # the page still shows the figures when health cannot be read
        flask.current_app.logger.exception("health report failed")
        return None


def dashboard_page(services: ApiServices, read: ReadSide) -> flask.Response:
    """The page; a viewer gets it without the per-person panel, the CSV link and pipeline settings."""
    settings = services.settings
    is_admin = read.role is Role.ADMIN
    filters = _filters(services, flask.request.args.to_dict())
    date_range, error = filters.date_range, filters.error
    group: GroupInfo | None = None
    with read.engine.connect() as connection:
        try:
            group = read.group(connection, filters.query.group)
        except InvalidParameter as exc:
            error = str(exc)
        group_id = group.group_id if group else None
        summary = read.summary(connection, queries.Scope(group_id=group_id), date_range)
        groups = read.group_breakdown(connection, date_range)
        breakdowns = [
            read.dimension_breakdown(connection, d, date_range, group_id)
            for d in read.breakdown_dimensions(group_id)
        ]
        users = (
            read.user_breakdown(connection, date_range, limit=_TOP_USERS, group_id=group_id)
            if read.people_visible
            else []
        )
        note = read.note(
            connection, summary, breakdowns, groups, services.today()
        )  # what disclosure control withheld, if anything
        current, previous, trend = summary.current, summary.previous, summary.trend
        panels = [Panel(b.dimension, b.rows) for b in breakdowns]
        calibrated = calibration_note(connection, current, settings)
        earlier = summary.previous_range
    ends_yesterday = date_range.end_date == services.today() - timedelta(days=1)
    preset = date_range.days if ends_yesterday and date_range.days in PRESET_DAYS else None
    query_string = _query_string(date_range, group_id, preset=preset)
    csrf = ""
    cookie = flask.request.cookies.get(session_cookie_name(settings))
    if cookie and services.signer:
        csrf = services.signer.csrf_token(cookie)
    return _render(
        "dashboard.html",
        settings=settings,
        error=error,
        date_range=date_range,
        shown_range=summary.range,  # a viewer's range snaps to whole published periods
        previous_range=earlier,
        preset=preset,
        presets=[
            (days, _query_string(date_range, group_id, preset=days), days == preset) for days in PRESET_DAYS
        ],
        group=group,
        groups=groups.rows,
        group_rows=[
            (row, _query_string(date_range, row.group_id, preset=preset) if row.group_id else None)
            for row in groups.rows
        ],
        disclosure_note=note,
        viewer_group_breakdowns=not is_admin and group_id is not None,
        hidden_groups=groups.hidden_group_count,
        current=current,
        previous=previous,
        trend=trend,
        users=users,
        panels=panels,
        query_string=query_string,
        csv_query=_query_string(date_range, group_id, preset=None),
        health=_health(services),
        processing=_processing(services),
        is_admin=is_admin,
        csrf_token=csrf,
        today=services.today(),
        calibration=calibration_views.dashboard_report(services) if is_admin else None,
        calibration_pending=calibration_views.pending(services) if is_admin else None,
        calibration_note=calibrated,
    )


# --- charts ------------------------------------------------------------------------------


def chart(services: ApiServices, read: ReadSide, chart: str) -> flask.Response:
    """One chart of the dashboard; an error image (503) when it cannot be drawn within its budget."""
    try:
        return _chart(services, read, chart)
    except charts.ChartRenderFailed as exc:
        flask.current_app.logger.error("chart %s not drawn: %s", chart, exc)
        return charts.svg_response(charts.ERROR_SVG, status=503)


def _chart(services: ApiServices, read: ReadSide, chart: str) -> flask.Response:
    """One chart of the dashboard, for the same `days`/`start_date`/`end_date`/`group` as the page."""
    filters = _filters(services, flask.request.args.to_dict())
    if filters.error:
        raise InvalidParameter("range", filters.error)
    date_range = filters.date_range
    narrow = flask.request.args.get("size") == "narrow"  # the phone variant (see charts.NARROW_TREND)
    with read.engine.connect() as connection:
        group = read.group(connection, filters.query.group)
        group_id = group.group_id if group else None
        if chart == TREND_CHART:
            points = read.trend(connection, queries.Scope(group_id=group_id), date_range).rows
            return charts.svg_response(
                charts.trend_chart(
                    points,
                    budget_seconds=services.settings.chart_render_seconds,
                    **(charts.NARROW_TREND if narrow else {}),
                )
            )
        rows: list[Figures]
        split = dimension(chart)
        if split is GROUP:
            shown = read.group_breakdown(connection, date_range).rows
            labels, rows = [row.name for row in shown], list(shown)
        else:
            if split not in read.breakdown_dimensions(None):
                raise AuthenticationFailed(f"the {split.noun} chart is for admins", status_code=403)
            found = read.dimension_breakdown(connection, split, date_range, group_id).rows
            labels = [row.value or "" for row in found]
            rows = list(found)
    return charts.svg_response(
        charts.breakdown_chart(
            labels,
            rows,
            budget_seconds=services.settings.chart_render_seconds,
            **(charts.NARROW_BREAKDOWN if narrow else {}),
        )
    )


def _hours(minutes: float | None) -> str:
    """Minutes as hours for people: `12.5 h`, `1,234 h`."""
    if minutes is None:  # not published (a viewer's withheld figure): never "0.0 h"
        return "–"
    hours = minutes / 60
    return f"{hours:,.0f} h" if hours >= 100 else f"{hours:,.1f} h"


def _hours_number(minutes: float | None) -> str:
    if minutes is None:
        return "–"
    hours = minutes / 60
    return f"{hours:,.0f}" if hours >= 100 else f"{hours:,.1f}"


def _minutes(minutes: float | None) -> str:
    return "–" if minutes is None else f"{minutes:,.0f} min"


def _day(day: date) -> str:
    return f"{day.day} {day.strftime('%b %Y')}"


def _change(current: int, previous: int) -> str:
    if not previous:
        return "no data in the previous period" if current else "no change"
    pct = (current - previous) * 100 / previous
    arrow = "▲" if pct > 0 else "▼" if pct < 0 else "="
    return f"{arrow} {abs(pct):.0f} % vs previous period"


def _trend_class(current: int, previous: int) -> str:
    if not previous or current == previous:
        return "flat"
    return "up" if current > previous else "down"


def _pseudonym(user_id_hash: str) -> str:
    return user_id_hash[:10]


# what a return says when the cost is not known, and the share of unpriced tokens that makes it so
TEMPLATE_GLOBALS = {"COST_UNKNOWN": COST_UNKNOWN, "MAX_UNPRICED_SHARE": MAX_UNPRICED_SHARE}

TEMPLATE_FILTERS = {
    "hours": _hours,
    "hours_number": _hours_number,
    "minutes": _minutes,
    "day": _day,
    "change": _change,
    "trend_class": _trend_class,
    "pseudonym": _pseudonym,
}
