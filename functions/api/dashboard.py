"""The dashboard: login form, the server-rendered page, its SVG charts and static assets.

No JavaScript: range presets, the custom range and the group filter are links and a
GET form; charts are SVG images from `/charts/...`. The session cookie is
HttpOnly, SameSite=Strict, Secure in production and expires with the session.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import flask
from pydantic import ValidationError
from werkzeug.wrappers import Response

from functions.api import charts, queries
from functions.api.endpoints import checked_group, previous_range
from functions.api.health import health_report
from functions.api.schemas import (
    BreakdownQuery,
    DateRange,
    Figures,
    GroupInfo,
    HealthResponse,
    InvalidParameter,
)
from functions.api.services import ApiServices
from shared.auth import RateLimited, client_address, session_cookie_name
from shared.errors import AuthenticationFailed

__all__ = [
    "PRESET_DAYS",
    "TEMPLATE_FILTERS",
    "chart",
    "dashboard_page",
    "login_page",
    "login_submit",
    "logout",
    "same_origin",
    "static_file",
]

PRESET_DAYS = (7, 30, 90, 365)
STATIC_DIR = Path(__file__).resolve().parent / "static"
_SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_TOP_USERS = 10


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


def login_page(services: ApiServices) -> Response:
    cookie = flask.request.cookies.get(session_cookie_name(services.settings))
    if services.signer and services.signer.verify(cookie):
        return flask.redirect(flask.url_for("dashboard"), code=303)
    return _render("login.html")


def login_submit(services: ApiServices) -> Response:
    settings = services.settings
    if not same_origin(flask.request):
        raise AuthenticationFailed("cross-site sign-in refused", status_code=403)
    client = client_address(flask.request, behind_google_front_end=settings.is_production)
    try:
        services.limiter.check(client)
    except RateLimited as exc:
        minutes = max(1, round(exc.retry_after_seconds / 60))
        response: Response = _render(
            "login.html", 429, error=f"Too many failed attempts. Try again in about {minutes} minutes."
        )
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    password = flask.request.form.get("password", "")
    expected = settings.dashboard_password.get_secret_value()
    if not password or not hmac.compare_digest(password.encode(), expected.encode()):
        services.limiter.record_failure(client)
        return _render("login.html", 401, error="Wrong password.")
    assert services.signer is not None
    response = flask.redirect(flask.url_for("dashboard"), code=303)
    response.set_cookie(
        session_cookie_name(settings),
        services.signer.issue(),
        max_age=services.signer.ttl_seconds,
        path="/",
        secure=settings.is_production,
        httponly=True,
        samesite="Strict",
    )
    return response


def logout(services: ApiServices) -> Response:
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
        problem = exc.errors(include_url=False)[0]
        error = f"{'.'.join(map(str, problem['loc'])) or 'range'}: {problem['msg']}"
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


def _health(services: ApiServices) -> HealthResponse | None:
    try:
        return health_report(
            services.engine, services.settings, services.now(), services.scheduler_client_factory
        )
    except Exception:  # the page still shows the figures when health cannot be read
        flask.current_app.logger.exception("health report failed")
        return None


def dashboard_page(services: ApiServices) -> flask.Response:
    settings = services.settings
    filters = _filters(services, flask.request.args.to_dict())
    date_range, error = filters.date_range, filters.error
    earlier = previous_range(date_range)
    group: GroupInfo | None = None
    with services.engine.connect() as connection:
        try:
            group = checked_group(connection, services, filters.query.group)
        except InvalidParameter as exc:
            error = str(exc)
        group_id = group.group_id if group else None
        scope = queries.Scope(group_id=group_id)
        current = queries.figures(connection, scope, date_range)
        previous = queries.figures(connection, scope, earlier)
        trend = queries.daily_trend(connection, scope, date_range)
        users = queries.user_breakdown(connection, date_range, limit=_TOP_USERS, group_id=group_id)
        models = queries.dimension_breakdown(connection, "model", date_range, group_id=group_id)
        categories = queries.dimension_breakdown(connection, "category", date_range, group_id=group_id)
        groups, hidden_groups = queries.group_breakdown(
            connection, date_range, min_group_size=settings.min_group_size
        )
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
        previous_range=earlier,
        preset=preset,
        presets=[
            (days, _query_string(date_range, group_id, preset=days), days == preset) for days in PRESET_DAYS
        ],
        group=group,
        groups=groups,
        group_rows=[(row, _query_string(date_range, row.group_id, preset=preset)) for row in groups],
        hidden_groups=hidden_groups,
        current=current,
        previous=previous,
        trend=trend,
        users=users,
        models=models,
        categories=categories,
        query_string=query_string,
        csv_query=_query_string(date_range, group_id, preset=None),
        health=_health(services),
        csrf_token=csrf,
        today=services.today(),
    )


# --- charts ------------------------------------------------------------------------------


def _svg(body: bytes) -> flask.Response:
    response = flask.Response(body, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = _SVG_CSP
    return response


def chart(services: ApiServices, chart: str) -> flask.Response:
    """One chart of the dashboard, for the same `days`/`start_date`/`end_date`/`group` as the page."""
    filters = _filters(services, flask.request.args.to_dict())
    if filters.error:
        raise InvalidParameter("range", filters.error)
    date_range = filters.date_range
    narrow = flask.request.args.get("size") == "narrow"  # the phone variant (see charts.NARROW_TREND)
    with services.engine.connect() as connection:
        group = checked_group(connection, services, filters.query.group)
        group_id = group.group_id if group else None
        if chart == "daily-trend":
            points = queries.daily_trend(connection, queries.Scope(group_id=group_id), date_range)
            return _svg(charts.trend_chart(points, **(charts.NARROW_TREND if narrow else {})))
        rows: list[Figures]
        if chart == "group":
            shown, _ = queries.group_breakdown(
                connection, date_range, min_group_size=services.settings.min_group_size
            )
            labels, rows = [row.name for row in shown], list(shown)
        else:
            found = queries.dimension_breakdown(connection, chart, date_range, group_id=group_id)  # type: ignore[arg-type]
            labels, rows = [row.value for row in found], list(found)
    return _svg(charts.breakdown_chart(labels, rows, **(charts.NARROW_BREAKDOWN if narrow else {})))


def _hours(minutes: float | None) -> str:
    """Minutes as hours for people: `12.5 h`, `1,234 h`."""
    hours = (minutes or 0) / 60
    return f"{hours:,.0f} h" if hours >= 100 else f"{hours:,.1f} h"


def _hours_number(minutes: float | None) -> str:
    hours = (minutes or 0) / 60
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


TEMPLATE_FILTERS = {
    "hours": _hours,
    "hours_number": _hours_number,
    "minutes": _minutes,
    "day": _day,
    "change": _change,
    "trend_class": _trend_class,
    "pseudonym": _pseudonym,
}
