"""Security across the entry points: every function in main.py refuses strangers, and injection or
path-traversal payloads in query parameters and JSON bodies get a 4xx and change nothing.

(Per-route checks of the api function live in tests/test_auth.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import functions_framework
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.config import REPO_ROOT, get_settings
from shared.queue import TASK_SECRET_HEADER

MAIN = REPO_ROOT / "main.py"
PAYLOADS = [
    "'; DROP TABLE conversation_analysis; --",
    "1 OR 1=1",
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "<script>alert(1)</script>",
]
TABLES = ("conversation_analysis", "daily_aggregates", "processing_log", "run_outcomes", "user_groups")


def _entry_points(path: Path) -> list[str]:
    """Every function main.py exposes to functions-framework (decorated with functions_framework.http)."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef) and any(
            ast.unparse(decorator) == "functions_framework.http" for decorator in node.decorator_list
        ):
            names.append(node.name)
    return names


def _snapshot(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {t: connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def test_main_exposes_exactly_the_four_functions() -> None:
    assert sorted(_entry_points(MAIN)) == ["aggregate", "analyze", "api", "dispatch"]


@pytest.mark.parametrize("function", [name for name in _entry_points(MAIN) if name != "api"])
def test_every_pipeline_function_refuses_missing_and_wrong_credentials(
    analytics_engine: Engine, function: str
) -> None:
    client = functions_framework.create_app(target=function, source=str(MAIN)).test_client()
    before = _snapshot(analytics_engine)
    for headers in (
        {},
        {TASK_SECRET_HEADER: "wrong"},
        {TASK_SECRET_HEADER: ""},
        {
            "Authorization": f"Bearer {get_settings().task_secret.get_secret_value()}"
        },  # right value, wrong place
    ):
        response = client.post("/", json={"date": "2026-11-20"}, headers=headers)
        assert response.status_code == 401, (function, headers, response.status_code)
    assert _snapshot(analytics_engine) == before


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize(
    "parameter",
    ["days", "start_date", "end_date", "group", "user_id_hash", "limit"],
)
def test_hostile_query_parameters_are_refused_and_change_nothing(
    analytics_engine: Engine, parameter: str, payload: str
) -> None:
    client = functions_framework.create_app(target="api", source=str(MAIN)).test_client()
    before = _snapshot(analytics_engine)
    password = get_settings().dashboard_password.get_secret_value()
    for path in ("summary", "daily-trend", "user-breakdown", "group-breakdown", "export/csv"):
        response = client.get(
            f"/api/v1/analytics/{path}",
            query_string={parameter: payload},
            headers={"Authorization": f"Bearer {password}"},
        )
        assert 400 <= response.status_code < 500, (path, parameter, payload, response.status_code)
    assert _snapshot(analytics_engine) == before


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_json_bodies_are_refused_and_change_nothing(analytics_engine: Engine, payload: str) -> None:
    api = functions_framework.create_app(target="api", source=str(MAIN)).test_client()
    dispatch = functions_framework.create_app(target="dispatch", source=str(MAIN)).test_client()
    before = _snapshot(analytics_engine)
    password = get_settings().dashboard_password.get_secret_value()
    secret = get_settings().task_secret.get_secret_value()
    for body in ({"date": payload}, {"start_date": payload, "end_date": payload}, {"force": payload}):
        response = api.post(
            "/api/v1/analytics/trigger-processing", json=body, headers={"Authorization": f"Bearer {password}"}
        )
        assert 400 <= response.status_code < 500, (body, response.status_code)
        response = dispatch.post("/", json=body, headers={TASK_SECRET_HEADER: secret})
        assert 400 <= response.status_code < 500, (body, response.status_code)
    assert _snapshot(analytics_engine) == before
