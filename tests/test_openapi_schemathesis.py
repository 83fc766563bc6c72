"""Property-based checks of the API against its own OpenAPI document (schemathesis).

A real server on loopback serves the app over the seeded database; schemathesis
reads `/api/v1/analytics/openapi.json` from it and sends generated requests, with
valid credentials, to every operation: no 5xx, and every response must match the
documented status codes, content types and schemas. Examples are bounded so the
whole module runs in well under a minute.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

# Schema-valid requests may still be refused (422) by rules OpenAPI cannot state for query
# parameters: `days` or a date pair, start ≤ end, a known group large enough to show.
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.engine import Engine

from functions.api.app import API_PREFIX, ROUTES, create_app
from functions.api.services import ApiServices
from infra.embedded_pg import EmbeddedPostgres
from infra.openwebui_fixture import OpenWebUIFixture
from shared.auth import FailureLimiter
from shared.config import Settings
from shared.db import make_engine
from shared.migrate import apply_migrations
from tests.api_dataset import TODAY, ZONE, seed
from tests.loopback import serve_wsgi

PASSWORD = "local-dev-password"
AUTH = {"Authorization": f"Bearer {PASSWORD}"}


@dataclass
class _Run:
    run_id: uuid.UUID
    run_date: date
    status: str = "running"
    expected: int = 0
    deferred: int = 0
    joined_existing: bool = False
    late_arrivals: int = 0


def _dispatch(**kwargs: Any) -> _Run:
    return _Run(uuid.uuid4(), kwargs.get("target_date") or TODAY - timedelta(days=1))


def _backfill(start_date: date, end_date: date, **kwargs: Any) -> list[_Run]:
    return [
        _Run(uuid.uuid4(), start_date + timedelta(days=n)) for n in range((end_date - start_date).days + 1)
    ]


@pytest.fixture(scope="module")
def api_server(
    postgres_server: EmbeddedPostgres, _admin_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The api app over a seeded database (and an empty Open WebUI one), on a loopback port."""
    name = f"t_schema_{uuid.uuid4().hex[:10]}"
    with _admin_engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(postgres_server.url(name))
    apply_migrations(engine)
    seed(engine)
    source = OpenWebUIFixture.sqlite(tmp_path_factory.mktemp("webui") / "webui.db")
    source.dispose()
    app_settings = Settings(analytics_database_url=postgres_server.url(name), source_database_url=source.url)
    services = ApiServices(
        app_settings,
        engine_factory=lambda: engine,
        clock=lambda: datetime.combine(TODAY, time(12), ZONE),
        dispatch=_dispatch,
        backfill=_backfill,
        # schemathesis also sends wrong credentials on purpose; they must get 401, not 429
        limiter=FailureLimiter(max_failures=1_000_000, global_max_failures=1_000_000),
    )
    try:
        with serve_wsgi(create_app(services=services)) as url:
            yield url
    finally:
        engine.dispose()
        with _admin_engine.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def api_schema(api_server: str) -> Any:
    return schemathesis.openapi.from_url(f"{api_server}{API_PREFIX}/openapi.json", headers=AUTH)


_OPERATIONS = [
    (method.upper(), route.path) for route in ROUTES if route.documented for method in route.methods
]


@pytest.mark.parametrize(("method", "path"), _OPERATIONS, ids=[f"{m} {p}" for m, p in _OPERATIONS])
def test_every_operation_matches_its_schema(api_schema: Any, api_server: str, method: str, path: str) -> None:
    """Generated requests (valid and invalid parameters) get documented, well-formed answers."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=api_server, headers=AUTH, excluded_checks=[positive_data_acceptance])

    check()
