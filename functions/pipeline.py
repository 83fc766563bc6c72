"""The pipeline's HTTP endpoints and the process-wide task queue that connects them."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import date
from typing import Any

import flask
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions import aggregator, analyzer, dispatcher
from functions.http import TaskRequest, pipeline_response
from shared.config import QueueBackend, Settings, get_settings
from shared.errors import RequestRejected
from shared.queue import InlineQueue, TaskQueue, build_queue

__all__ = ["aggregate_endpoint", "analyze_endpoint", "default_queue", "dispatch_endpoint", "reset_queue"]

_queue: TaskQueue | None = None
_queue_lock = threading.Lock()


def default_queue(settings: Settings | None = None) -> TaskQueue:
    """The queue of this process, built once from the settings."""
    global _queue
    settings = settings or get_settings()
    with _queue_lock:
        if _queue is None:
            if settings.queue_backend is QueueBackend.INLINE:
                _queue = inline_queue(settings)
            else:
                _queue = build_queue(settings)
        return _queue


def reset_queue() -> None:
    global _queue
    with _queue_lock:
        _queue = None


def inline_queue(settings: Settings, **options: Any) -> InlineQueue:
    """An in-process queue whose tasks call the analyzer and aggregator directly."""
    queue: InlineQueue

    def run_analyze(payload: dict[str, Any], attempt: int) -> None:
        analyzer.analyze(payload, attempt=attempt, settings=settings, queue=queue)

    def run_aggregate(payload: dict[str, Any], attempt: int) -> None:
        aggregator.aggregate_run(_run_id(payload))

    queue = InlineQueue({"analyze": run_analyze, "aggregate": run_aggregate}, **options)
    return queue


class _DispatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    target_date: date | None = Field(None, alias="date")
    force: bool = False


def _run_id(body: dict[str, Any]) -> uuid.UUID:
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
        raise RequestRejected(f"invalid dispatch body: {exc.errors()[0]['msg']}") from exc
    schedule_time = request.headers.get("X-CloudScheduler-ScheduleTime")
    result = dispatcher.dispatch(
        target_date=body.target_date,
        force=body.force,
        trigger="scheduler" if schedule_time else "manual",
        idempotency_key=f"scheduler:{schedule_time}" if schedule_time else None,
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


def analyze_endpoint(request: flask.Request) -> flask.Response:
    return pipeline_response(
        request,
        function_name="analyze",
        audience=lambda s: s.analyzer_url,
        caller=lambda s: s.tasks_invoker_service_account,
        handler=lambda task: dataclasses.asdict(analyzer.analyze(task.body, attempt=task.attempt)),
    )


def aggregate_endpoint(request: flask.Request) -> flask.Response:
    return pipeline_response(
        request,
        function_name="aggregate",
        audience=lambda s: s.aggregator_url,
        caller=lambda s: s.tasks_invoker_service_account,
        handler=lambda task: dataclasses.asdict(aggregator.aggregate_run(_run_id(task.body))),
    )
