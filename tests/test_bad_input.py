"""Bad input found on the way (issue 18 item 6): non-ASCII credentials and deep JSON answer 4xx, never 500.

Through the real app: raw bytes on a loopback socket where the test client would clean them,
the Flask test client (varying REMOTE_ADDR) for the rest.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import functions_framework
import pytest
from flask.testing import FlaskClient

from functions.api.app import API_PREFIX, ROUTES, create_app
from functions.api.services import ApiServices
from shared.auth import session_cookie_name
from shared.config import get_settings
from shared.errors import RequestRejected
from shared.json_input import MAX_JSON_DEPTH, refuse_deep_json
from shared.queue import TASK_SECRET_HEADER
from tests.loopback import serve_wsgi
from tests.test_auth import PASSWORD, Clock, _url, bearer, make_client

SUMMARY = API_PREFIX + "/summary"
RAW_COOKIE = "tsa_session=1.b.\xc3\xa9"  # the UTF-8 bytes of "é", as WSGI hands them over (latin-1)
DEEP = b"[" * 20_000 + b"]" * 20_000
DEEP_TASK = b"[" * 8_000 + b"]" * 8_000  # within the task body limit


@pytest.fixture
def client(analytics_url: str) -> FlaskClient:
    return make_client(clock=Clock())


@pytest.fixture
def cookieless(client: FlaskClient) -> FlaskClient:
    """The same app through a client without a cookie jar: a jar would drop a Cookie header set by hand."""
    return client.application.test_client(use_cookies=False)


def _raw_request(base: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, str]:
    """A GET with header bytes exactly as given (no client-side encoding or cleaning)."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
    try:
        connection.putrequest("GET", path)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


@pytest.fixture
def server(analytics_url: str) -> Iterator[str]:
    with serve_wsgi(create_app(services=ApiServices(get_settings()))) as base:
        yield base


def test_a_raw_utf8_byte_in_the_session_cookie_is_401_over_a_real_socket(server: str) -> None:
    status, body = _raw_request(server, SUMMARY, [(b"Cookie", b"tsa_session=1.b.\xc3\xa9")])
    assert status == 401, body
    assert "Traceback" not in body
    assert json.loads(body)["error"] == "unauthorized"


def test_a_malformed_session_cookie_counts_as_a_failure_of_its_source(cookieless: FlaskClient) -> None:
    client = cookieless
    source = {"REMOTE_ADDR": "198.51.100.7", "HTTP_COOKIE": RAW_COOKIE}
    statuses = [client.get(SUMMARY, environ_base=source).status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    elsewhere = {"REMOTE_ADDR": "198.51.100.8"}
    assert client.get(SUMMARY, headers=bearer(PASSWORD), environ_base=elsewhere).status_code == 200


def test_every_cookie_route_answers_a_malformed_cookie_without_a_500(cookieless: FlaskClient) -> None:
    client = cookieless
    name = session_cookie_name(get_settings())
    for value in ("1.b.\xc3\xa9", "\xc3\xa9", "1.\xff.\x00", "..", "1.b.c.d", "x" * 5000):
        for route in ROUTES:
            if not route.session_ok or route.access == "public":
                continue
            for method in route.methods:
                source = {"REMOTE_ADDR": f"10.{len(value) % 250}.0.1", "HTTP_COOKIE": f"{name}={value}"}
                response = client.open(_url(route.path), method=method, environ_base=source)
                assert response.status_code in (303, 401, 429), (
                    route.path,
                    method,
                    value,
                    response.status_code,
                )
        client.application.extensions["time_savings_api"].limiter.reset()


def test_non_ascii_credentials_and_csrf_tokens_are_refused_not_crashed(client: FlaskClient) -> None:
    for token in ("\xc3\xa9", "eyJ\xc3\xa9.\xc3\xa9.\xc3\xa9", PASSWORD + "\xe9"):
        response = client.get(SUMMARY, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
    response = client.get(SUMMARY, headers={"Authorization": "\xc3\xa9 \xc3\xa9"})
    assert response.status_code == 401
    client.post("/login", data={"password": PASSWORD})
    for token in ("\xc3\xa9", "\u00e9\u00e9", "\U0001f600"):
        response = client.post("/logout", data={"csrf_token": token})
        assert response.status_code == 403, token
        response = client.post("/logout", headers={"X-CSRF-Token": "\xc3\xa9"})
        assert response.status_code == 403
    response = client.get(SUMMARY, headers={"X-Forwarded-For": "\xc3\xa9", "Origin": "\xc3\xa9"})
    assert response.status_code == 200


def test_deep_json_is_400_on_every_json_route(client: FlaskClient) -> None:
    json_routes = [route for route in ROUTES if "POST" in route.methods and route.kind != "page"]
    assert json_routes
    for route in json_routes:
        for body in (DEEP, b'{"a": ' * 5000 + b"1" + b"}" * 5000):
            response = client.post(
                _url(route.path), data=body, content_type="application/json", headers=bearer(PASSWORD)
            )
            assert response.status_code == 400, (route.path, response.status_code)
            assert f"deeper than {MAX_JSON_DEPTH} levels" in response.get_json()["message"]


def test_deep_json_in_a_pipeline_task_is_rejected_not_crashed(analytics_engine: object) -> None:
    client = functions_framework.create_app(target="aggregate", source="main.py").test_client()
    secret = get_settings().task_secret.get_secret_value()
    response = client.post(
        "/", data=DEEP_TASK, content_type="application/json", headers={TASK_SECRET_HEADER: secret}
    )
    assert response.status_code < 500, response.get_data(as_text=True)
    assert "deeper than" in response.get_data(as_text=True)


def test_the_depth_check_reads_strings_as_strings() -> None:
    refuse_deep_json(json.dumps({"text": "[" * 10_000, "quote": '"[[[', "escaped": "\\" * 3}).encode())
    refuse_deep_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    with pytest.raises(RequestRejected, match="deeper than"):
        refuse_deep_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
