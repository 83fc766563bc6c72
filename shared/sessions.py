"""Dashboard sessions kept on the server (table `dashboard_sessions`, migration 005).

The cookie is signed (`shared.auth.SessionSigner`) and names a random session id; this
store decides whether that session is still alive and which role it holds. A session
ends at the first of: sign-out (revoked here, so the cookie is refused afterwards),
its absolute lifetime (`ANALYTICS_SESSION_TTL_MINUTES`) and its idle timeout
(`ANALYTICS_SESSION_IDLE_MINUTES`). Only the SHA-256 of the id is stored. `last_seen_at`
is written at most once a minute per session, so a page with its charts costs one
write, not five.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.roles import SESSION_ROLES, Role

__all__ = ["SessionStore"]

_TOUCH_EVERY = timedelta(minutes=1)
_KEEP_EXPIRED = timedelta(days=1)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Live dashboard sessions in the analytics database."""

    def __init__(
        self,
        engine_factory: Callable[[], Engine],
        *,
        ttl_seconds: int,
        idle_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine_factory = engine_factory
        self.ttl = timedelta(seconds=ttl_seconds)
        self.idle = timedelta(seconds=idle_seconds)
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def create(self, session_id: str, role: Role) -> None:
        """Record a new session of `role` (and forget sessions that ended over a day ago)."""
        if role not in SESSION_ROLES:
            raise ValueError(f"role {role!r} cannot hold a dashboard session")
        now = self._now()
        with self._engine_factory().begin() as connection:
            connection.execute(
                sa.text("DELETE FROM dashboard_sessions WHERE expires_at < :before"),
                {"before": now - _KEEP_EXPIRED},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO dashboard_sessions (session_hash, role, created_at, expires_at, last_seen_at) "
                    "VALUES (:hash, :role, :now, :expires, :now)"
                ),
                {"hash": _hash(session_id), "role": role.value, "now": now, "expires": now + self.ttl},
            )

    def role(self, session_id: str) -> Role | None:
        """The role of a live session; None when unknown, revoked, expired or idle too long."""
        now = self._now()
        with self._engine_factory().begin() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT role, last_seen_at FROM dashboard_sessions WHERE session_hash = :hash "
                    "AND revoked_at IS NULL AND expires_at > :now AND last_seen_at > :idle_since"
                ),
                {"hash": _hash(session_id), "now": now, "idle_since": now - self.idle},
            ).one_or_none()
            if row is None:
                return None
            if now - row.last_seen_at >= _TOUCH_EVERY:
                connection.execute(
                    sa.text("UPDATE dashboard_sessions SET last_seen_at = :now WHERE session_hash = :hash"),
                    {"hash": _hash(session_id), "now": now},
                )
        return Role(row.role)

    def revoke(self, session_id: str) -> None:
        """End a session now: its cookie is refused from here on."""
        with self._engine_factory().begin() as connection:
            connection.execute(
                sa.text(
                    "UPDATE dashboard_sessions SET revoked_at = :now "
                    "WHERE session_hash = :hash AND revoked_at IS NULL"
                ),
                {"hash": _hash(session_id), "now": self._now()},
            )
