"""Shared fixtures: a real embedded PostgreSQL for the whole session, a fresh database per test.

A test that uses the PostgreSQL fixtures is marked `database` here, automatically, so
`make check` can run the rest (`-m "not database and not browser and not slow"`).
Each test's analytics database is a copy of one template migrated once per session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.api import reset_app
from functions.wiring import reset_queue
from infra import local_queues
from infra.embedded_pg import EmbeddedPostgres
from shared.config import reset_settings_cache
from shared.db import make_engine, reset_engines
from shared.migrate import apply_migrations

# The suite is local tooling: the local HTTP and inline queues are available in-process.
local_queues.register()

# Variables a developer's shell may carry that would point tests at real services.
_ISOLATED_VARIABLES = (
    "COGNIFORCE_DATABASE_URL",
    "OPENWEBUI_DATABASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANALYTICS_ENVIRONMENT",
    "ANALYTICS_ESTIMATOR",
    "ANALYTICS_QUEUE_BACKEND",
    "WEBUI_SECRET_KEY",
)


_DATABASE_FIXTURES = frozenset({"postgres_server"})
"""Using any of these (directly or through another fixture) makes a test a `database` test."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark as `database` every test whose fixtures reach the embedded PostgreSQL.

    That is a fixture of `_DATABASE_FIXTURES` in its closure, or a parameter `"postgres"`:
    the source fixtures parametrised over SQLite and PostgreSQL ask for a database late.
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        parameters = callspec.params.values() if callspec is not None else ()
        if _DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())) or "postgres" in parameters:
            item.add_marker(pytest.mark.database)


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from local defaults and leaves no cached settings or engines behind."""
    for name in _ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TZ", "Europe/Budapest")
    reset_settings_cache()
    yield
    reset_settings_cache()
    reset_engines()
    reset_queue()
    reset_app()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    """One embedded PostgreSQL for the whole test session, in a temporary folder."""
    server = EmbeddedPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _admin_engine(postgres_server: EmbeddedPostgres) -> Iterator[Engine]:
    engine = sa.create_engine(postgres_server.url(), isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture
def fresh_database_url(postgres_server: EmbeddedPostgres, _admin_engine: Engine) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with _admin_engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield postgres_server.url(name)
    reset_engines()
    with _admin_engine.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_TEMPLATE = "t_template"


@pytest.fixture(scope="session")
def _migrated_template(postgres_server: EmbeddedPostgres, _admin_engine: Engine) -> str:
    """One database migrated once per session; each test's analytics database is a copy of it."""
    with _admin_engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{_TEMPLATE}"')
    engine = make_engine(postgres_server.url(_TEMPLATE))
    try:
        apply_migrations(engine)
    finally:
        engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template without connections
    return _TEMPLATE


@pytest.fixture
def analytics_url(
    postgres_server: EmbeddedPostgres,
    _admin_engine: Engine,
    _migrated_template: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A freshly migrated analytics database (a copy of the template), also set as COGNIFORCE_DATABASE_URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with _admin_engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{_migrated_template}"')
    url = postgres_server.url(name)
    monkeypatch.setenv("COGNIFORCE_DATABASE_URL", url)
    reset_settings_cache()
    yield url
    reset_engines()
    with _admin_engine.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def analytics_engine(analytics_url: str) -> Iterator[Engine]:
    """An engine on a freshly migrated analytics database."""
    engine = make_engine(analytics_url)
    yield engine
    engine.dispose()
