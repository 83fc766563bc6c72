"""The calibration report in the API and on the dashboard (see `functions/calibration.py`)."""

from __future__ import annotations

import flask

from functions.api import charts
from functions.api.services import ApiServices
from functions.calibrated import PendingChange, pending_change
from functions.calibration import (
    CalibrationReport,
    confirmation_report,
    load_confirmation_pairs,
    scatter_points,
)
from functions.read.schemas import NoQuery

__all__ = ["calibration", "calibration_chart", "dashboard_report", "pending"]


def calibration(services: ApiServices, query: NoQuery) -> CalibrationReport:
    """GET /calibration: every stored confirmation against its estimate."""
    with services.engine.connect() as connection:
        return confirmation_report(connection, minimum=services.settings.calibration_min_confirmations)


def dashboard_report(services: ApiServices) -> CalibrationReport:
    """The report the dashboard's calibration panel shows."""
    return calibration(services, NoQuery())


def pending(services: ApiServices) -> PendingChange | None:
    """The calibration change waiting for an admin's `recalibrate`, if any (the dashboard says so)."""
    with services.engine.connect() as connection:
        return pending_change(connection, services.settings)


def calibration_chart(services: ApiServices) -> flask.Response:
    """The panel's log–log scatter of confirmed against estimated minutes."""
    with services.engine.connect() as connection:
        pairs = load_confirmation_pairs(connection).pairs
    budget = services.settings.chart_render_seconds
    try:
        return charts.svg_response(charts.calibration_chart(scatter_points(pairs), budget_seconds=budget))
    except charts.ChartRenderFailed as exc:
        flask.current_app.logger.error("calibration chart not drawn: %s", exc)
        return charts.svg_response(charts.ERROR_SVG, status=503)
