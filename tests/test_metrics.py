"""The metric registry matches the aggregate tables and the API's figures."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.metrics import METRIC_COLUMNS, METRICS
from functions.read.schemas import Figures


def test_every_metric_is_a_column_of_both_aggregate_tables(analytics_engine: Engine) -> None:
    inspector = sa.inspect(analytics_engine)
    for table in ("daily_aggregates", "daily_breakdowns"):
        columns = {column["name"] for column in inspector.get_columns(table)}
        missing = set(METRIC_COLUMNS) - columns
        assert not missing, f"{table} lacks {sorted(missing)}"


def test_public_metrics_are_figures_fields_described_once() -> None:
    fields = Figures.model_fields
    for metric in METRICS:
        if metric.public:
            assert metric.column in fields
            assert fields[metric.column].description == metric.description
        else:
            assert metric.column not in fields
    assert len(set(METRIC_COLUMNS)) == len(METRIC_COLUMNS)
