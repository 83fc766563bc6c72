"""The `api` Cloud Function: admin API under `/api/v1/analytics`, the dashboard at `/`.

`handle(request)` is what the functions-framework entry point calls: it passes the
request's WSGI environ to this package's Flask app (created once per process), so
routing, authentication and streaming work exactly as in `create_app()` tests.
"""

from __future__ import annotations

import threading
from typing import cast

import flask

from functions.api.app import create_app

__all__ = ["create_app", "handle", "reset_app"]

_app: flask.Flask | None = None
_app_lock = threading.Lock()


def _shared_app() -> flask.Flask:
    global _app
    with _app_lock:
        if _app is None:
            _app = create_app()
        return _app


def reset_app() -> None:
    """Forget the process-wide app (tests switch settings and databases)."""
    global _app
    with _app_lock:
        _app = None


def handle(request: flask.Request) -> flask.Response:
    """Serve one request of the `api` function with the process-wide app."""
    return cast(flask.Response, flask.Response.from_app(_shared_app().wsgi_app, request.environ))
