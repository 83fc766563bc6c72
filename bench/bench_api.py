"""Benchmark of the api function over a large analytics database.

    .venv/bin/python bench/bench_api.py                      # 1 000 000 analyses, 5 000 users, 365 days
    .venv/bin/python bench/bench_api.py --analyses 200000    # a quicker run

Generates the analyses in a temporary embedded PostgreSQL with one INSERT ... SELECT
over generate_series, aggregates them with the aggregator's own `recompute_dates`,
then measures through the app (auth, validation, SQL, serialisation):

* p50 / p95 latency of `summary` and `daily-trend` over 365 days through the app, the
  same queries' database time from the aggregate tables, and the same figures computed
  on the fly from `conversation_analysis` (and the ratio of the two);
* CSV export of the whole year: rows per second, peak Python heap (tracemalloc)
  and growth of the process's peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import resource
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from functions.aggregates import recompute_dates
from functions.api.app import API_PREFIX, create_app
from functions.api.services import ApiServices
from functions.read import queries
from functions.read.schemas import DateRange
from infra.embedded_pg import EmbeddedPostgres
from shared.config import Settings
from shared.db import make_engine
from shared.migrate import apply_migrations

TODAY = date(2026, 6, 15)
AUTH = {"Authorization": "Bearer local-dev-password"}
GROUPS = 20

_GENERATE = """
INSERT INTO conversation_analysis (
    conversation_id, user_id_hash, group_ids, status, analysis_date, first_message_at, last_message_at,
    total_duration_minutes, active_duration_minutes, idle_time_minutes,
    manual_time_low, manual_time_most_likely, manual_time_high, confidence_level, time_saved_minutes,
    task_category, estimator, estimator_model, prompt_version, message_count, user_message_count,
    models_used, primary_model, source_updated_at, content_fingerprint
)
SELECT
    'chat-' || n,
    encode(sha256(('user-' || u)::bytea), 'hex'),
    ARRAY['grp-' || mod(u, :groups)],
    'analyzed',
    day,
    started,
    started + make_interval(mins => active + idle),
    active + idle, active, idle,
    low, low + extra, low + extra + spread, confidence, GREATEST(0, low + extra - active),
    (ARRAY['coding','writing','analysis','research','translation','learning','other'])[1 + mod(n, 7)],
    CASE WHEN mod(n, 3) = 0 THEN 'heuristic' ELSE 'llm' END,
    'gpt-4o-mini', '2026-11-28.1',
    2 + mod(n, 29), 1 + mod(n, 14),
    ARRAY[model], model,
    started, md5(n::text) || md5((n + 1)::text)
FROM (
    SELECT n,
        (random() * (:users - 1))::int AS u,
        CAST(:end_date AS date) - mod(n, :days) AS day,
        (CAST(:end_date AS date) - mod(n, :days)) + time '08:00' + make_interval(mins => mod(n, 600)) AS started,
        (random() * 60)::int AS active,
        (random() * 30)::int AS idle,
        (random() * 90)::int AS low,
        (random() * 60)::int AS extra,
        (random() * 120)::int AS spread,
        20 + (random() * 75)::int AS confidence,
        (ARRAY['gpt-4o-mini','llama3.1:8b','qwen2.5-coder','claude-sonnet'])[1 + mod(n, 4)] AS model
    FROM generate_series(1, :analyses) AS n
) AS generated
"""

_RAW_SUMS = """
    count(*) AS conversation_count, coalesce(sum(message_count), 0) AS message_count,
    coalesce(sum(active_duration_minutes), 0) AS total_active_time,
    coalesce(sum(time_saved_minutes), 0) AS total_time_saved,
    coalesce(sum(GREATEST(0, manual_time_low - active_duration_minutes)), 0) AS total_time_saved_low,
    coalesce(sum(GREATEST(0, manual_time_high - active_duration_minutes)), 0) AS total_time_saved_high,
    coalesce(sum(manual_time_most_likely), 0) AS total_manual_time_estimated,
    coalesce(sum(manual_time_low), 0) AS total_manual_time_low,
    coalesce(sum(manual_time_high), 0) AS total_manual_time_high,
    coalesce(sum(confidence_level), 0) AS confidence_sum,
    count(*) FILTER (WHERE estimator = 'llm') AS llm_estimated_count,
    count(*) FILTER (WHERE estimator = 'heuristic') AS heuristic_estimated_count
"""
_RAW_WHERE = "FROM conversation_analysis WHERE status = 'analyzed' AND analysis_date BETWEEN :s AND :e"


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2),
    }


def _timed(action: Callable[[], Any], iterations: int) -> list[float]:
    action()  # warm caches and the connection pool
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def _populate(engine: sa.Engine, analyses: int, users: int, days: int) -> dict[str, float]:
    end = TODAY - timedelta(days=1)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO user_groups (group_id, name, member_count) "
                "SELECT 'grp-' || g, 'Team ' || g, count(*) FROM generate_series(0, :users - 1) u, "
                "LATERAL (SELECT mod(u, :groups) AS g) x GROUP BY g"
            ),
            {"users": users, "groups": GROUPS},
        )
        connection.execute(
            sa.text(
                "INSERT INTO group_members (group_id, user_id_hash) SELECT 'grp-' || mod(u, :groups), "
                "encode(sha256(('user-' || u)::bytea), 'hex') FROM generate_series(0, :users - 1) u"
            ),
            {"users": users, "groups": GROUPS},
        )
        connection.execute(
            sa.text(_GENERATE),
            {"analyses": analyses, "users": users, "days": days, "groups": GROUPS, "end_date": end},
        )
    timings["generate_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    with engine.begin() as connection:
        recompute_dates(connection, [end - timedelta(days=n) for n in range(days)])
    timings["aggregate_s"] = round(time.perf_counter() - started, 1)
    maintenance = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT")
    with maintenance.connect() as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
        timings["aggregate_rows"] = connection.execute(
            sa.text("SELECT count(*) FROM daily_aggregates")
        ).scalar_one()
    maintenance.dispose()
    return timings


def _raw_summary(engine: sa.Engine, start: date, end: date) -> dict[str, Any]:
    """What `summary` answers, computed from the analyses instead of the aggregates."""
    previous_end = start - timedelta(days=1)
    previous_start = previous_end - (end - start)
    with engine.connect() as connection:
        trend = connection.execute(
            sa.text(f"SELECT analysis_date, {_RAW_SUMS} {_RAW_WHERE} GROUP BY analysis_date"),
            {"s": start, "e": end},
        ).all()
        total = (
            connection.execute(sa.text(f"SELECT {_RAW_SUMS} {_RAW_WHERE}"), {"s": start, "e": end})
            .mappings()
            .one()
        )
        connection.execute(
            sa.text(f"SELECT {_RAW_SUMS} {_RAW_WHERE}"), {"s": previous_start, "e": previous_end}
        ).one()
    return {"days": len(trend), **total}


def _raw_trend(engine: sa.Engine, start: date, end: date) -> int:
    with engine.connect() as connection:
        return len(
            connection.execute(
                sa.text(f"SELECT analysis_date, {_RAW_SUMS} {_RAW_WHERE} GROUP BY analysis_date"),
                {"s": start, "e": end},
            ).all()
        )


def _csv_export(client: Any, query: str) -> tuple[int, int, float]:
    started = time.perf_counter()
    response = client.get(f"{API_PREFIX}/export/csv?{query}", headers=AUTH, buffered=False)
    rows = size = 0
    for chunk in response.response:
        size += len(chunk)
        rows += chunk.count(b"\r\n")
    response.close()
    return rows - 1, size, time.perf_counter() - started


def run(analyses: int, users: int, days: int, iterations: int) -> dict[str, Any]:
    server = EmbeddedPostgres().start()
    try:
        admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        url = server.url(name)
        engine = make_engine(url, pool_size=4)
        apply_migrations(engine)
        report: dict[str, Any] = {"analyses": analyses, "users": users, "days": days}
        report.update(_populate(engine, analyses, users, days))

        settings = Settings(analytics_database_url=url)
        services = ApiServices(
            settings,
            engine_factory=lambda: engine,
            clock=lambda: datetime.combine(TODAY, clock_time(12), tzinfo=settings.zone),
        )
        client = create_app(services=services).test_client()
        end = TODAY - timedelta(days=1)
        start = end - timedelta(days=days - 1)
        query = f"days={days}"

        def api(path: str) -> Any:
            response = client.get(f"{API_PREFIX}/{path}?{query}", headers=AUTH)
            assert response.status_code == 200, response.get_data(as_text=True)
            return response.get_json()

        summary = api("summary")
        raw = _raw_summary(engine, start, end)
        assert summary["conversation_count"] == raw["conversation_count"] == analyses
        assert summary["total_time_saved_high"] == raw["total_time_saved_high"]

        scope = queries.Scope()
        date_range = DateRange.between(start, end)
        earlier = date_range.previous()

        def aggregate_summary() -> None:
            with engine.connect() as connection:
                queries.daily_trend(connection, scope, date_range, settings)
                queries.figures(connection, scope, date_range, settings)
                queries.figures(connection, scope, earlier, settings)

        def aggregate_trend() -> None:
            with engine.connect() as connection:
                queries.daily_trend(connection, scope, date_range, settings)

        latency: dict[str, Any] = {}
        for label, action in (
            ("summary_api", lambda: api("summary")),
            ("summary_from_aggregates", aggregate_summary),
            ("summary_on_the_fly", lambda: _raw_summary(engine, start, end)),
            ("daily_trend_api", lambda: api("daily-trend")),
            ("daily_trend_from_aggregates", aggregate_trend),
            ("daily_trend_on_the_fly", lambda: _raw_trend(engine, start, end)),
        ):
            latency[label] = _percentiles(_timed(action, iterations))
        for name_ in ("summary", "daily_trend"):
            fast, slow = latency[f"{name_}_from_aggregates"], latency[f"{name_}_on_the_fly"]
            latency[f"{name_}_on_the_fly_over_aggregates_p50"] = round(slow["p50_ms"] / fast["p50_ms"], 1)
        report["latency"] = latency

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rows, size, seconds = _csv_export(client, query)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        _csv_export(client, query)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        report["csv"] = {
            "rows": rows,
            "megabytes": round(size / 1e6, 1),
            "seconds": round(seconds, 1),
            "rows_per_second": round(rows / seconds),
            "peak_python_heap_mb": round(peak / 1e6, 1),
            "peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        }
        sample = next(
            csv.reader(
                io.StringIO(
                    client.get(f"{API_PREFIX}/export/csv?days=1", headers=AUTH).get_data(as_text=True)
                )
            )
        )
        assert sample[0] == "conversation_id"
        engine.dispose()
        return report
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--analyses", type=int, default=1_000_000, help="analyses to generate")
    parser.add_argument("--users", type=int, default=5_000, help="distinct users")
    parser.add_argument("--days", type=int, default=365, help="days the analyses spread over")
    parser.add_argument("--iterations", type=int, default=30, help="timed requests per endpoint")
    args = parser.parse_args()
    print(json.dumps(run(args.analyses, args.users, args.days, args.iterations), indent=2))


if __name__ == "__main__":
    main()
