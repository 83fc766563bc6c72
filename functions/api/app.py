"""The api function's Flask app: the route table, authentication, errors and security headers.

`ROUTES` is the one place routes are declared. From it come the Flask URL map, the
OpenAPI document and the security tests' list of routes. Every route declares the
roles it admits (`shared.roles`; admin-only unless it says otherwise); the public ones
are the login page, the static assets and `/healthz` (liveness only). The role of the caller is `flask.g.principal.role`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import flask
from pydantic import BaseModel, TypeAdapter, ValidationError
from werkzeug.exceptions import HTTPException

from functions.api import calibration_views, dashboard, endpoints, feedback, report
from functions.api.access_log import install_access_log
from functions.api.openapi import build_openapi
from functions.api.services import ApiServices
from functions.calibration import CalibrationReport
from functions.dates import MAX_RANGE_DAYS
from functions.dimensions import GROUP, STORED_DIMENSIONS
from functions.read.releases import OPENAPI_NOTE
from functions.read.schemas import (
    BreakdownQuery,
    BreakdownResponse,
    ErrorResponse,
    ExportQuery,
    GroupBreakdownResponse,
    HealthResponse,
    NoQuery,
    ParameterProblem,
    RangeQuery,
    SummaryQuery,
    SummaryResponse,
    TrendQuery,
    TrendResponse,
    TriggerQuery,
    TriggerResponse,
    UserBreakdownQuery,
    UserBreakdownResponse,
)
from functions.read.side import read_side
from shared.auth import Principal, authenticate, session_cookie_name
from shared.config import Settings, get_settings
from shared.errors import (
    AuthenticationFailed,
    ConfigurationError,
    InvalidParameter,
    RateLimited,
    RequestRejected,
    RetryableError,
)
from shared.estimators import registry as estimator_registry
from shared.json_input import refuse_deep_json
from shared.logs import configure_logging
from shared.roles import ADMIN_ONLY, FEEDBACK_WRITERS, PUBLIC, READERS, Access

__all__ = ["API_PREFIX", "MAX_BODY_BYTES", "ROUTES", "Route", "create_app"]

_log = logging.getLogger(__name__)

API_PREFIX = "/api/v1/analytics"
MAX_BODY_BYTES = 64 * 1024
_EXTENSION = "time_savings_api"

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_API_CSP = "default-src 'none'; frame-ancestors 'none'"


@dataclass(frozen=True)
class Route:
    """One route: where, who may call it, what it takes and what it answers."""

    path: str
    endpoint: str
    view: Callable[..., Any]
    methods: tuple[str, ...] = ("GET",)
    access: Access = ADMIN_ONLY  # the roles admitted, or PUBLIC
    kind: Literal["api", "page"] = "api"
    session_ok: bool = True  # the dashboard's cookie is accepted (unsafe methods: with a CSRF token)
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    media_type: str = "application/json"
    summary: str = ""
    description: str = ""
    tag: str = "analytics"
    errors: tuple[tuple[int, str], ...] = ()  # statuses beyond the common ones, for OpenAPI
    reads: bool = False  # the view reads figures: it gets the read side of the caller's role

    @property
    def documented(self) -> bool:
        """API routes are in the OpenAPI document; pages and assets are not."""
        return self.kind == "api"


def _openapi(services: ApiServices, query: NoQuery) -> flask.Response:
    document = build_openapi(ROUTES, session_cookie=session_cookie_name(services.settings))
    return flask.jsonify(document)


_CHART_NAMES = ",".join(repr(name) for name in dashboard.CHART_NAMES)


def _healthz(services: ApiServices) -> flask.Response:
    """Liveness for load balancers and supervisors: the process answers; nothing else is said."""
    return flask.Response('{"status":"ok"}', mimetype="application/json")


def _api(path: str, endpoint: str, view: Callable[..., Any], **options: Any) -> Route:
    return Route(path=API_PREFIX + path, endpoint=endpoint, view=view, **options)


ROUTES: tuple[Route, ...] = (
    _api(
        "/summary",
        "summary",
        endpoints.summary,
        reads=True,
        access=READERS,
        query=SummaryQuery,
        response=SummaryResponse,
        summary="Totals over a range, with the previous period and a daily trend",
        description="Time saved, conversations, averages and confidence over the range, each with "
        "its low–high band and the estimators behind it; the same figures for the period of equal "
        "length just before; one point per day. Read from the daily aggregates only." + OPENAPI_NOTE,
    ),
    _api(
        "/daily-trend",
        "daily-trend",
        endpoints.daily_trend,
        reads=True,
        access=READERS,
        query=TrendQuery,
        response=TrendResponse,
        summary="One point per local date of the range",
        description="Every date of the range, zero where nothing was analysed, in the list envelope "
        "(`range`, `group`, `dimension`: `date`, `rows`). Time figures are in minutes." + OPENAPI_NOTE,
    ),
    _api(
        "/user-breakdown",
        "user-breakdown",
        endpoints.user_breakdown,
        reads=True,
        query=UserBreakdownQuery,
        response=UserBreakdownResponse,
        summary="Top users by time saved (pseudonymous)",
        description="Users are identified only by their HMAC pseudonym. With `group`, only the "
        "group's current members are ranked. In the list envelope (`dimension`: `user`).",
    ),
    *(
        _api(
            dimension.route,
            dimension.endpoint,
            endpoints.dimension_breakdown(dimension),
            reads=True,
            # not in a viewer's releases (functions/read/releases.py): admins only
            access=ADMIN_ONLY,
            query=BreakdownQuery,
            response=BreakdownResponse,
            summary=dimension.title,
            description=dimension.description,
        )
        for dimension in STORED_DIMENSIONS
    ),
    _api(
        "/group-breakdown",
        "group-breakdown",
        endpoints.group_breakdown,
        reads=True,
        access=READERS,
        query=RangeQuery,
        response=GroupBreakdownResponse,
        summary="Time saved per Open WebUI group",
        description=GROUP.description + OPENAPI_NOTE,
    ),
    _api(
        "/export/csv",
        "export-csv",
        endpoints.export_csv,
        reads=True,
        query=ExportQuery,
        media_type="text/csv",
        summary="The analyses of a range as CSV",
        description="Streamed, one row per analysed conversation, with a header row and ISO dates. "
        "Users appear only as pseudonyms; no names, e-mails or conversation text. Cells that a "
        "spreadsheet would read as a formula are prefixed with `'`.",
    ),
    _api(
        "/health",
        "health",
        endpoints.health,
        query=NoQuery,
        response=HealthResponse,
        summary="Pipeline health: last run, stale runs, next run, settings",
        description="Closes runs that have been running for longer than the stale limit (and lists "
        "them), reports the last run and its counts, and the next scheduled run (from Cloud "
        "Scheduler in production, computed from the schedule and zone locally).",
    ),
    _api(
        "/trigger-processing",
        "trigger-processing",
        endpoints.trigger_processing,
        methods=("POST",),
        session_ok=False,
        query=TriggerQuery,
        response=TriggerResponse,
        status=202,
        summary="Start processing a date, or backfill a range",
        description="Starts a dispatch for `date` (default: yesterday), or for every date from "
        f"`start_date` to `end_date` (a backfill, at most {MAX_RANGE_DAYS} days). Returns the run ids; follow "
        "them with `health`. Bearer credentials only (not the dashboard cookie).",
    ),
    _api(
        "/feedback/state",
        "feedback-state",
        feedback.feedback_state,
        methods=("POST",),
        access=FEEDBACK_WRITERS,
        session_ok=False,
        query=feedback.FeedbackQuery,
        response=feedback.FeedbackState,
        summary="A conversation's estimate and its owner's confirmation (Open WebUI's Action)",
        description="For the time-savings Action in Open WebUI: the current estimate of the chat "
        "(null before it is analysed) and what the person answered before. The chat must exist "
        "in Open WebUI and belong to `user_id` (404 / 403 otherwise). A POST with a JSON body, "
        "never a query string: request URLs are logged, and `user_id` is a raw Open WebUI id. "
        "The feedback credential (`ANALYTICS_FEEDBACK_TOKEN`) or an admin bearer credential.",
        tag="feedback",
        errors=feedback.ERRORS,
    ),
    _api(
        "/feedback",
        "feedback-submit",
        feedback.submit_feedback,
        methods=("POST",),
        access=FEEDBACK_WRITERS,
        session_ok=False,
        query=feedback.FeedbackBody,
        response=feedback.FeedbackReceipt,
        summary="Store a person's own estimate of the minutes by hand",
        description="One confirmation per (conversation, person); a later answer replaces the "
        "earlier one. The chat must exist in Open WebUI and belong to `user_id` (404 / 403 "
        "otherwise); the user id is pseudonymised before anything is stored. The estimate the "
        "person was shown is stored with the answer. Minutes are 1–"
        f"{feedback.MAX_CONFIRMED_MINUTES}; a bad body is 422 and stores nothing. Beyond "
        "`ANALYTICS_FEEDBACK_DAILY_LIMIT` answers per person and day: 429 with `Retry-After`, "
        "nothing stored. No figures are rebuilt here: the next run brings the answer in.",
        tag="feedback",
        errors=feedback.SUBMIT_ERRORS,
    ),
    _api(
        "/calibration",
        "calibration",
        calibration_views.calibration,
        access=ADMIN_ONLY,  # confirmations may come from fewer people than the disclosure floor
        query=NoQuery,
        response=CalibrationReport,
        summary="How well the estimates agree with what people confirmed",
        description="Per estimator / model / prompt version, overall and per task category: the "
        "number of confirmations, Spearman's ρ between confirmed and most likely minutes with a 95 % "
        "bootstrap interval, the bias (median of confirmed ÷ most likely) with its interquartile "
        "range, and the share of confirmations inside the low–high band. Below "
        "`ANALYTICS_CALIBRATION_MIN_CONFIRMATIONS` a group has no numbers, only its message.",
    ),
    _api(
        "/openapi.json",
        "openapi",
        _openapi,
        access=READERS,
        query=NoQuery,
        summary="This OpenAPI document",
        description="The OpenAPI 3.1 description of this API.",
        tag="meta",
    ),
    Route(
        "/",
        "dashboard",
        dashboard.dashboard_page,
        access=READERS,
        kind="page",
        media_type="text/html",
        reads=True,
    ),
    Route("/login", "login", dashboard.login_page, access=PUBLIC, kind="page", media_type="text/html"),
    Route(
        "/login",
        "login-submit",
        dashboard.login_submit,
        methods=("POST",),
        access=PUBLIC,
        kind="page",
        media_type="text/html",
    ),
    Route("/logout", "logout", dashboard.logout, methods=("POST",), access=READERS, kind="page"),
    Route("/report", "report", report.report_page, kind="page", media_type="text/html", reads=True),
    Route(
        f"/charts/<any({_CHART_NAMES}):chart>.svg",
        "chart",
        dashboard.chart,
        access=READERS,
        kind="page",
        reads=True,
        media_type="image/svg+xml",
    ),
    Route(
        "/charts/calibration.svg",
        "calibration-chart",
        calibration_views.calibration_chart,
        access=ADMIN_ONLY,
        kind="page",
        media_type="image/svg+xml",
    ),
    Route("/healthz", "healthz", _healthz, access="public", kind="page"),
    # not /static/: functions-framework's own Flask app answers that prefix before our function runs
    Route("/assets/<path:filename>", "assets", dashboard.static_file, access=PUBLIC, kind="page"),
)


# --- request handling -------------------------------------------------------------------


def _services() -> ApiServices:
    """The services of the app handling the current request."""
    return flask.current_app.extensions[_EXTENSION]


def _authenticate(route: Route) -> Principal:
    """Let the caller in or raise; a cookie-authenticated unsafe request also needs its CSRF token."""
    current = _services()
    request = flask.request
    assert current.limiter is not None
    principal = authenticate(
        request,
        current.settings,
        current.limiter,
        role_lookup=current.role_lookup,
        signer=current.signer if route.session_ok else None,
        sessions=current.sessions,
    )
    if principal.method == "session" and request.method not in ("GET", "HEAD"):
        assert current.signer is not None
        cookie = request.cookies.get(session_cookie_name(current.settings))
        token = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
        if not dashboard.same_origin(request) or not current.signer.verify_csrf(cookie, token):
            raise AuthenticationFailed("missing or wrong CSRF token", status_code=403)
    if route.access == PUBLIC or principal.role not in route.access:
        raise AuthenticationFailed(f"the {principal.role} role may not call this route", status_code=403)
    flask.g.principal = principal
    return principal


def _request_parameters() -> dict[str, Any]:
    """The query string, plus for POST an optional JSON object body with the same parameters."""
    args = flask.request.args
    repeated = [name for name in args if len(args.getlist(name)) > 1]
    if repeated:
        raise InvalidParameter(repeated[0], "given more than once")
    parameters: dict[str, Any] = args.to_dict()
    if flask.request.method == "POST" and flask.request.get_data(cache=True):
        refuse_deep_json(flask.request.get_data(cache=True))
        body = flask.request.get_json(silent=True)
        if not isinstance(body, dict):
            raise InvalidParameter("body", "must be a JSON object of the operation's parameters")
        both = sorted(set(body) & set(parameters))
        if both:
            raise InvalidParameter(both[0], "given in both the query string and the body")
        parameters.update(body)
    return parameters


def _parse_query(model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(_request_parameters())
    except ValidationError as exc:
        raise InvalidParameter.from_validation(exc) from exc


@functools.cache
def _adapter(response: Any) -> TypeAdapter[Any]:
    return TypeAdapter(response)


def _wrap(route: Route) -> Callable[..., Any]:
    def view(**path_values: Any) -> Any:
        services = _services()
        principal: Principal | None = None
        if route.access != PUBLIC:
            try:
                principal = _authenticate(route)
            except AuthenticationFailed as exc:
                if route.endpoint == "dashboard" and exc.status_code == 401:
                    return flask.redirect(flask.url_for("login"), code=303)
                raise
        # the principal is resolved here, once: it picks the read side (none without a principal)
        arguments: tuple[Any, ...] = (services,)
        if route.reads:
            if principal is None:
                raise AuthenticationFailed("a route that reads figures needs a principal")
            arguments += (read_side(principal.role, services.settings, services.engine),)
        if route.kind == "page":
            return route.view(*arguments, **path_values)
        query = _parse_query(route.query or NoQuery)
        result = route.view(*arguments, query)
        if isinstance(result, flask.Response):
            return result
        body = _adapter(route.response).dump_json(result)
        return flask.Response(body, status=route.status, mimetype="application/json")

    view.__name__ = route.endpoint.replace("-", "_")
    return view


def _error(
    status: int, error: str, message: str, detail: list[ParameterProblem] | None = None
) -> flask.Response:
    body = ErrorResponse(error=error, message=message, detail=detail)
    return flask.Response(body.model_dump_json(exclude_none=True), status=status, mimetype="application/json")


def _rejected(exc: RequestRejected) -> flask.Response:
    if isinstance(exc, InvalidParameter):
        detail = [ParameterProblem(parameter=p.parameter, message=p.message) for p in exc.problems]
        return _error(422, "invalid_parameter", str(exc), detail)
    if isinstance(exc, RateLimited | feedback.AnswerLimitReached):
        response = _error(429, "rate_limited", str(exc))
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    if isinstance(exc, AuthenticationFailed):
        code = "forbidden" if exc.status_code == 403 else "unauthorized"
        response = _error(exc.status_code, code, str(exc))
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="time-savings-analytics"'
        return response
    if isinstance(exc, feedback.NotTheOwner):
        return _error(exc.status_code, exc.error_code, str(exc))
    error = {403: "forbidden", 404: "not_found"}.get(exc.status_code, "bad_request")
    return _error(exc.status_code, error, str(exc))


def _http_error(exc: HTTPException) -> flask.Response:
    response = exc.get_response()
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.code or 500, "http_error")
    replacement = _error(exc.code or 500, error, exc.description or exc.name)
    for name, value in response.headers.items():
        if name.lower() == "allow":
            replacement.headers[name] = value
    return replacement


def _unavailable(exc: RetryableError) -> flask.Response:
    _log.warning("dependency unavailable: %s", exc)
    response = _error(503, "unavailable", str(exc))
    if exc.retry_after_seconds is not None:
        response.headers["Retry-After"] = str(round(exc.retry_after_seconds))
    return response


def _misconfigured(exc: ConfigurationError) -> flask.Response:
    _log.error("configuration error: %s", exc)
    return _error(500, "configuration_error", str(exc))


def _unexpected(exc: Exception) -> flask.Response:
    _log.exception("unhandled error")
    return _error(500, "internal_error", "internal error; see the function's logs")


def _host_name(host: str) -> str:
    """`Host` without its port, lower case: `localhost`, `127.0.0.1`, `[::1]`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _check_host() -> flask.Response | None:
    """400 for a `Host` this deployment does not answer (DNS rebinding against local mode)."""
    allowed = _services().settings.answered_hosts
    if allowed is not None and _host_name(flask.request.host) not in allowed:
        return _error(400, "bad_request", "this Host is not served; see ANALYTICS_ALLOWED_HOSTS")
    return None


def _relative_location(response: flask.Response) -> flask.Response:
    """Every redirect points at a path on this host, never at a URL built from the `Host` header.

    Our own redirects are relative already; werkzeug's routing redirects (a missing
    trailing slash, an empty path) are absolute, built from `Host`: cut down to path and query.
    """
    location = response.headers.get("Location")
    if location and response.status_code in (301, 302, 303, 307, 308):
        target = urlsplit(location)
        path = "/" + target.path.lstrip("/")  # never `//host`, which a browser reads as another host
        response.headers["Location"] = path + (f"?{target.query}" if target.query else "")
    return response


def _security_headers(response: flask.Response) -> flask.Response:
    settings = _services().settings
    headers = response.headers
    is_static = flask.request.endpoint == "assets"
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", PAGE_CSP)
    else:
        headers.setdefault("Content-Security-Policy", _API_CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on form posts
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Cache-Control", "public, max-age=3600" if is_static else "no-store")
    if settings.is_production:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def create_app(settings: Settings | None = None, *, services: ApiServices | None = None) -> flask.Flask:
    """The api function's app; tests pass `services` with fakes at the network edge."""
    current = services or ApiServices(settings or get_settings())
    app = flask.Flask(__name__, static_folder=None, template_folder="templates")
    # every body this API takes is a few hundred bytes (feedback, trigger, login): refuse a huge
    # one with 413 before reading it instead of buffering and parsing it whole
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions[_EXTENSION] = current
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # werkzeug answers `//x` with a redirect to an absolute URL built from the Host header
    app.url_map.merge_slashes = False
    app.jinja_env.filters.update(dashboard.TEMPLATE_FILTERS)
    app.jinja_env.globals["estimator_specs"] = estimator_registry.ESTIMATORS  # read at render time
    app.jinja_env.globals.update(dashboard.TEMPLATE_GLOBALS)
    for route in ROUTES:
        app.add_url_rule(
            route.path,
            endpoint=route.endpoint,
            view_func=_wrap(route),
            methods=list(route.methods),
            provide_automatic_options=False,
        )
    app.register_error_handler(RequestRejected, _rejected)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(RetryableError, _unavailable)
    app.register_error_handler(ConfigurationError, _misconfigured)
    app.register_error_handler(Exception, _unexpected)
    app.before_request(_check_host)
    app.after_request(_relative_location)
    app.after_request(_security_headers)
    install_access_log(app)
    configure_logging(current.settings.log_format)
    return app
