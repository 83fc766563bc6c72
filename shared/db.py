"""Database engines: the analytics Postgres (read-write) and Open WebUI's database (read only).

One engine of each per process, created lazily on first use (a Cloud Function
instance keeps it between requests). URLs:

* `postgresql+pg8000://user:pass@host:5432/db`: TCP;
* `postgresql+pg8000://user:pass@/db?unix_sock=/cloudsql/P:R:I/.s.PGSQL.5432`: unix socket;
* a Cloud SQL instance connection name in settings: the Cloud SQL Python Connector,
  with the user, password and database taken from the URL;
* `sqlite:////path/webui.db`: Open WebUI's default database (source only), opened read-only.

The analytics URL must be configured: locally the command line (`infra/cli.py`)
starts the embedded PostgreSQL under `.local/pgdata` and passes its URL on.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from shared.config import Settings, get_settings
from shared.errors import ConfigurationError

__all__ = [
    "analytics_engine",
    "make_engine",
    "reset_engines",
    "resolve_analytics_url",
    "resolve_source_url",
    "source_engine",
    "sqlstate",
]


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _cloudsql_creator(instance: str, url: URL) -> Any:
    """A connection factory through the Cloud SQL Python Connector (imported only when used)."""
    from google.cloud.sql.connector import Connector

    # lazy refresh: no background thread that a CPU-throttled function instance would starve
    connector = Connector(refresh_strategy="lazy")

    def connect() -> Any:
        return connector.connect(
            instance, "pg8000", user=url.username, password=url.password, db=url.database
        )

    return connect


def _sqlite_read_only_creator(path: str) -> Any:
    def connect() -> sqlite3.Connection:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    return connect


def make_engine(
    url: str, *, cloudsql_instance: str = "", pool_size: int = 2, read_only: bool = False
) -> Engine:
    """Build an engine for `url`; `read_only` makes every transaction read-only."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database:
            raise ConfigurationError("a sqlite URL needs a file path, e.g. sqlite:////data/webui.db")
        if read_only:
            # a file URI opened with mode=ro; a file database gets a QueuePool (thread-safe here)
            return sa.create_engine(
                "sqlite://",
                creator=_sqlite_read_only_creator(parsed.database),
                poolclass=sa.pool.QueuePool,
                pool_size=pool_size,
                max_overflow=8,
            )
        return sa.create_engine(parsed)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigurationError(f"unsupported database URL scheme {parsed.drivername!r}")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+pg8000")  # the only driver we ship
    options: dict[str, Any] = {
        "pool_size": pool_size,  # one request at a time per instance: a couple of connections suffice
        "max_overflow": 2,  # short bursts (health check during a request) without unbounded growth
        "pool_pre_ping": True,  # a connection dropped by a DB restart or idle timeout is replaced, not used
        "pool_recycle": 1800,  # Cloud SQL and proxies close idle connections; renew before they do
        "pool_timeout": 30,  # fail a request rather than hang past the task deadline
    }
    if cloudsql_instance:
        options["creator"] = _cloudsql_creator(cloudsql_instance, parsed)
        parsed = make_url("postgresql+pg8000://")
    engine = sa.create_engine(parsed, **options)
    if read_only:

        @sa.event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            cursor.close()
            dbapi_connection.commit()

    return engine


def resolve_analytics_url(settings: Settings) -> str:
    """The analytics database URL (the local tooling sets it to the embedded server's)."""
    if settings.analytics_database_url:
        return settings.analytics_database_url
    raise ConfigurationError(
        "COGNIFORCE_DATABASE_URL is missing"
        + ("" if settings.is_production else " (`python main.py ...` starts a local PostgreSQL and sets it)")
    )


def resolve_source_url(settings: Settings) -> str:
    """Open WebUI's database URL; locally with none configured, the demo database."""
    if settings.source_database_url:
        return settings.source_database_url
    if settings.is_production:
        raise ConfigurationError("OPENWEBUI_DATABASE_URL is missing")
    demo = settings.demo_source_path
    if not demo.exists():
        raise ConfigurationError(
            f"OPENWEBUI_DATABASE_URL is not set and the demo database {demo} "
            "does not exist yet: run `make run` (or `python main.py demo-data`)"
        )
    return f"sqlite:///{demo}"


def _cached(key: str, build: Any) -> Engine:
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = build()
        return engine


def analytics_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine of the analytics database, migrated on first use if configured."""
    settings = settings or get_settings()

    def build() -> Engine:
        engine = make_engine(
            resolve_analytics_url(settings),
            cloudsql_instance=settings.analytics_cloudsql_instance,
            pool_size=settings.db_pool_size,
        )
        if settings.migrate_on_start:
            from shared.migrate import apply_migrations

            apply_migrations(engine)
        return engine

    return _cached("analytics", build)


def source_engine(settings: Settings | None = None) -> Engine:
    """The process-wide read-only engine of Open WebUI's database."""
    settings = settings or get_settings()
    return _cached(
        "source",
        lambda: make_engine(
            resolve_source_url(settings),
            cloudsql_instance=settings.source_cloudsql_instance,
            pool_size=settings.db_pool_size,
            read_only=True,
        ),
    )


def reset_engines() -> None:
    """Dispose of the cached engines (tests switch databases)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def sqlstate(error: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of a driver error (pg8000 maps most codes to ProgrammingError)."""
    original = getattr(error, "orig", error)
    details = original.args[0] if getattr(original, "args", None) else None
    return details.get("C") if isinstance(details, dict) else None
