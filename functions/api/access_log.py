"""One access-log line per request: method, route pattern, status, duration in milliseconds.

The route is the pattern the request matched (`/charts/<chart>.svg`), never the raw
path, and the query string is left out: neither can carry a user's id, a group
name or a token into the logs. In JSON mode (production) the line also carries the
values as fields (`httpRequest` as Cloud Logging reads it, plus `route` and
`duration_ms`).
"""

from __future__ import annotations

import logging
import time

import flask

__all__ = ["ACCESS_LOGGER", "install_access_log"]

ACCESS_LOGGER = "functions.api.access"
_UNMATCHED = "<no route>"
_log = logging.getLogger(ACCESS_LOGGER)


def _started() -> None:
    flask.g.access_started = time.perf_counter()


def _logged(response: flask.Response) -> flask.Response:
    started = flask.g.get("access_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else 0.0
    rule = flask.request.url_rule
    route = rule.rule if rule is not None else _UNMATCHED
    method = flask.request.method
    status = response.status_code
    _log.info(
        "%s %s %d %.1f ms",
        method,
        route,
        status,
        duration_ms,
        extra={
            "json_fields": {
                "httpRequest": {
                    "requestMethod": method,
                    "status": status,
                    "latency": f"{duration_ms / 1000:.4f}s",
                },
                "route": route,
                "duration_ms": duration_ms,
            }
        },
    )
    return response


def install_access_log(app: flask.Flask) -> None:
    """Time every request of `app` and log it when its response is ready (error responses too)."""
    app.before_request(_started)
    app.after_request(_logged)
