"""The metric registry matches the aggregate tables, the ORM models and the API's figures."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.metrics import METRIC_COLUMNS, METRICS
from functions.read.schemas import Figures
from shared.models import DailyAggregate, DailyBreakdown


def test_every_metric_is_a_column_of_both_aggregate_tables(analytics_engine: Engine) -> None:
    inspector = sa.inspect(analytics_engine)
    for table in ("daily_aggregates", "daily_breakdowns"):
        columns = {column["name"] for column in inspector.get_columns(table)}
        missing = set(METRIC_COLUMNS) - columns
        assert not missing, f"{table} lacks {sorted(missing)}"


def test_every_metric_is_mapped_by_the_models() -> None:
    for model in (DailyAggregate, DailyBreakdown):
        assert set(METRIC_COLUMNS) <= set(model.__table__.columns.keys())


def test_public_metrics_are_figures_fields_described_once() -> None:
    fields = Figures.model_fields
    for metric in METRICS:
        if metric.public:
            assert metric.column in fields
            assert fields[metric.column].description == metric.description
        else:
            assert metric.column not in fields
    assert len(set(METRIC_COLUMNS)) == len(METRIC_COLUMNS)
