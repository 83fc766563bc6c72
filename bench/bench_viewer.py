"""Benchmark of the viewer's releases: publication cost, and the viewer's answers next to the admin's.

    .venv/bin/python bench/bench_viewer.py                       # 60 000 analyses, 400 users, 365 days
    .venv/bin/python bench/bench_viewer.py --analyses 200000 --users 2000

Generates the analyses with `bench_api.py`'s generator (20 disjoint teams) in a
temporary embedded PostgreSQL, adds a group that contains half of the teams (nested
groups and people in two groups, so the auditor has work to do), aggregates with the
aggregator's `recompute_dates`, records a completed run per date and publishes every due
release (timed: releases, figures, rank, atoms, auditor seconds), then asks the viewer's
endpoints over the whole range through the app as admin and as viewer, alternating, and
prints p50 / p95 per role and the ratio viewer ÷ admin of the p50s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_api import TODAY, _percentiles, _populate, _timed
from functions.aggregates import recompute_dates
from functions.api.app import API_PREFIX, create_app
from functions.api.services import ApiServices
from functions.read.releases import publish_due
from infra.embedded_pg import EmbeddedPostgres
from shared.config import Settings
from shared.db import make_engine
from shared.migrate import apply_migrations

ADMIN = "local-dev-password"
VIEWER = "viewer-password-for-the-bench"
ENDPOINTS = ("summary", "daily-trend", "group-breakdown")  # what a viewer reads (releases)


def _add_half_group(engine: sa.Engine, days: int) -> None:
    """A group of the first ten teams: nested over them, and everyone in it is in two groups."""
    end = TODAY - timedelta(days=1)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO user_groups (group_id, name, member_count) SELECT 'grp-half', 'Half', "
                "count(*) FROM group_members WHERE group_id IN "
                "(SELECT 'grp-' || g FROM generate_series(0, 9) g)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO group_members (group_id, user_id_hash) SELECT 'grp-half', user_id_hash "
                "FROM group_members WHERE group_id IN (SELECT 'grp-' || g FROM generate_series(0, 9) g)"
            )
        )
        connection.execute(
            sa.text(
                "UPDATE conversation_analysis SET group_ids = group_ids || ARRAY['grp-half'] "
                "WHERE group_ids && (SELECT array_agg('grp-' || g) FROM generate_series(0, 9) g)"
            )
        )
        recompute_dates(connection, [end - timedelta(days=n) for n in range(days)])


def run(analyses: int, users: int, days: int, iterations: int) -> dict[str, Any]:
    server = EmbeddedPostgres().start()
    try:
        admin_engine = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with admin_engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin_engine.dispose()
        url = server.url(name)
        engine = make_engine(url, pool_size=4)
        apply_migrations(engine)
        report: dict[str, Any] = {"analyses": analyses, "users": users, "days": days}
        report.update(_populate(engine, analyses, users, days))
        _add_half_group(engine, days)
        settings = Settings(analytics_database_url=url, viewer_password=VIEWER)
        now = datetime.combine(TODAY, clock_time(12), tzinfo=settings.zone)
        with engine.begin() as connection:  # a completed nightly run for every date
            connection.execute(
                sa.text(
                    "INSERT INTO processing_log (run_date, status, completed_at) "
                    "SELECT d::date, 'completed', now() FROM generate_series("
                    "CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d"
                ),
                {"first": TODAY - timedelta(days=days), "last": TODAY - timedelta(days=1)},
            )
        started = time.perf_counter()
        with engine.begin() as connection:
            counts = publish_due(connection, settings, now)
        publish_seconds = time.perf_counter() - started
        with engine.connect() as connection:
            audits = [
                row[0] for row in connection.execute(sa.text("SELECT audit FROM releases ORDER BY version"))
            ]
        report["releases"] = {
            **counts,
            "publish_seconds": round(publish_seconds, 1),
            "auditor_seconds": round(sum(a.get("seconds", 0) for a in audits), 1),
            "last_audit": audits[-1] if audits else None,
        }
        services = ApiServices(
            settings,
            engine_factory=lambda: engine,
            clock=lambda: now,
        )
        client = create_app(services=services).test_client()

        def ask(path: str, token: str) -> Any:
            response = client.get(
                f"{API_PREFIX}/{path}?days={days}", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.get_data(as_text=True)
            return response.get_json()

        latency: dict[str, Any] = {}
        for endpoint in ENDPOINTS:
            viewer_answer = ask(endpoint, VIEWER)
            admin_times: list[float] = []
            viewer_times: list[float] = []
            for _ in range(3):  # alternate so load swings hit both roles alike
                admin_times += _timed(lambda e=endpoint: ask(e, ADMIN), iterations // 3)
                viewer_times += _timed(lambda e=endpoint: ask(e, VIEWER), iterations // 3)
            admin_p, viewer_p = _percentiles(admin_times), _percentiles(viewer_times)
            latency[endpoint] = {
                "admin": admin_p,
                "viewer": viewer_p,
                "viewer_over_admin_p50": round(viewer_p["p50_ms"] / admin_p["p50_ms"], 1),
                "viewer_periods": len(viewer_answer["disclosure"]["periods"]),
            }
        report["latency"] = latency
        engine.dispose()
        return report
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--analyses", type=int, default=60_000, help="analyses to generate")
    parser.add_argument("--users", type=int, default=400, help="distinct users")
    parser.add_argument("--days", type=int, default=365, help="days the analyses spread over")
    parser.add_argument("--iterations", type=int, default=30, help="timed requests per endpoint and role")
    args = parser.parse_args()
    print(json.dumps(run(args.analyses, args.users, args.days, args.iterations), indent=2))


if __name__ == "__main__":
    main()
