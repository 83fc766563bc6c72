"""Cloud Functions entry points and the command line (`python main.py --help`).

Each entry point only hands the request to `functions/`; see docs/ARCHITECTURE.md.
The command line is local tooling (`infra/cli.py`, never deployed): it is imported
only when this file is run as a script. `click` comes with functions-framework and
is pinned for local use in requirements-dev.txt.
"""

from __future__ import annotations

import flask
import functions_framework

# Each entry point imports its own module on its first request, not at load: every
# function loads this file, and the api must not pay for the pipeline (nor the
# pipeline for the dashboard). See bench/bench_cold_start.py.


@functions_framework.http
def dispatch(request: flask.Request) -> flask.Response:
    """Cloud Scheduler → open tonight's run and enqueue one task per changed conversation."""
    from functions import pipeline

    return pipeline.dispatch_endpoint(request)


@functions_framework.http
def analyze(request: flask.Request) -> flask.Response:
    """Cloud Tasks → analyse one conversation."""
    from functions import pipeline

    return pipeline.analyze_endpoint(request)


@functions_framework.http
def aggregate(request: flask.Request) -> flask.Response:
    """Cloud Tasks → recompute the aggregates of a finished run."""
    from functions import pipeline

    return pipeline.aggregate_endpoint(request)


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    """Browsers and admins → the dashboard and the `/api/v1/analytics/...` endpoints."""
    from functions import api as admin_api

    return admin_api.handle(request)


if __name__ == "__main__":
    from infra.cli import cli

    cli()
