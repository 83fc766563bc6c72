"""The pipeline's HTTP endpoints: each builds its collaborators through `functions.wiring`.

Each endpoint imports its own function's module when it is first called: the three
pipeline functions deploy the same source, and the dispatcher must not pay for the
analyzer's reader, redaction and estimators at a cold start (nor they for it).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date
from typing import Any

import flask
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions import wiring
from functions.http import TaskRequest, pipeline_response
from shared.config import get_settings
from shared.errors import RequestRejected, validation_problems

__all__ = ["aggregate_endpoint", "analyze_endpoint", "dispatch_endpoint", "run_id_of"]


class _DispatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    target_date: date | None = Field(None, alias="date")
    force: bool = False


def run_id_of(body: dict[str, Any]) -> uuid.UUID:
    if set(body) != {"run_id"}:
        raise RequestRejected('aggregator payload must be exactly {"run_id": "<uuid>"}')
    try:
        return uuid.UUID(str(body["run_id"]))
    except ValueError as exc:
        raise RequestRejected(f"run_id is not a UUID: {exc}") from exc


def _dispatch(task: TaskRequest, request: flask.Request) -> dict[str, Any]:
    try:
        body = _DispatchBody.model_validate(task.body)
    except ValidationError as exc:
        raise RequestRejected(f"invalid dispatch body: {validation_problems(exc, whole='body')[0]}") from exc
    from functions import dispatcher

    schedule_time = request.headers.get("X-CloudScheduler-ScheduleTime")
    settings = get_settings()
    result = dispatcher.dispatch(
        target_date=body.target_date,
        force=body.force,
        trigger="scheduler" if schedule_time else "manual",
        idempotency_key=f"scheduler:{schedule_time}" if schedule_time else None,
        settings=settings,
        queue=wiring.queue(settings),
    )
    return {"status": "dispatched", **dataclasses.asdict(result)}


def dispatch_endpoint(request: flask.Request) -> flask.Response:
    return pipeline_response(
        request,
        function_name="dispatch",
        audience=lambda s: s.dispatcher_url,
        caller=lambda s: s.scheduler_invoker_service_account,
        handler=lambda task: _dispatch(task, request),
    )


def _analyze(task: TaskRequest) -> dict[str, Any]:
    from functions import analyzer

    result = analyzer.analyze(
        task.body, attempt=task.attempt, estimator=wiring.estimator(), queue=wiring.queue()
    )
    return dataclasses.asdict(result)


def _aggregate(task: TaskRequest) -> dict[str, Any]:
    from functions import aggregator

    return dataclasses.asdict(aggregator.aggregate_run(run_id_of(task.body)))


def analyze_endpoint(request: flask.Request) -> flask.Response:
    return pipeline_response(
        request,
        function_name="analyze",
        audience=lambda s: s.analyzer_url,
        caller=lambda s: s.tasks_invoker_service_account,
        handler=_analyze,
    )


def aggregate_endpoint(request: flask.Request) -> flask.Response:
    return pipeline_response(
        request,
        function_name="aggregate",
        audience=lambda s: s.aggregator_url,
        caller=lambda s: s.tasks_invoker_service_account,
        handler=_aggregate,
    )
