"""Admin authentication of the API and dashboard.

Three ways in, checked in this order:

* ``Authorization: Bearer <dashboard password>``, compared in constant time;
* ``Authorization: Bearer <Open WebUI session token>`` when ``WEBUI_SECRET_KEY`` is
  set: an HS256 JWT ``{"id": user id, "exp": ...}``; the user is looked up in Open
  WebUI's database and must have ``role = 'admin'`` (another role: 403; expired,
  forged or unknown: 401);
* the dashboard's session cookie, issued by the login form: stateless,
  ``<expiry>.<nonce>.<mac>`` signed with a key derived from the HMAC key and the
  dashboard password (changing the password ends every session).

Wrong credentials are counted per client: after ``max_failures`` failures within
``window_seconds`` the client gets 429 with ``Retry-After`` until the window slides,
even with the right password. The counter lives in the process: with several
function instances the limit applies per instance. The client is
``request.remote_addr``; in production (behind Google's front end, which appends
the address it saw to ``X-Forwarded-For``) the last ``X-Forwarded-For`` entry is
used instead, because earlier entries are whatever the client sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import jwt

from shared.config import Settings
from shared.errors import AuthenticationFailed

__all__ = [
    "FailureLimiter",
    "Principal",
    "RateLimited",
    "RoleLookup",
    "SessionSigner",
    "authenticate",
    "bearer_token",
    "client_address",
    "session_cookie_name",
    "verify_bearer",
]

RoleLookup = Callable[[str], str | None]
"""Open WebUI user id → its role (`admin`, `user`, `pending`), or None when unknown."""


class _Request(Protocol):
    """What authentication reads of a request (a Flask/werkzeug request fits)."""

    @property
    def headers(self) -> Any: ...
    @property
    def cookies(self) -> Any: ...
    @property
    def remote_addr(self) -> str | None: ...


@dataclass(frozen=True)
class Principal:
    """Who was let in, and how."""

    method: Literal["password", "openwebui", "session"]
    user_id: str | None = None  # the Open WebUI user id for `openwebui`, else None


class RateLimited(AuthenticationFailed):
    """Too many failed attempts from one client: 429 with `Retry-After`."""

    status_code = 429

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many failed sign-in attempts; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class FailureLimiter:
    """Failed attempts per client in a sliding window, in this process only."""

    def __init__(
        self,
        max_failures: int = 10,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._clock = clock
        self._max_clients = max_clients  # bounds memory under a spray of spoofed sources
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def check(self, client: str) -> None:
        """Raise `RateLimited` while `client` is over the limit."""
        with self._lock:
            now = self._clock()
            failures = self._recent(client, now)
            if len(failures) >= self.max_failures:
                wait = failures[len(failures) - self.max_failures] + self.window_seconds - now
                raise RateLimited(max(1, int(wait + 0.999)))

    def record_failure(self, client: str) -> None:
        """Count one failed attempt of `client`."""
        with self._lock:
            now = self._clock()
            if client not in self._failures and len(self._failures) >= self._max_clients:
                oldest = min(self._failures, key=lambda key: self._failures[key][-1])
                del self._failures[oldest]
            self._recent(client, now)
            self._failures.setdefault(client, deque()).append(now)

    def reset(self) -> None:
        """Forget every failure (tests)."""
        with self._lock:
            self._failures.clear()


def client_address(request: _Request, *, behind_google_front_end: bool) -> str:
    """The address failures are counted against (see the module docstring)."""
    if behind_google_front_end:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.remote_addr or "unknown"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def session_cookie_name(settings: Settings) -> str:
    """`__Host-` in production: the browser then insists on Secure, Path=/ and no Domain."""
    return "__Host-tsa_session" if settings.is_production else "tsa_session"


class SessionSigner:
    """Issues and verifies stateless dashboard session cookies and their CSRF tokens."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.ttl_seconds = settings.session_ttl_minutes * 60
        self._clock = clock
        self._key = hmac.new(
            settings.hmac_key.get_secret_value().encode(),
            b"dashboard-session\x00" + settings.dashboard_password.get_secret_value().encode(),
            hashlib.sha256,
        ).digest()

    def _mac(self, purpose: bytes, message: str) -> str:
        return _b64(hmac.new(self._key, purpose + b"\x00" + message.encode(), hashlib.sha256).digest())

    def issue(self) -> str:
        """A new session value that expires `ttl_seconds` from now."""
        payload = f"{int(self._clock()) + self.ttl_seconds}.{_b64(secrets.token_bytes(16))}"
        return f"{payload}.{self._mac(b'session', payload)}"

    def verify(self, value: str | None) -> bool:
        """True for an unexpired value this signer issued."""
        if not value or value.count(".") != 2:
            return False
        payload, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(b"session", payload)):
            return False
        expiry = payload.split(".", 1)[0]
        return expiry.isdigit() and int(expiry) > self._clock()

    def csrf_token(self, session_value: str) -> str:
        """The token a form posted with this session must carry (bound to the session)."""
        return self._mac(b"csrf", session_value)

    def verify_csrf(self, session_value: str | None, token: str | None) -> bool:
        return bool(session_value and token) and hmac.compare_digest(
            str(token), self.csrf_token(str(session_value))
        )


def _looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


def bearer_token(header: str) -> str | None:
    """The credentials of an `Authorization: Bearer <credentials>` header; None for anything else."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def verify_bearer(token: str, settings: Settings, role_lookup: RoleLookup | None) -> Principal:
    """The principal a bearer token stands for; `AuthenticationFailed` (401/403) otherwise."""
    password = settings.dashboard_password.get_secret_value()
    if password and hmac.compare_digest(token.encode(), password.encode()):
        return Principal("password")
    secret = settings.webui_secret_key.get_secret_value()
    if secret and role_lookup is not None and _looks_like_jwt(token):
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"])
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationFailed("the Open WebUI session token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed("invalid credentials") from exc
        user_id = claims.get("id")
        if not isinstance(user_id, str) or not user_id:
            raise AuthenticationFailed("invalid credentials")
        role = role_lookup(user_id)
        if role is None:
            raise AuthenticationFailed("invalid credentials")
        if role != "admin":
            raise AuthenticationFailed("an Open WebUI admin account is required", status_code=403)
        return Principal("openwebui", user_id=user_id)
    raise AuthenticationFailed("invalid credentials")


def authenticate(
    request: _Request,
    settings: Settings,
    limiter: FailureLimiter,
    *,
    role_lookup: RoleLookup | None,
    signer: SessionSigner | None,
) -> Principal:
    """Authenticate `request` by bearer token or (when `signer` is given) session cookie.

    Raises `RateLimited` (429) for a client over the failure limit, `AuthenticationFailed`
    with 401 for missing or wrong credentials and 403 for a non-admin Open WebUI user.
    """
    client = client_address(request, behind_google_front_end=settings.is_production)
    header = request.headers.get("Authorization", "")
    token = bearer_token(header)
    cookie = request.cookies.get(session_cookie_name(settings)) if signer else None
    if not header and not cookie:
        raise AuthenticationFailed("authentication required: send Authorization: Bearer <password>")
    limiter.check(client)
    if header:
        if token is None:
            limiter.record_failure(client)
            raise AuthenticationFailed("the Authorization header must be 'Bearer <credentials>'")
        try:
            return verify_bearer(token, settings, role_lookup)
        except AuthenticationFailed as exc:
            if exc.status_code == 401:
                limiter.record_failure(client)
            raise
    assert signer is not None
    if signer.verify(cookie):
        return Principal("session")
    # an expired cookie is a normal end of a session, not an attack: not counted
    raise AuthenticationFailed("the dashboard session has expired; sign in again")
