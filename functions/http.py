"""HTTP glue of the pipeline functions: authenticate, bound and parse the body, map errors to codes.

Under Cloud Tasks the status code is the contract: 2xx means done (success or a
recorded permanent failure or rejection), anything else means "retry later".
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import flask
import sqlalchemy as sa

from shared.config import Settings, get_settings
from shared.db import analytics_engine
from shared.errors import (
    AuthenticationFailed,
    ConfigurationError,
    PermanentError,
    RequestRejected,
    RetryableError,
)
from shared.json_input import refuse_deep_json
from shared.logs import configure_logging
from shared.pipeline_auth import verify_pipeline_caller
from shared.queue import TASK_RETRY_HEADER

__all__ = ["MAX_TASK_BODY_BYTES", "TaskRequest", "pipeline_response"]

_log = logging.getLogger(__name__)

MAX_TASK_BODY_BYTES = 16 * 1024  # payloads are ids, never conversations (Cloud Tasks allows 100 KB)


class TaskRequest:
    """What a pipeline handler gets: the parsed JSON body and the delivery attempt (0 = first)."""

    def __init__(self, body: dict[str, Any], attempt: int, task_name: str | None) -> None:
        self.body = body
        self.attempt = attempt
        self.task_name = task_name


def _json_response(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> flask.Response:
    return flask.Response(
        json.dumps(payload, default=str), status=status, mimetype="application/json", headers=headers
    )


def _record_rejection(function_name: str, reason: str, raw: bytes, task_name: str | None) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    _log.warning(
        "%s rejected a task payload (%d bytes, sha256 %s, task %s): %s",
        function_name,
        len(raw),
        digest[:16],
        task_name,
        reason,
    )
    with analytics_engine().begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO task_rejections (function_name, reason, body_bytes, body_sha256, task_name) "
                "VALUES (:f, :r, :n, :h, :t)"
            ),
            {"f": function_name, "r": reason[:1000], "n": len(raw), "h": digest, "t": task_name},
        )


def _parse(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_TASK_BODY_BYTES:
        raise RequestRejected(f"payload is {len(raw)} bytes; the limit is {MAX_TASK_BODY_BYTES}")
    if not raw.strip():
        return {}
    refuse_deep_json(raw)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestRejected(f"payload is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise RequestRejected("payload must be a JSON object")
    return body


def _attempt(request: flask.Request) -> int:
    try:
        return max(0, int(request.headers.get(TASK_RETRY_HEADER, "0")))
    except ValueError:
        return 0


def pipeline_response(
    request: flask.Request,
    *,
    function_name: str,
    audience: Callable[[Settings], str],
    caller: Callable[[Settings], str],
    handler: Callable[[TaskRequest], dict[str, Any]],
) -> flask.Response:
    """Run `handler` for an authenticated pipeline request and turn its outcome into a response."""
    settings = get_settings()
    configure_logging(settings.log_format)
    if request.method != "POST":
        return _json_response(405, {"error": "use POST"}, {"Allow": "POST"})
    try:
        verify_pipeline_caller(
            request.headers, settings, audience=audience(settings), service_account=caller(settings)
        )
    except AuthenticationFailed as exc:
        _log.warning("%s refused a caller: %s", function_name, exc)
        return _json_response(exc.status_code, {"error": str(exc)})

    raw = request.get_data(cache=False)
    task_name = request.headers.get("X-CloudTasks-TaskName")
    try:
        task = TaskRequest(_parse(raw), _attempt(request), task_name)
        return _json_response(200, handler(task))
    except RequestRejected as exc:
        if function_name == "dispatch":
            return _json_response(exc.status_code, {"error": str(exc)})
        _record_rejection(function_name, str(exc), raw, task_name)
        return _json_response(200, {"status": "rejected", "reason": str(exc)})
    except RetryableError as exc:
        _log.warning("%s: transient failure, the queue will retry: %s", function_name, exc)
        retry_after = {"Retry-After": str(int(exc.retry_after_seconds))} if exc.retry_after_seconds else None
        return _json_response(503, {"status": "retry", "reason": str(exc)}, retry_after)
    except PermanentError as exc:
        return _json_response(200, {"status": "failed", "reason": exc.reason_code, "detail": str(exc)})
    except ConfigurationError as exc:
        # the deployment is wrong, not the task: keep it queued (non-2xx) and say what to fix
        _log.error("%s cannot run: %s", function_name, exc)
        return _json_response(500, {"status": "misconfigured", "reason": str(exc)})
    except sa.exc.DBAPIError as exc:
        _log.warning("%s: database error, the queue will retry: %s", function_name, type(exc.orig).__name__)
        return _json_response(503, {"status": "retry", "reason": "database unavailable"})
