"""What the api function talks to, gathered in one object so tests can swap the network edge.

Production uses the defaults: the process-wide analytics engine, Open WebUI's
database for role look-ups, the real dispatcher, Cloud Scheduler and the clock.
Tests pass fakes for the dispatcher, the scheduler client or the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine

from functions.read.health import SchedulerClientFactory
from functions.value import ensure_rates
from shared.auth import FailureLimiter, RoleLookup, SessionSigner
from shared.config import Settings
from shared.db import analytics_engine, source_engine
from shared.sessions import SessionStore

__all__ = ["ApiServices"]


def _default_dispatch(**kwargs: Any) -> Any:
    from functions.dispatcher import dispatch

    return dispatch(**kwargs)


def _default_backfill(start_date: date, end_date: date, **kwargs: Any) -> Any:
    from functions.dispatcher import backfill

    return backfill(start_date, end_date, **kwargs)


@dataclass
class ApiServices:
    """Settings plus every collaborator of the api function."""

    settings: Settings
    engine_factory: Callable[[], Engine] | None = None
    role_lookup: RoleLookup | None = None
    dispatch: Callable[..., Any] = _default_dispatch
    backfill: Callable[..., Any] = _default_backfill
    scheduler_client_factory: SchedulerClientFactory | None = None
    clock: Callable[[], datetime] | None = None
    limiter: FailureLimiter | None = None
    signer: SessionSigner | None = None
    sessions: SessionStore | None = None

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = FailureLimiter.from_settings(self.settings)
        if self.signer is None:
            self.signer = SessionSigner(self.settings)
        if self.sessions is None:
            self.sessions = SessionStore(
                lambda: self.engine,
                ttl_seconds=self.signer.ttl_seconds,
                idle_seconds=self.settings.session_idle_minutes * 60,
                clock=self.signer.clock,
            )
        if self.role_lookup is None and self.settings.webui_secret_key.get_secret_value():
            self.role_lookup = self._source_role

    def _source_role(self, user_id: str) -> str | None:
        from shared.openwebui.reader import load_user_role

        return load_user_role(source_engine(self.settings), user_id)

    @property
    def engine(self) -> Engine:
        """The analytics database engine (created on first use), holding the configured rates."""
        engine = self.engine_factory() if self.engine_factory else analytics_engine(self.settings)
        ensure_rates(engine, self.settings, self.today())  # once per process and rates: money never waits
        return engine

    @property
    def source_engine(self) -> Engine:
        """Open WebUI's database, read only (created on first use)."""
        return source_engine(self.settings)

    def now(self) -> datetime:
        """The current time in the configured zone."""
        current = self.clock() if self.clock else datetime.now(self.settings.zone)
        return current.astimezone(self.settings.zone)

    def today(self) -> date:
        """The current local date in the configured zone."""
        return self.now().date()
