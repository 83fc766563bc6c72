"""Roles, sessions, Open WebUI token rules, production refusals, Host names and sign-in throttling."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from functions.api.app import API_PREFIX, ROUTES, Route
from functions.api.dashboard import wait_text
from infra.openwebui_fixture import OpenWebUIFixture
from shared.auth import FailureLimiter, client_key
from shared.config import Settings, get_settings, reset_settings_cache
from shared.errors import AuthenticationFailed, ConfigurationError, RateLimited
from shared.roles import PUBLIC, Role
from tests.test_auth import PASSWORD, SECRET, Clock, _url, bearer, make_client

VIEWER = "viewer-password-for-tests"
FEEDBACK = "feedback-token-for-tests-0123456789abcdef"
SUMMARY = API_PREFIX + "/summary"
CREDENTIALS = {Role.ADMIN: PASSWORD, Role.VIEWER: VIEWER, Role.FEEDBACK: FEEDBACK}
# What the viewer may call (issue 12), written out so that a change to ROUTES must be deliberate.
VIEWER_ENDPOINTS = {
    "summary",
    "daily-trend",
    "group-breakdown",
    "openapi",
    "dashboard",
    "chart",
    "logout",
}
# Breakdowns by model, category and tag are not in a viewer's releases (functions/read/releases.py).
NEVER_VIEWER = {
    "model-breakdown",
    "category-breakdown",
    "tag-breakdown",
    "user-breakdown",
    "export-csv",
    "health",
    "trigger-processing",
    "feedback",
}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def roles(analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", VIEWER)
    monkeypatch.setenv("ANALYTICS_FEEDBACK_TOKEN", FEEDBACK)
    reset_settings_cache()


def _protected() -> list[tuple[Route, str]]:
    return [(route, method) for route in ROUTES if route.access != PUBLIC for method in route.methods]


def _login(client: FlaskClient, password: str) -> Any:
    return client.post("/login", data={"password": password})


def _csrf(client: FlaskClient) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True))
    assert match
    return match.group(1)


# --- roles ------------------------------------------------------------------------------------


def test_the_viewer_declarations_match_the_issue() -> None:
    for route in ROUTES:
        if route.access == PUBLIC:
            continue
        if route.endpoint in VIEWER_ENDPOINTS:
            assert Role.VIEWER in route.access, route.endpoint
        else:
            assert Role.VIEWER not in route.access, route.endpoint
        assert route.endpoint not in NEVER_VIEWER or Role.VIEWER not in route.access
        assert Role.ADMIN in route.access or route.endpoint.startswith("feedback"), route.endpoint
        if not route.endpoint.startswith("feedback"):
            assert Role.FEEDBACK not in route.access, route.endpoint


@pytest.mark.parametrize("role", list(Role))
def test_every_route_for_every_bearer_role(roles: None, role: Role, clock: Clock) -> None:
    """Enumerated from ROUTES: a role the route admits gets through, any other gets 403."""
    client = make_client(clock=clock)
    checked = 0
    for route, method in _protected():
        if role is Role.ADMIN and (route.endpoint == "trigger-processing"):
            continue  # admitted; dispatching is covered by test_auth's admits-the-password test
        response = client.open(_url(route.path), method=method, headers=bearer(CREDENTIALS[role]))
        if role in route.access:
            assert response.status_code not in (401, 403), (role, method, route.path, response.status_code)
        else:
            assert response.status_code == 403, (role, method, route.path, response.status_code)
            if route.kind == "api":
                assert response.get_json()["error"] == "forbidden"
        checked += 1
    assert checked >= 10


def test_every_route_for_a_viewer_session(roles: None, clock: Clock) -> None:
    client = make_client(clock=clock)
    assert _login(client, VIEWER).status_code == 303
    for route, method in _protected():
        if method == "POST" and route.endpoint == "logout":
            continue  # would end the session; below
        response = client.open(_url(route.path), method=method)
        if not route.session_ok:
            assert response.status_code == 401, (method, route.path)  # bearer only
        elif Role.VIEWER in route.access:
            assert response.status_code == 200, (method, route.path, response.status_code)
        else:
            assert response.status_code == 403, (method, route.path, response.status_code)


def test_the_viewer_page_hides_people_csv_and_settings(roles: None, clock: Clock) -> None:
    admin = make_client(clock=clock)
    _login(admin, PASSWORD)
    page = admin.get("/").get_data(as_text=True)
    assert 'id="by-user"' in page and 'id="csv-download"' in page
    viewer = make_client(clock=clock)
    _login(viewer, VIEWER)
    page = viewer.get("/").get_data(as_text=True)
    assert 'id="by-user"' not in page
    assert 'id="csv-download"' not in page
    assert "export/csv" not in page
    assert "Idle gaps over" not in page
    assert 'id="by-model"' not in page and 'id="by-group"' in page  # releases: summary and groups


def test_the_feedback_token_cannot_sign_in(roles: None, clock: Clock) -> None:
    client = make_client(clock=clock)
    response = _login(client, FEEDBACK)
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


def test_a_role_without_a_credential_is_not_offered(analytics_url: str, clock: Clock) -> None:
    client = make_client(clock=clock)  # no viewer password, no feedback token configured
    assert client.get(SUMMARY, headers=bearer(VIEWER)).status_code == 401
    assert _login(client, "").status_code == 401


# --- sessions ---------------------------------------------------------------------------------


def test_a_session_cookie_is_refused_after_logout(roles: None, clock: Clock) -> None:
    for password in (PASSWORD, VIEWER):
        client = make_client(clock=clock)
        _login(client, password)
        name = "tsa_session"
        value = client.get_cookie(name).value
        assert client.get(SUMMARY).status_code == 200
        response = client.post("/logout", data={"csrf_token": _csrf(client)})
        assert response.status_code == 303
        assert response.headers["Location"] == "/login"
        client.set_cookie(name, value)  # the cookie replayed, as a thief who copied it would
        assert client.get(SUMMARY).status_code == 401
        assert client.get("/").status_code == 303
        assert client.get("/login").status_code == 200  # not "already signed in"


def test_sessions_time_out_when_idle_and_at_their_lifetime(roles: None, clock: Clock) -> None:
    client = make_client(clock=clock)  # idle 60 min, lifetime 8 h (the defaults)
    _login(client, PASSWORD)
    for _ in range(15):  # used every 30 minutes: alive for 7.5 hours
        clock.now += 30 * 60
        assert client.get(SUMMARY).status_code == 200
    clock.now += 31 * 60  # 8 h 1 min after sign-in
    assert client.get(SUMMARY).status_code == 401
    client = make_client(clock=clock)
    _login(client, PASSWORD)
    clock.now += 61 * 60
    assert client.get(SUMMARY).status_code == 401
    assert "sign in again" in client.get(SUMMARY).get_json()["message"]


def test_a_session_holds_the_role_it_signed_in_with(roles: None, clock: Clock) -> None:
    client = make_client(clock=clock)
    _login(client, VIEWER)
    assert client.get(API_PREFIX + "/user-breakdown").status_code == 403
    assert client.get(API_PREFIX + "/model-breakdown").status_code == 403
    assert client.get(API_PREFIX + "/group-breakdown").status_code == 200


# --- Open WebUI tokens --------------------------------------------------------------------------


@pytest.fixture
def webui_admin(tmp_path: Path, analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    admin = fixture.add_user(name="Ada Admin", role="admin")
    fixture.dispose()
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", f"sqlite:///{tmp_path / 'webui.db'}")
    monkeypatch.setenv("WEBUI_SECRET_KEY", SECRET)
    reset_settings_cache()
    return admin


def _owui(claims: dict[str, Any]) -> dict[str, str]:
    return bearer(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_open_webui_tokens_follow_open_webuis_rules(webui_admin: str) -> None:
    client = make_client()
    now = datetime.now(UTC)
    # as Open WebUI 0.12.4 issues them by default: exp (JWT_EXPIRES_IN=4w), iat, jti, typ, session_stamp
    issued = {"id": webui_admin, "typ": "session", "session_stamp": "s", "jti": "j", "iat": now}
    assert client.get(SUMMARY, headers=_owui({**issued, "exp": now + timedelta(weeks=4)})).status_code == 200
    # JWT_EXPIRES_IN=-1: no exp; accepted while iat is younger than the maximum age (4 weeks)
    assert client.get(SUMMARY, headers=_owui(issued)).status_code == 200
    old = client.get(SUMMARY, headers=_owui({**issued, "iat": now - timedelta(weeks=4, hours=1)}))
    assert old.status_code == 401
    assert "older than 672 hours" in old.get_json()["message"]
    forever = client.get(SUMMARY, headers=_owui({"id": webui_admin}))  # neither exp nor iat
    assert forever.status_code == 401
    assert "iat" in forever.get_json()["message"]
    future = client.get(SUMMARY, headers=_owui({**issued, "iat": now + timedelta(hours=1)}))
    assert future.status_code == 401
    for typ in ("automation", "subagent", "mfa"):
        assert client.get(SUMMARY, headers=_owui({**issued, "typ": typ})).status_code == 401
    assert (
        client.get(SUMMARY, headers=_owui({"id": webui_admin, "exp": now - timedelta(seconds=5)})).status_code
        == 401
    )


def test_the_maximum_token_age_is_a_setting(webui_admin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_OPENWEBUI_TOKEN_MAX_AGE_HOURS", "1")
    reset_settings_cache()
    client = make_client()
    now = datetime.now(UTC)
    assert (
        client.get(
            SUMMARY, headers=_owui({"id": webui_admin, "iat": now - timedelta(minutes=50)})
        ).status_code
        == 200
    )
    assert (
        client.get(
            SUMMARY, headers=_owui({"id": webui_admin, "iat": now - timedelta(minutes=70)})
        ).status_code
        == 401
    )


# --- production refusals --------------------------------------------------------------------------

_PRODUCTION = {
    "ANALYTICS_ENVIRONMENT": "production",
    "ANALYTICS_HMAC_KEY": "k" * 40,
    "ANALYTICS_DASHBOARD_PASSWORD": "a-real-production-password",
    "COGNIFORCE_DATABASE_URL": "postgresql+pg8000://u:p@db/analytics",
    "OPENWEBUI_DATABASE_URL": "sqlite:////nonexistent/webui.db",
    "ANALYTICS_ESTIMATOR": "heuristic",
    "ANALYTICS_TASK_SECRET": "t" * 32,
}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ANALYTICS_TASKS_EMULATOR_HOST", "localhost:8123", "ANALYTICS_TASKS_EMULATOR_HOST is set"),
        ("WEBUI_SECRET_KEY", "t0p-s3cr3t", "WEBUI_SECRET_KEY is a well-known default"),
        ("WEBUI_SECRET_KEY", "T0P-S3CR3T", "WEBUI_SECRET_KEY is a well-known default"),
        ("WEBUI_SECRET_KEY", "changeme", "WEBUI_SECRET_KEY is a well-known default"),
        ("WEBUI_SECRET_KEY", "short-key", "WEBUI_SECRET_KEY is shorter than 16"),
        ("ANALYTICS_TASK_SECRET", "t" * 31, "ANALYTICS_TASK_SECRET is shorter than 32"),
        ("ANALYTICS_VIEWER_PASSWORD", "short", "ANALYTICS_VIEWER_PASSWORD is shorter than 12"),
        ("ANALYTICS_VIEWER_PASSWORD", "a-real-production-password", "must differ"),
        ("ANALYTICS_FEEDBACK_TOKEN", "f" * 20, "ANALYTICS_FEEDBACK_TOKEN is shorter than 32"),
    ],
)
def test_production_refuses(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    for name, setting in _PRODUCTION.items():
        monkeypatch.setenv(name, setting)
    Settings()  # the baseline is accepted
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Settings()


def test_production_accepts_real_access_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, setting in _PRODUCTION.items():
        monkeypatch.setenv(name, setting)
    monkeypatch.setenv("WEBUI_SECRET_KEY", "Zx3v9Qm2Lr8Tn4Wb")  # 16 characters, like Open WebUI's start.sh
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", "management-only-password")
    monkeypatch.setenv("ANALYTICS_FEEDBACK_TOKEN", "f" * 40)
    assert Settings().is_production


# --- Host names and redirects ------------------------------------------------------------------


def test_local_mode_answers_only_loopback_host_names(analytics_url: str) -> None:
    client = make_client()
    for host in ("localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST"):
        assert client.get("/login", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io", "[::2]"):
        response = client.get(SUMMARY, headers={"Host": host, **bearer(PASSWORD)})
        assert response.status_code == 400, host
        assert "ANALYTICS_ALLOWED_HOSTS" in response.get_json()["message"]
        assert client.post("/login", data={"password": PASSWORD}, headers={"Host": host}).status_code == 400


def test_allowed_hosts_are_a_setting(analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_ALLOWED_HOSTS", "analytics.example.org, Dash.Example.org")
    reset_settings_cache()
    assert get_settings().allowed_hosts == ["analytics.example.org", "dash.example.org"]
    client = make_client()
    assert client.get("/login", headers={"Host": "dash.example.org"}).status_code == 200
    assert client.get("/login", headers={"Host": "localhost"}).status_code == 400


def test_no_redirect_is_built_from_the_host_header(analytics_url: str) -> None:
    client = make_client()
    responses = [
        client.get("/", headers={"Host": "127.0.0.1:9000"}),
        client.post("/login", data={"password": PASSWORD}, headers={"Host": "127.0.0.1:9000"}),
        client.get("//login", headers={"Host": "127.0.0.1:9000"}),  # werkzeug's own redirect
        client.get("/", headers={"Host": "127.0.0.1:9000"}, environ_overrides={"PATH_INFO": "//login"}),
        client.get("/", headers={"Host": "127.0.0.1:9000"}, environ_overrides={"PATH_INFO": ""}),
        client.get("/api/v1//analytics/summary", headers={"Host": "127.0.0.1:9000"}),
        client.get("/login", headers={"Host": "127.0.0.1:9000"}),  # signed in: redirect to /
    ]
    for response in responses:
        location = response.headers.get("Location")
        assert location is None or (location.startswith("/") and not location.startswith("//")), (
            response.request.path,
            location,
        )
        assert "127.0.0.1" not in (location or "")
    assert responses[0].headers["Location"] == "/login"
    assert responses[1].headers["Location"] == "/"
    assert responses[2].status_code == 308 and responses[2].headers["Location"] == "/"


# --- sign-in throttling -------------------------------------------------------------------------


def test_ipv6_clients_are_grouped_by_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.9") == "203.0.113.9"
    assert client_key("203.0.113.9") == "203.0.113.9"
    assert client_key("unknown") == "unknown"


def test_rotating_ipv6_addresses_inside_a_64_buys_no_guesses(analytics_url: str, clock: Clock) -> None:
    client = make_client(clock=clock)
    for n in range(10):
        address = f"2001:db8:1:2::{n + 1:x}"
        assert (
            client.get(SUMMARY, headers=bearer("guess"), environ_base={"REMOTE_ADDR": address}).status_code
            == 401
        )
    neighbour = client.get(
        SUMMARY, headers=bearer(PASSWORD), environ_base={"REMOTE_ADDR": "2001:db8:1:2::99"}
    )
    assert neighbour.status_code == 429
    other = client.get(SUMMARY, headers=bearer(PASSWORD), environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"})
    assert other.status_code == 200


def test_the_global_budget_slows_wrong_credentials_only(clock: Clock) -> None:
    limiter = FailureLimiter(max_failures=10, window_seconds=300, clock=clock, global_max_failures=50)
    for n in range(50):
        limiter.check(f"198.51.100.{n}")
        limiter.record_failure(
            f"198.51.100.{n}", f"guess {n}"
        )  # one guess each: no client over its own limit
        clock.now += 1
    assert limiter.global_wait() == 250

    def wrong() -> None:
        raise AuthenticationFailed("invalid credentials")

    with pytest.raises(RateLimited, match="retry in 251 s"):  # its own failure counts: one more second
        limiter.attempt("203.0.113.77", "another guess", wrong)  # a new client, but the budget is spent
    assert limiter.attempt("203.0.113.77", PASSWORD, lambda: "let in") == "let in"
    clock.now += 260
    with pytest.raises(AuthenticationFailed) as refused:
        limiter.attempt("203.0.113.78", "a later guess", wrong)
    assert refused.value.status_code == 401


def test_the_global_budget_is_a_setting(analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_LOGIN_GLOBAL_MAX_FAILURES", "3")
    monkeypatch.setenv("ANALYTICS_LOGIN_MAX_FAILURES", "2")
    reset_settings_cache()
    client = make_client()
    statuses = [
        client.post(
            "/login", data={"password": "guess"}, environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}
        ).status_code
        for n in range(4)
    ]
    assert statuses == [401, 401, 429, 429]  # the third wrong guess spends the budget of 3
    newcomer = {"REMOTE_ADDR": "10.0.0.200"}
    assert client.get("/login", environ_base=newcomer).status_code == 200
    assert client.post("/login", data={"password": PASSWORD}, environ_base=newcomer).status_code == 303


def test_the_login_page_says_how_long_to_wait(analytics_url: str, clock: Clock) -> None:
    client = make_client(clock=clock)
    for _ in range(10):
        client.post("/login", data={"password": "guess"})
    clock.now += 50
    for response in (client.get("/login"), client.post("/login", data={"password": PASSWORD})):
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "250"
        assert "Try again in 4 minutes 10 seconds." in response.get_data(as_text=True)
    assert wait_text(1) == "1 second"
    assert wait_text(45) == "45 seconds"
    assert wait_text(60) == "1 minute"
    assert wait_text(61) == "1 minute 1 second"


def test_the_openapi_document_names_each_operations_roles_and_what_pseudonyms_protect(
    analytics_url: str,
) -> None:
    document = make_client().get(API_PREFIX + "/openapi.json", headers=bearer(PASSWORD)).get_json()
    info = document["info"]["description"]
    assert "hash-user" in info and "conversation_id" in info and "does not hide people from an admin" in info
    documented = 0
    for route in ROUTES:
        if not route.documented:
            continue
        for method in route.methods:
            operation = document["paths"][route.path][method.lower()]
            assert operation["x-roles"] == sorted(str(role) for role in route.access), route.path
            assert "Roles: " in operation["description"]
            documented += 1
    assert documented >= 9
