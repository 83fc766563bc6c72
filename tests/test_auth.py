"""Authentication of the api function: every route, every credential kind, rate limits, sessions."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from functions.api.app import API_PREFIX, ROUTES, create_app
from functions.api.services import ApiServices
from infra.openwebui_fixture import OpenWebUIFixture
from shared.auth import FailureLimiter, SessionSigner, client_address, session_cookie_name
from shared.config import Settings, get_settings, reset_settings_cache
from shared.errors import AuthenticationFailed, ConfigurationError, RateLimited

PASSWORD = "local-dev-password"
SECRET = "open-webui-secret-key-for-tests-" + "x" * 40
SUMMARY = API_PREFIX + "/summary"

# The only routes anyone may call without credentials: the login page and the static assets.
PUBLIC_ROUTES = {
    ("GET", "/login"),
    ("HEAD", "/login"),
    ("POST", "/login"),
    ("GET", "/assets/<path:filename>"),
    ("HEAD", "/assets/<path:filename>"),
    ("GET", "/healthz"),  # liveness only: {"status": "ok"}, no figures, no settings
    ("HEAD", "/healthz"),
}
_SAMPLE_VALUES = {"filename": "dashboard.css", "chart": "group"}  # a chart every reader may see


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_client(settings: Settings | None = None, clock: Clock | None = None, **options: Any) -> FlaskClient:
    settings = settings or get_settings()
    if clock is not None:
        options.setdefault("limiter", FailureLimiter(clock=clock))
        options.setdefault("signer", SessionSigner(settings, clock=clock))
    return create_app(services=ApiServices(settings, **options)).test_client()


@pytest.fixture
def client(analytics_url: str, clock: Clock) -> FlaskClient:
    return make_client(clock=clock)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _url(rule_path: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: _SAMPLE_VALUES[m.group(1)], rule_path)


def _routes(client: FlaskClient) -> Iterator[tuple[str, str]]:
    for rule in client.application.url_map.iter_rules():
        for method in sorted(rule.methods or ()):
            yield method, rule.rule


# --- every route -------------------------------------------------------------------------------


def test_the_route_table_is_the_whole_url_map(client: FlaskClient) -> None:
    declared = {(route.path, tuple(sorted(route.methods))) for route in ROUTES}
    mapped = {
        (rule.rule, tuple(sorted(set(rule.methods or ()) - {"HEAD"})))
        for rule in client.application.url_map.iter_rules()
    }
    assert mapped == declared
    public = {(m, route.path) for route in ROUTES if route.access == "public" for m in route.methods}
    assert public | {("HEAD", path) for method, path in public if method == "GET"} == PUBLIC_ROUTES


@pytest.fixture
def entry_point(analytics_url: str) -> Iterator[FlaskClient]:
    """main.py's `api` entry point under functions-framework, as deployed."""
    import functions_framework

    import functions.api as api_package

    api_package._app = None
    main = Path(__file__).resolve().parent.parent / "main.py"
    with functions_framework.create_app(target="api", source=str(main)).test_client() as client:
        yield client
    api_package._app = None


def _reset_entry_point_limiter() -> None:
    import functions.api as api_package

    assert api_package._app is not None
    api_package._app.extensions["time_savings_api"].limiter.reset()


def test_every_route_rejects_missing_and_wrong_credentials(
    client: FlaskClient, entry_point: FlaskClient
) -> None:
    """A route added later is covered here automatically: it must refuse strangers.

    Routes come from the app's URL map; requests go through main.py's entry point.
    """
    checked = 0
    routes = list(_routes(client))
    client = entry_point
    for method, rule in routes:
        url = _url(rule)
        if (method, rule) in PUBLIC_ROUTES:
            response = client.open(url, method=method)
            expected = 401 if method == "POST" else 200  # the login form, answering "Wrong password."
            assert response.status_code == expected, (method, rule, response.status_code)
            if rule == "/healthz":
                assert method == "HEAD" or response.get_json() == {"status": "ok"}
            else:
                assert not response.is_json
            continue
        for headers in ({}, bearer("wrong password"), {"Authorization": f"Basic {PASSWORD}"}):
            response = client.open(url, method=method, headers=headers)
            if rule == "/" and method in ("GET", "HEAD"):
                assert response.status_code == 303, (method, rule, headers)
                assert response.headers["Location"].endswith("/login")
            else:
                assert response.status_code == 401, (method, rule, headers, response.status_code)
                assert "WWW-Authenticate" in response.headers
        client.set_cookie(session_cookie_name(get_settings()), "9999999999.forged.signature")
        response = client.open(url, method=method)
        client.delete_cookie(session_cookie_name(get_settings()))
        assert response.status_code in (401, 303), (method, rule, "forged cookie")
        checked += 1
        _reset_entry_point_limiter()  # 401s, not 429s, on the next route
    assert checked >= 14


def test_every_route_admits_the_password(client: FlaskClient, entry_point: FlaskClient) -> None:
    for method, rule in _routes(client):
        if method == "HEAD" or (method, rule) in PUBLIC_ROUTES:
            continue
        response = entry_point.open(_url(rule), method=method, headers=bearer(PASSWORD))
        assert response.status_code not in (401, 403), (method, rule, response.status_code)


# --- credential kinds ------------------------------------------------------------------------


def test_bearer_password(client: FlaskClient) -> None:
    assert client.get(SUMMARY).status_code == 401
    assert client.get(SUMMARY, headers=bearer("nope")).get_json()["error"] == "unauthorized"
    assert client.get(SUMMARY, headers=bearer(PASSWORD + " ")).status_code == 200  # token is trimmed
    assert client.get(SUMMARY, headers=bearer(PASSWORD[:-1])).status_code == 401
    assert client.get(SUMMARY, headers={"Authorization": PASSWORD}).status_code == 401
    assert client.get(SUMMARY, headers=bearer(PASSWORD)).status_code == 200
    assert client.get(SUMMARY, query_string={"password": PASSWORD}).status_code == 401


@pytest.fixture
def webui(tmp_path: Path, analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An Open WebUI database with an admin and a plain user; its JWT secret configured."""
    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    users = {
        "admin": fixture.add_user(name="Ada Admin", role="admin"),
        "user": fixture.add_user(name="Uma User", role="user"),
        "pending": fixture.add_user(name="Pat Pending", role="pending"),
    }
    fixture.dispose()
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", f"sqlite:///{tmp_path / 'webui.db'}")
    monkeypatch.setenv("WEBUI_SECRET_KEY", SECRET)
    reset_settings_cache()
    return users


def token(user_id: str, *, expires_in: timedelta = timedelta(hours=1), key: str = SECRET) -> str:
    return jwt.encode({"id": user_id, "exp": datetime.now(UTC) + expires_in}, key, algorithm="HS256")


def test_open_webui_session_tokens(webui: dict[str, str]) -> None:
    client = make_client()
    assert client.get(SUMMARY, headers=bearer(token(webui["admin"]))).status_code == 200
    for role in ("user", "pending"):
        response = client.get(SUMMARY, headers=bearer(token(webui[role])))
        assert response.status_code == 403
        assert response.get_json()["error"] == "forbidden"
    expired = client.get(SUMMARY, headers=bearer(token(webui["admin"], expires_in=timedelta(minutes=-5))))
    assert expired.status_code == 401
    assert "expired" in expired.get_json()["message"]
    forged = token(webui["admin"], key="another-secret-key-" + "y" * 60)
    assert client.get(SUMMARY, headers=bearer(forged)).status_code == 401
    assert client.get(SUMMARY, headers=bearer(token("no-such-user"))).status_code == 401
    no_id = jwt.encode({"sub": webui["admin"]}, SECRET, algorithm="HS256")
    assert client.get(SUMMARY, headers=bearer(no_id)).status_code == 401
    other_algorithm = jwt.encode({"id": webui["admin"]}, SECRET, algorithm="HS512")
    assert client.get(SUMMARY, headers=bearer(other_algorithm)).status_code == 401


def test_open_webui_tokens_are_refused_without_the_secret(
    webui: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBUI_SECRET_KEY")
    reset_settings_cache()
    assert make_client().get(SUMMARY, headers=bearer(token(webui["admin"]))).status_code == 401


def test_production_refuses_a_default_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_ENVIRONMENT", "production")
    monkeypatch.setenv("ANALYTICS_HMAC_KEY", "k" * 40)
    monkeypatch.setenv("ANALYTICS_DASHBOARD_PASSWORD", PASSWORD)
    with pytest.raises(ConfigurationError, match="ANALYTICS_DASHBOARD_PASSWORD"):
        Settings()


# --- rate limiting -----------------------------------------------------------------------------


def test_failed_attempts_are_rate_limited_per_client(client: FlaskClient, clock: Clock) -> None:
    for _ in range(10):
        assert client.get(SUMMARY, headers=bearer("guess")).status_code == 401
    limited = client.get(SUMMARY, headers=bearer("guess"))
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) == 300
    assert client.get(SUMMARY, headers=bearer(PASSWORD)).status_code == 429  # even the right one
    other = client.get(SUMMARY, headers=bearer(PASSWORD), environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200
    spoofed = client.get(SUMMARY, headers={**bearer(PASSWORD), "X-Forwarded-For": "1.2.3.4"})
    assert spoofed.status_code == 429  # outside Google's front end the header is not trusted
    clock.now += 120
    assert int(client.get(SUMMARY, headers=bearer(PASSWORD)).headers["Retry-After"]) == 180
    clock.now += 181
    assert client.get(SUMMARY, headers=bearer(PASSWORD)).status_code == 200


def test_missing_credentials_are_not_counted_as_failures(client: FlaskClient) -> None:
    for _ in range(20):
        assert client.get(SUMMARY).status_code == 401
    assert client.get(SUMMARY, headers=bearer(PASSWORD)).status_code == 200


def test_failed_logins_are_rate_limited_too(client: FlaskClient) -> None:
    for _ in range(10):
        assert client.post("/login", data={"password": "guess"}).status_code == 401
    response = client.post("/login", data={"password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed attempts" in response.get_data(as_text=True)
    assert "Retry-After" in response.headers


_VIEWER = "viewer-password-for-lockout-tests"
_ACTION_TOKEN = "feedback-token-for-lockout-tests-0123456789"


def test_the_right_credentials_get_in_while_200_wrong_ones_arrive_from_10_addresses(
    analytics_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 item 5: before, 110 wrong tokens from 10 addresses locked everyone out for 5 minutes."""
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", _VIEWER)
    monkeypatch.setenv("ANALYTICS_FEEDBACK_TOKEN", _ACTION_TOKEN)
    reset_settings_cache()
    client = make_client(clock=clock)
    admin, viewer, action = ({"REMOTE_ADDR": f"192.0.2.{n}"} for n in (1, 2, 3))
    answers = []
    for attempt in range(200):
        attacker = {"REMOTE_ADDR": f"198.51.100.{attempt % 10}"}
        answers.append(
            client.get(SUMMARY, headers=bearer(f"guess-{attempt}"), environ_base=attacker).status_code
        )
        if attempt % 20 == 19:
            assert client.get(SUMMARY, headers=bearer(PASSWORD), environ_base=admin).status_code == 200
            assert client.get(SUMMARY, headers=bearer(_VIEWER), environ_base=viewer).status_code == 200
            state = client.post(
                API_PREFIX + "/feedback/state", json={}, headers=bearer(_ACTION_TOKEN), environ_base=action
            )
            assert state.status_code not in (401, 403, 429), state.get_data(as_text=True)
            signed_in = client.post("/login", data={"password": _VIEWER}, environ_base=viewer)
            assert signed_in.status_code == 303, attempt
            client.delete_cookie(session_cookie_name(get_settings()))
    assert answers[:99] == [401] * 99
    assert answers[99] == 429  # the 100th wrong guess spends the global budget: answered "wait"
    assert set(answers[100:]) == {429}  # and every address is over its own limit: refused unverified
    # a wrong credential from a fresh address is slowed while the global budget is spent ...
    fresh = {"REMOTE_ADDR": "203.0.113.50"}
    slowed = client.get(SUMMARY, headers=bearer("another guess"), environ_base=fresh)
    assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) > 0
    # ... but the right one from that address is let in: others' failures never refuse it
    assert client.get(SUMMARY, headers=bearer(PASSWORD), environ_base=fresh).status_code == 200
    # a source that keeps failing stays limited, the right password included
    attacker = {"REMOTE_ADDR": "198.51.100.3"}
    assert client.get(SUMMARY, headers=bearer(PASSWORD), environ_base=attacker).status_code == 429
    login = client.post("/login", data={"password": PASSWORD}, environ_base=attacker)
    assert login.status_code == 429 and "Too many failed attempts" in login.get_data(as_text=True)
    clock.now += 301
    assert client.get(SUMMARY, headers=bearer(PASSWORD), environ_base=attacker).status_code == 200


def test_one_wrong_credential_is_limited_from_every_address(client: FlaskClient) -> None:
    for n in range(10):
        address = {"REMOTE_ADDR": f"198.51.100.{n}"}
        assert client.get(SUMMARY, headers=bearer("stale-token"), environ_base=address).status_code == 401
    elsewhere = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get(SUMMARY, headers=bearer("stale-token"), environ_base=elsewhere).status_code == 429
    assert client.get(SUMMARY, headers=bearer("fresh-guess"), environ_base=elsewhere).status_code == 401
    assert client.get(SUMMARY, headers=bearer(PASSWORD), environ_base=elsewhere).status_code == 200


def test_the_limiter_keeps_a_keyed_hash_of_credentials_never_the_credential(clock: Clock) -> None:
    limiter = FailureLimiter(clock=clock)
    limiter.record_failure("10.0.0.1", "a-very-secret-wrong-password")
    other = FailureLimiter(clock=clock)
    other.record_failure("10.0.0.1", "a-very-secret-wrong-password")
    (fingerprint,) = limiter._credential_failures
    assert b"a-very-secret" not in fingerprint and len(fingerprint) == 16
    assert fingerprint not in other._credential_failures  # the key is random per process
    assert "a-very-secret" not in repr(vars(limiter))


def test_client_address_behind_google_front_end() -> None:
    request = SimpleNamespace(headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}, remote_addr="169.254.1.1")
    assert client_address(request, behind_google_front_end=True) == "203.0.113.9"
    assert client_address(request, behind_google_front_end=False) == "169.254.1.1"


def test_the_limiter_forgets_old_failures_and_bounds_its_memory(clock: Clock) -> None:
    limiter = FailureLimiter(max_failures=2, window_seconds=10, clock=clock, max_clients=3)
    for client in ("a", "b", "c", "d"):
        limiter.record_failure(client)
        clock.now += 1
    assert len(limiter._failures) == 3
    limiter.record_failure("d")
    with pytest.raises(Exception, match="retry in"):
        limiter.check("d")
    clock.now += 10
    limiter.check("d")


def test_a_full_table_of_limited_sources_keeps_them_and_holds_new_ones_to_the_global_budget(
    clock: Clock,
) -> None:
    limiter = FailureLimiter(
        max_failures=2, window_seconds=10, clock=clock, max_clients=2, global_max_failures=6
    )
    verified: list[str] = []

    def wrong(client: str) -> Any:
        def verify() -> None:
            verified.append(client)
            raise AuthenticationFailed("invalid credentials")

        return verify

    for client in ("10.0.0.1", "10.0.0.2"):  # both tracked sources are limited: the table is full
        for n in range(2):
            with pytest.raises(AuthenticationFailed) as failed:
                limiter.attempt(client, f"{client}-guess-{n}", wrong(client))
            assert failed.value.status_code == 401
    for n in range(2):  # a third source is not tracked: the global budget (6) still has room
        with pytest.raises(AuthenticationFailed) as failed:
            limiter.attempt("10.0.0.3", f"third-guess-{n}", wrong("10.0.0.3"))
        assert failed.value.status_code == (401 if n == 0 else 429)
    assert "10.0.0.3" not in limiter._failures and len(limiter._failures) == 2
    del verified[:]
    with pytest.raises(RateLimited):  # the budget is spent: refused before anything is verified
        limiter.attempt("10.0.0.3", "third-guess-2", wrong("10.0.0.3"))
    for client in ("10.0.0.1", "10.0.0.2"):
        with pytest.raises(RateLimited):
            limiter.attempt(client, "again", wrong(client))
    assert verified == []
    clock.now += 10  # the window has passed: every source guesses again, tracked
    with pytest.raises(AuthenticationFailed) as failed:
        limiter.attempt("10.0.0.3", "third-guess-3", wrong("10.0.0.3"))
    assert failed.value.status_code == 401 and "10.0.0.3" in limiter._failures


def test_an_open_webui_admin_token_tried_at_the_login_form_is_not_locked_out(
    webui: dict[str, str], clock: Clock
) -> None:
    client = make_client(clock=clock)
    admin = token(webui["admin"])
    for n in range(12):  # an admin pastes the Open WebUI token into the dashboard's form
        response = client.post(
            "/login", data={"password": admin}, environ_base={"REMOTE_ADDR": f"10.0.1.{n}"}
        )
        assert response.status_code == 401
    elsewhere = {"REMOTE_ADDR": "192.0.2.60"}
    assert client.get(SUMMARY, headers=bearer(admin), environ_base=elsewhere).status_code == 200
    guess = "an-unknown-password-guess"
    for n in range(10):  # an unknown credential still counts against itself
        response = client.post(
            "/login", data={"password": guess}, environ_base={"REMOTE_ADDR": f"10.0.2.{n}"}
        )
        assert response.status_code == 401
    assert client.post("/login", data={"password": guess}, environ_base=elsewhere).status_code == 429


# --- dashboard session ---------------------------------------------------------------------------


def _login(client: FlaskClient, password: str = PASSWORD, **headers: str) -> Any:
    return client.post("/login", data={"password": password}, headers=headers)


def test_login_sets_a_strict_http_only_session_cookie(client: FlaskClient) -> None:
    response = _login(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("tsa_session=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800", "Expires="):
        assert attribute in cookie
    assert "Secure" not in cookie  # local http; production below
    assert PASSWORD not in cookie
    assert client.get("/").status_code == 200
    assert client.get(SUMMARY).status_code == 200
    assert client.get("/login").status_code == 303  # already signed in


def test_a_wrong_password_shows_an_error(client: FlaskClient) -> None:
    response = _login(client, "wrong")
    assert response.status_code == 401
    assert "Wrong password." in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert client.get("/").status_code == 303


def test_the_login_form_posts_the_password_in_the_body(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert re.search(r'<form method="post" action="/login"', html)
    assert 'type="password"' in html
    assert client.get("/login", query_string={"password": PASSWORD}).headers.get("Set-Cookie") is None


def test_sessions_expire_and_cannot_be_forged(client: FlaskClient, clock: Clock) -> None:
    _login(client)
    name = session_cookie_name(get_settings())
    value = client.get_cookie(name).value
    expiry, nonce, mac = value.split(".")
    client.set_cookie(name, f"{int(expiry) + 86400}.{nonce}.{mac}")
    assert client.get("/").status_code == 303
    client.set_cookie(name, value)
    assert client.get("/").status_code == 200
    clock.now += 8 * 3600 + 1
    assert client.get("/").status_code == 303
    assert client.get(SUMMARY).status_code == 401


def test_changing_the_password_ends_every_session(
    analytics_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(clock=clock)
    _login(client)
    name = session_cookie_name(get_settings())
    value = client.get_cookie(name).value
    monkeypatch.setenv("ANALYTICS_DASHBOARD_PASSWORD", "a-brand-new-password")
    reset_settings_cache()
    later = make_client(clock=clock)
    later.set_cookie(name, value)
    assert later.get("/").status_code == 303


def test_logout_needs_the_csrf_token(client: FlaskClient) -> None:
    _login(client)
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    page = client.get("/").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    cross = client.post("/logout", data={"csrf_token": csrf}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    response = client.post("/logout", data={"csrf_token": csrf}, headers={"Origin": "http://localhost"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert "tsa_session=;" in response.headers["Set-Cookie"]
    assert client.get("/").status_code == 303


def test_cross_site_login_is_refused(client: FlaskClient) -> None:
    assert _login(client, Origin="https://evil.example").status_code == 403
    assert _login(client, Origin="null").status_code == 403
    assert _login(client, Origin="http://localhost").status_code == 303


def test_production_cookie_is_secure_and_host_bound(
    analytics_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "ANALYTICS_ENVIRONMENT": "production",
        "ANALYTICS_HMAC_KEY": "k" * 40,
        "ANALYTICS_DASHBOARD_PASSWORD": "a-real-production-password",
        "OPENWEBUI_DATABASE_URL": "sqlite:////nonexistent/webui.db",
        "ANALYTICS_ESTIMATOR": "heuristic",
        "ANALYTICS_TASK_SECRET": "t" * 32,
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    client = make_client()
    response = _login(client, "a-real-production-password")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-tsa_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_session_signer_round_trip(analytics_url: str) -> None:
    now = [time.time()]
    signer = SessionSigner(get_settings(), clock=lambda: now[0])
    value = signer.issue()
    assert signer.verify(value)
    assert not signer.verify(value + "x")
    assert not signer.verify(None)
    assert not signer.verify("a.b")
    token_value = signer.csrf_token(value)
    assert signer.verify_csrf(value, token_value)
    assert not signer.verify_csrf(signer.issue(), token_value)
    now[0] += signer.ttl_seconds + 1
    assert not signer.verify(value)
