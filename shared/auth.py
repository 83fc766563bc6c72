"""Authentication of the API and dashboard: who is calling, and in which role.

The ways in, checked in this order (the roles are defined in `shared.roles`):

* ``Authorization: Bearer <secret>``, compared in constant time with the dashboard
  password (role `admin`), the viewer password (`viewer`) and the feedback token
  (`feedback`), each only when configured;
* ``Authorization: Bearer <Open WebUI session token>`` when ``WEBUI_SECRET_KEY`` is
  set: an HS256 JWT ``{"id": user id, "exp": ..., "iat": ...}``, decoded under Open
  WebUI's own rules (see `_openwebui_claims`); the user is looked up in Open WebUI's
  database and must have ``role = 'admin'`` (another role: 403; expired, forged or
  unknown: 401);
* the dashboard's session cookie, issued by the login form: ``<expiry>.<id>.<mac>``
  signed with a key derived from the HMAC key and the passwords (changing a password
  ends every session), naming a session kept on the server (`shared.sessions`), which
  holds its role and ends at sign-out, at its lifetime or when idle.

Every sign-in attempt (bearer token, login form, a malformed session cookie) goes through
`FailureLimiter.attempt`, one mechanism with three counters over a sliding window of
``window_seconds``:

* per **source** (an IPv4 address or an IPv6 /64: one subscriber's network, so rotating
  addresses inside it buys no guesses): after ``max_failures`` failures the source gets 429
  with ``Retry-After`` before anything it presents is verified, the right password
  included: it is the source's own failures that stop it, which is what bounds guessing;
* per **presented credential** (a keyed hash of it, the key random per process; the
  credential itself is never stored or logged): a wrong credential that failed
  ``max_failures`` times is refused from every source. A correct credential never fails,
  so its counter stays empty; nor is one counted that is valid for some role but was
  presented where that role is not accepted (the feedback token or an Open WebUI admin
  token typed into the login form): it is refused and counted against the source only;
* a **global budget** of ``global_max_failures`` wrong attempts from all sources: while it
  is spent, a credential that fails verification is answered 429 with ``Retry-After``
  instead of 401. It slows wrong credentials only: a correct credential is verified and let
  in however many others failed, so 200 wrong guesses from 10 addresses lock out neither
  the admin, nor the viewer, nor the Open WebUI Action's token.

The tables of sources and of credentials hold at most ``max_clients`` entries each. An
entry that is limiting is never dropped, however many others fail: when a table is full,
a newcomer takes the place of the least recently failed entry that is not limiting, and
when every entry is limiting the newcomer is not tracked; such an untracked source is
verified only while the global budget has room (the one case where a correct credential
waits because others failed: at least ``max_clients`` x ``max_failures`` failures in the
window). What bounds guessing from many networks is therefore the per-source limit times
the number of sources, plus the global budget for sources beyond ``max_clients`` limited
ones, against secrets of at least 12 (passwords) and 32 (tokens) characters; an
admin who shares a source with a guesser (one NAT) waits with it. Well-formed but
unverifiable session cookies (expired, signed out, signed before a password change) are a
normal end of a session and are not counted; a cookie that is not of the shape this
product issues is. The counters live in the process: with several function instances the
limits apply per instance. The client address is ``request.remote_addr``; in production
(behind Google's front end, which appends the address it saw to ``X-Forwarded-For``)
the last ``X-Forwarded-For`` entry is used instead, because earlier entries are
whatever the client sent.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import ipaddress
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from shared.config import Settings
from shared.errors import AuthenticationFailed, RateLimited
from shared.roles import Role
from shared.sessions import SessionStore

__all__ = [
    "FailureLimiter",
    "Principal",
    "RateLimited",
    "RoleLookup",
    "SessionSigner",
    "authenticate",
    "bearer_token",
    "client_address",
    "client_key",
    "password_role",
    "session_cookie_name",
    "valid_for_some_role",
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
    """Who was let in, how, and in which role (`flask.g.principal` during a request)."""

    method: Literal["password", "openwebui", "session"]
    role: Role = Role.ADMIN
    user_id: str | None = None  # the Open WebUI user id for `openwebui`, else None


def client_key(address: str) -> str:
    """What failures are counted against: an IPv4 address, an IPv6 /64, or the raw text."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


_Verified = TypeVar("_Verified")
_Key = TypeVar("_Key", str, bytes)


def _wait(failures: deque[float] | None, limit: int, window: float, now: float) -> float:
    """Seconds until `failures` (oldest first) drop below `limit` in the window; 0 when they are."""
    if failures is None:
        return 0.0
    while failures and failures[0] <= now - window:
        failures.popleft()
    if len(failures) < limit:
        return 0.0
    return failures[len(failures) - limit] + window - now


class _FailureTable(Generic[_Key]):
    """Failure times per key for at most `max_keys` keys; a key that is limiting is never dropped.

    When the table is full, a new key takes the place of the least recently failed key that
    is not limiting; when every key is limiting, the new key is not tracked (`has_room`
    says so). Keys that were limiting when last counted wait in a heap by the time they may
    stop, so finding room costs O(log n), not a scan.
    """

    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._entries: dict[_Key, deque[float]] = {}
        self._open: OrderedDict[_Key, None] = OrderedDict()  # not limiting; least recently failed first
        self._limiting: list[tuple[float, _Key]] = []  # heap of (when it may stop limiting, key)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[_Key]:
        return iter(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def wait(self, key: _Key, now: float) -> float:
        return _wait(self._entries.get(key), self.limit, self.window, now)

    def _release(self, now: float) -> None:
        while self._limiting and self._limiting[0][0] <= now:
            _, key = heapq.heappop(self._limiting)
            wait = _wait(self._entries[key], self.limit, self.window, now)
            if wait > 0:  # it failed again meanwhile
                heapq.heappush(self._limiting, (now + wait, key))
            else:
                self._open[key] = None
                self._open.move_to_end(key, last=False)

    def has_room(self, now: float, *, make: bool) -> bool:
        """Whether a new key can be tracked; `make` drops the key that makes room."""
        if len(self._entries) < self.max_keys:
            return True
        self._release(now)
        if not self._open:
            return False
        if make:
            key, _ = self._open.popitem(last=False)
            del self._entries[key]
        return True

    def count(self, key: _Key, now: float) -> None:
        """One failure of `key` now (not tracked when the table is full of limiting keys)."""
        failures = self._entries.get(key)
        if failures is None:
            if not self.has_room(now, make=True):
                return
            failures = self._entries[key] = deque()
            self._open[key] = None
        elif key in self._open:
            self._open.move_to_end(key)
        _wait(failures, self.limit, self.window, now)
        failures.append(now)
        if key in self._open:
            wait = _wait(failures, self.limit, self.window, now)
            if wait > 0:
                del self._open[key]
                heapq.heappush(self._limiting, (now + wait, key))

    def clear(self) -> None:
        self._entries.clear()
        self._open.clear()
        self._limiting.clear()


class FailureLimiter:
    """Failed sign-ins per source, per presented credential and overall, in sliding windows, in this process."""

    def __init__(
        self,
        max_failures: int = 10,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
        global_max_failures: int = 100,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.global_max_failures = global_max_failures
        self._clock = clock
        # max_clients bounds memory under a spray of spoofed sources or credentials
        self._failures: _FailureTable[str] = _FailureTable(max_failures, window_seconds, max_clients)
        self._credential_failures: _FailureTable[bytes] = _FailureTable(
            max_failures, window_seconds, max_clients
        )
        self._everyone: deque[float] = deque(maxlen=global_max_failures)
        self._fingerprint_key = secrets.token_bytes(32)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FailureLimiter:
        return cls(
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_failure_window_seconds,
            global_max_failures=settings.login_global_max_failures,
        )

    def _fingerprint(self, credential: str) -> bytes:
        message = credential.encode("utf-8", "surrogatepass")
        return hmac.new(self._fingerprint_key, message, hashlib.sha256).digest()[:16]

    def check(self, client: str, credential: str | None = None) -> None:
        """Raise `RateLimited` while `client`'s source, or the presented `credential`, is over its limit."""
        key = client_key(client)
        with self._lock:
            now = self._clock()
            wait = self._failures.wait(key, now)
            if key not in self._failures and not self._failures.has_room(now, make=False):
                # a source this process cannot track (every tracked one is limiting) has no limit
                # of its own: it may try only while the global budget has room
                wait = max(wait, _wait(self._everyone, self.global_max_failures, self.window_seconds, now))
            if credential is not None:
                wait = max(wait, self._credential_failures.wait(self._fingerprint(credential), now))
        if wait > 0:
            raise RateLimited(_whole_seconds(wait))

    def record_failure(self, client: str, credential: str | None = None, *, known: bool = False) -> None:
        """Count one failed attempt of `client` presenting `credential`.

        `known`: the credential is valid for some role, only not here (a wrong route): it is
        counted against the source and never against itself, so nobody can lock it out.
        """
        key = client_key(client)
        fingerprint = None if credential is None or known else self._fingerprint(credential)
        with self._lock:
            now = self._clock()
            self._failures.count(key, now)
            if fingerprint is not None:
                self._credential_failures.count(fingerprint, now)
            self._everyone.append(now)

    def global_wait(self) -> int:
        """Whole seconds until the global budget of wrong attempts has room again; 0 while it has."""
        with self._lock:
            now = self._clock()
            wait = _wait(self._everyone, self.global_max_failures, self.window_seconds, now)
        return _whole_seconds(wait) if wait > 0 else 0

    def attempt(
        self,
        client: str,
        credential: str,
        verify: Callable[[], _Verified],
        *,
        known: Callable[[], bool] | None = None,
    ) -> _Verified:
        """`verify()` (which raises `AuthenticationFailed` for a wrong credential) under the limits.

        The source and the credential are checked before verifying; a correct credential is
        then let in whatever others did; a wrong one (401) is counted and, while the global
        budget is spent, answered 429 instead. `known()`, asked only after a 401, says whether
        the credential is valid for some role elsewhere (the feedback token typed into the
        login form): then it is refused and counted against the source, not against itself.
        """
        self.check(client, credential)
        try:
            return verify()
        except AuthenticationFailed as exc:
            if exc.status_code != 401:
                raise
            valid_elsewhere = known is not None and known()
            self.record_failure(client, credential, known=valid_elsewhere)
            wait = self.global_wait()
            if wait and not valid_elsewhere:
                raise RateLimited(wait) from exc
            raise

    def reset(self) -> None:
        """Forget every failure (tests)."""
        with self._lock:
            self._failures.clear()
            self._credential_failures.clear()
            self._everyone.clear()


def _whole_seconds(wait: float) -> int:
    return max(1, int(wait + 0.999))


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


# `<expiry>.<id>.<mac>` in ASCII, as `SessionSigner.issue` writes it (ids and macs are base64url)
_SESSION_SHAPE = re.compile(r"[0-9]{1,12}\.[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}")


def session_cookie_name(settings: Settings) -> str:
    """`__Host-` in production: the browser then insists on Secure, Path=/ and no Domain."""
    return "__Host-tsa_session" if settings.is_production else "tsa_session"


class SessionSigner:
    """Issues and verifies the signature of dashboard session cookies, and their CSRF tokens.

    A valid signature only says the value was issued here and has not reached its
    expiry; whether the session is still alive (not signed out, not idle) and its role
    are the `SessionStore`'s answer.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.ttl_seconds = settings.session_ttl_minutes * 60
        self.clock = clock
        passwords = b"\x00".join(
            secret.get_secret_value().encode()
            for secret in (settings.dashboard_password, settings.viewer_password)
        )
        self._key = hmac.new(
            settings.hmac_key.get_secret_value().encode(),
            b"dashboard-session\x00" + passwords,
            hashlib.sha256,
        ).digest()

    def _clock(self) -> float:
        return self.clock()

    def _mac(self, purpose: bytes, message: str) -> str:
        return _b64(hmac.new(self._key, purpose + b"\x00" + message.encode(), hashlib.sha256).digest())

    def issue(self) -> str:
        """A new session value that expires `ttl_seconds` from now."""
        payload = f"{int(self._clock()) + self.ttl_seconds}.{_b64(secrets.token_bytes(16))}"
        return f"{payload}.{self._mac(b'session', payload)}"

    @staticmethod
    def well_formed(value: str) -> bool:
        """Whether `value` has the shape of a session value (any signer's, expired or not)."""
        return _SESSION_SHAPE.fullmatch(value) is not None

    def verify(self, value: str | None) -> bool:
        """True for an unexpired value this signer issued."""
        if not value or not self.well_formed(value):
            return False
        payload, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(b"session", payload)):
            return False
        expiry = payload.split(".", 1)[0]
        return expiry.isdigit() and int(expiry) > self._clock()

    @staticmethod
    def session_id(value: str) -> str:
        """The session id a (verified) cookie value names."""
        return value.split(".")[1]

    def csrf_token(self, session_value: str) -> str:
        """The token a form posted with this session must carry (bound to the session)."""
        return self._mac(b"csrf", session_value)

    def verify_csrf(self, session_value: str | None, token: str | None) -> bool:
        if not session_value or not token:
            return False
        presented = str(token).encode("utf-8", "surrogatepass")  # compare_digest refuses non-ASCII str
        return hmac.compare_digest(presented, self.csrf_token(str(session_value)).encode())


def _looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


def bearer_token(header: str) -> str | None:
    """The credentials of an `Authorization: Bearer <credentials>` header; None for anything else."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def password_role(secret: str, settings: Settings, *, roles: frozenset[Role] | None = None) -> Role | None:
    """The role whose configured secret `secret` is (constant time, every secret compared); None: none.

    `roles` narrows the candidates (the login form offers only the session roles).
    """
    candidates = (
        (Role.ADMIN, settings.dashboard_password),
        (Role.VIEWER, settings.viewer_password),
        (Role.FEEDBACK, settings.feedback_token),
    )
    found: Role | None = None
    for role, configured in candidates:
        expected = configured.get_secret_value()
        matches = hmac.compare_digest(secret.encode(), expected.encode()) and bool(expected)
        if matches and found is None and (roles is None or role in roles):
            found = role
    return found


def _openwebui_claims(token: str, secret: str, settings: Settings, now: float) -> dict[str, Any]:
    """The claims of an Open WebUI session token, under the rules Open WebUI 0.12.4 applies.

    Open WebUI 0.12.4, `backend/open_webui/utils/auth.py`: `decode_token` is
    `jwt.decode(token, SESSION_SECRET, algorithms=["HS256"])`, so `exp` is checked when
    present but not required; `create_token` adds `exp` only when `JWT_EXPIRES_IN`
    (`open_webui/config.py`, default `4w`) parses to a duration, and `-1` issues tokens
    without one (its own log calls that a security warning), while every token gets
    `iat` and `jti`. `is_valid_token` reads a missing `typ` as `session` and treats a
    token without `iat` as unverifiable when it checks revocation. So, as Open WebUI:
    HS256 only, `exp` enforced when present; stricter where Open WebUI leaves a token
    valid forever: without `exp`, the token must carry `iat` and be younger than
    `ANALYTICS_OPENWEBUI_TOKEN_MAX_AGE_HOURS` (default: Open WebUI's default lifetime);
    only `session` tokens (not `automation`/`subagent`) are admitted. Open WebUI's
    per-account `session_stamp` (table `auth`) and its Redis revocation list are not
    consulted: the read-only role sees neither.
    """
    import jwt  # imported on first use: PyJWT brings `cryptography`, slow to import at cold start

    try:
        claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed("the Open WebUI session token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthenticationFailed("invalid credentials") from exc
    if claims.get("typ", "session") != "session":
        raise AuthenticationFailed("only Open WebUI session tokens are accepted")
    if "exp" not in claims:
        issued = claims.get("iat")
        if not isinstance(issued, int | float) or isinstance(issued, bool):
            raise AuthenticationFailed("an Open WebUI token without `exp` must carry `iat`")
        max_age = settings.openwebui_token_max_age_hours * 3600
        if now - issued > max_age:
            raise AuthenticationFailed(
                f"the Open WebUI session token has no expiry and is older than "
                f"{settings.openwebui_token_max_age_hours} hours; sign in to Open WebUI again"
            )
    return claims


def verify_bearer(
    token: str, settings: Settings, role_lookup: RoleLookup | None, *, now: float | None = None
) -> Principal:
    """The principal a bearer token stands for; `AuthenticationFailed` (401/403) otherwise."""
    role = password_role(token, settings)
    if role is not None:
        return Principal("password", role=role)
    secret = settings.webui_secret_key.get_secret_value()
    if secret and role_lookup is not None and _looks_like_jwt(token):
        claims = _openwebui_claims(token, secret, settings, time.time() if now is None else now)
        user_id = claims.get("id")
        if not isinstance(user_id, str) or not user_id:
            raise AuthenticationFailed("invalid credentials")
        webui_role = role_lookup(user_id)
        if webui_role is None:
            raise AuthenticationFailed("invalid credentials")
        if webui_role != "admin":
            raise AuthenticationFailed("an Open WebUI admin account is required", status_code=403)
        return Principal("openwebui", role=Role.ADMIN, user_id=user_id)
    raise AuthenticationFailed("invalid credentials")


def valid_for_some_role(secret: str, settings: Settings, role_lookup: RoleLookup | None) -> bool:
    """Whether `secret` is a credential `verify_bearer` admits (a password, the feedback token, an Open WebUI admin token).

    A route that refuses such a credential (the login form, which offers only the session
    roles) passes this to `FailureLimiter.attempt` as `known`: a valid credential at the wrong
    door is refused, but never counted against itself.
    """
    try:
        verify_bearer(secret, settings, role_lookup)
    except AuthenticationFailed:
        return False
    return True


def _refuse_authorization_header() -> Principal:
    raise AuthenticationFailed("the Authorization header must be 'Bearer <credentials>'")


def _refuse_session_cookie() -> Principal:
    raise AuthenticationFailed("the session cookie is not one this service issues; sign in again")


def authenticate(
    request: _Request,
    settings: Settings,
    limiter: FailureLimiter,
    *,
    role_lookup: RoleLookup | None,
    signer: SessionSigner | None,
    sessions: SessionStore | None = None,
) -> Principal:
    """Authenticate `request` by bearer token or (when `signer` is given) session cookie.

    Raises `RateLimited` (429) under the failure limits (see the module docstring),
    `AuthenticationFailed` with 401 for missing or wrong credentials and 403 for a non-admin
    Open WebUI user. A cookie is accepted only when `sessions` knows it as alive.
    """
    client = client_address(request, behind_google_front_end=settings.is_production)
    header = request.headers.get("Authorization", "")
    token = bearer_token(header)
    cookie = request.cookies.get(session_cookie_name(settings)) if signer else None
    if not header and not cookie:
        raise AuthenticationFailed("authentication required: send Authorization: Bearer <password>")
    if header:
        if token is None:
            return limiter.attempt(client, header, _refuse_authorization_header)
        return limiter.attempt(client, token, lambda: verify_bearer(token, settings, role_lookup))
    assert signer is not None and cookie
    if not signer.well_formed(cookie):
        return limiter.attempt(client, cookie, _refuse_session_cookie)
    if signer.verify(cookie) and sessions is not None:
        role = sessions.role(signer.session_id(cookie))
        if role is not None:
            return Principal("session", role=role)
    # an expired or signed-out cookie is a normal end of a session, not an attack: not counted
    raise AuthenticationFailed("the dashboard session has ended; sign in again")
