"""The command line: `python main.py COMMAND`. Every command honours the same settings as the functions.

Local tooling, never deployed (the archive leaves `infra/` out); `click` is a
dev dependency here (functions-framework brings it too).

Locally, with nothing configured, commands start the embedded PostgreSQL, build
the demo Open WebUI database when needed, and run the pipeline through the four
functions under functions-framework on loopback (`--inline` runs it in-process).

Every command is registered through the group's `PreparedCommand` (`@cli.command()`), which prepares
its environment before the body runs (settings read and checked; the analytics
database started or joined and migrated, unless the command says
`needs_database=False`) and turns a user's error (configuration, dates, files) into
one line on stderr with exit status 2; `-v` adds the traceback.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any, NoReturn

import click
import requests

from functions.backfill_progress import clear_backfill, write_backfill
from functions.dates import MAX_DAYS
from infra import local_queues
from infra.demo_data import DEMO_DAYS, DEMO_USERS, build_demo_database
from infra.progress import RunProgress, watch_runs
from shared.config import QueueBackend, Settings, get_settings, reset_settings_cache
from shared.db import analytics_engine
from shared.estimators.pricing import describe_cost
from shared.logs import configure_logging
from shared.migrate import apply_migrations
from shared.pseudonym import pseudonymise
from shared.queue import TASK_SECRET_HEADER

__all__ = ["USER_ERROR_EXIT", "PreparedCommand", "UserError", "cli", "prepare_environment"]

_POLL_SECONDS = 0.5  # how often a waiting command reads the run ledger


def _emit(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, default=str, indent=2) if as_json else text)


def _ensure_demo_source(settings: Settings) -> None:
    """Locally with no Open WebUI database configured, build the labelled demo database once."""
    demo = settings.demo_source_path
    if settings.source_database_url or settings.is_production or demo.exists():
        return

    click.echo(f"building the demo Open WebUI database (synthetic data) at {demo} ...", err=True)
    build_demo_database(demo, zone=settings.zone)


def ensure_analytics_url(settings: Settings) -> Settings:
    """Locally with no analytics URL configured, start (or join) the embedded PostgreSQL and use it.

    The URL is set in this process's environment, so the settings, this process's
    engines and the function processes it starts all see the same database.
    """
    if settings.analytics_database_url or settings.is_production:
        return settings
    from infra.embedded_pg import EmbeddedPostgres

    server = EmbeddedPostgres(settings.local_state_dir / "pgdata").start()
    if server.started_here:
        atexit.register(server.stop)  # a one-shot command leaves no server behind
    os.environ["COGNIFORCE_DATABASE_URL"] = server.url()
    reset_settings_cache()
    return get_settings()


def _prepare(settings: Settings) -> dict[str, str]:
    """Databases ready and migrated; the environment the function processes need."""
    settings = ensure_analytics_url(settings)
    analytics_url = settings.analytics_database_url
    apply_migrations(analytics_engine(settings))
    _ensure_demo_source(settings)
    source_url = settings.source_database_url or f"sqlite:///{settings.demo_source_path}"
    return {"COGNIFORCE_DATABASE_URL": analytics_url, "OPENWEBUI_DATABASE_URL": source_url}


@contextmanager
def _pipeline_functions(settings: Settings, environment: dict[str, str]) -> Iterator[str | None]:
    """The dispatcher URL to call: a local stack started for the command, or the configured one."""
    if settings.queue_backend is not QueueBackend.LOCAL_HTTP or settings.dispatcher_url:
        yield settings.dispatcher_url or None
        return
    from infra.local_stack import LocalStack

    stack = LocalStack(
        environment, log_dir=settings.local_state_dir / "logs", functions=("dispatch", "analyze", "aggregate")
    )
    with stack:
        yield stack.urls["dispatch"]


def _dispatch_over_http(settings: Settings, url: str, day: date, force: bool) -> dict[str, Any]:
    response = requests.post(
        url,
        json={"date": day.isoformat(), "force": force},
        headers={TASK_SECRET_HEADER: settings.task_secret.get_secret_value()},
        timeout=settings.task_deadline_seconds,
    )
    if response.status_code != 200:
        raise click.ClickException(f"dispatcher answered {response.status_code}: {response.text[:500]}")
    return response.json()


def _dispatch_all_over_http(
    settings: Settings,
    url: str,
    days: list[date],
    force: bool,
    progress: RunProgress | None,
    on_dispatched: Callable[[list[uuid.UUID]], None] | None = None,
) -> list[uuid.UUID]:
    """Dispatch each date; the runs already open report their progress while the rest are dispatched.

    `on_dispatched` is called with the run ids so far after each date is dispatched.
    """
    from functions import runs

    run_ids: list[uuid.UUID] = []
    last_read = time.monotonic()
    for day in days:
        run_ids.append(uuid.UUID(str(_dispatch_over_http(settings, url, day, force)["run_id"])))
        if on_dispatched is not None:
            on_dispatched(run_ids)
        if progress is not None and time.monotonic() - last_read >= _POLL_SECONDS:
            with analytics_engine(settings).connect() as connection:
                progress.update(runs.get_runs(connection, run_ids))
            last_read = time.monotonic()
    return run_ids


def _progress(total_runs: int, as_json: bool, indent: str = "") -> RunProgress | None:
    """Progress on stderr and each run's line on stdout as it finishes; none for `--json`."""
    if as_json:
        return None
    return RunProgress(
        total_runs, lambda run: indent + _describe_run(asdict(run)), out=sys.stdout, status=sys.stderr
    )


def _inline_runs(
    settings: Settings,
    days: list[date],
    *,
    force: bool,
    trigger: str,
    timeout: float,
    progress: RunProgress | None,
) -> list[Any]:
    """Dispatch each date in-process (the analyses run inside the dispatch) and watch the ledger meanwhile."""
    from functions import dispatcher, runs

    queue = local_queues.inline_queue(settings)
    engine = analytics_engine(settings)
    run_ids: list[uuid.UUID] = []
    current: list[date] = []  # the date being dispatched, if any
    failure: list[BaseException] = []

    def work() -> None:
        try:
            for day in days:
                current[:] = [day]
                result = dispatcher.dispatch(
                    target_date=day, force=force, trigger=trigger, settings=settings, queue=queue
                )
                run_ids.append(result.run_id)
            current.clear()
        except BaseException as exc:  # re-raised in the command's thread
            failure.append(exc)

    worker = threading.Thread(target=work, name="inline-dispatch", daemon=True)
    worker.start()
    while worker.is_alive():
        if progress is not None:
            with engine.connect() as connection:
                found = runs.get_runs(connection, list(run_ids))
                open_now = runs.open_run_for_date(connection, current[0]) if current else None
            if open_now is not None and open_now.id not in {run.id for run in found}:
                found.append(open_now)
            progress.update(found)
        worker.join(_POLL_SECONDS)
    if failure:
        if progress is not None:
            progress.close()
        raise failure[0]
    return watch_runs(engine, run_ids, progress, timeout=timeout, poll_seconds=_POLL_SECONDS)


def _describe(row: dict[str, Any]) -> str:
    """A finished run's line, or a dispatched run's when the cloud is doing the work."""
    if "id" not in row:
        return f"{row['run_date']}  run {row['run_id']}  dispatched: {row['expected']} tasks enqueued on Cloud Tasks"
    return _describe_run(row)


def _describe_run(row: dict[str, Any]) -> str:
    return (
        f"{row['run_date']}  run {row['id']}  {row['status']}: {row['conversations_expected']} planned, "
        f"{row['conversations_processed']} analysed ({row['estimates_reused']} reused), "
        f"{row['conversations_skipped']} skipped, {row['conversations_failed']} failed, "
        f"{row['conversations_deferred']} deferred, {row['late_arrivals']} late arrivals; "
        f"{row['total_llm_requests']} LLM requests, "
        + describe_cost(row["total_llm_cost_usd"], row["total_llm_unpriced_tokens"])
        + (f"  ({row['error_message']})" if row.get("error_message") else "")
    )


def _run_dates(
    days: list[date], *, force: bool, inline: bool, timeout: float, progress: RunProgress | None
) -> list[dict[str, Any]]:
    """Dispatch each date and wait for its run, reporting progress; with Cloud Tasks, dispatch and return at once."""
    from functions import dispatcher

    settings = ensure_analytics_url(get_settings())
    environment = _prepare(settings)
    trigger = "backfill" if len(days) > 1 else "cli"
    if inline:
        found = _inline_runs(settings, days, force=force, trigger=trigger, timeout=timeout, progress=progress)
        return [asdict(run) for run in found]
    with _pipeline_functions(settings, environment) as url:
        if url is None:  # Cloud Tasks from an operator's machine: the cloud does the rest
            return [
                asdict(dispatcher.dispatch(target_date=day, force=force, trigger=trigger, settings=settings))
                for day in days
            ]
        run_ids = _dispatch_all_over_http(settings, url, days, force, progress)
        found = watch_runs(analytics_engine(settings), run_ids, progress, timeout=timeout)
        return [asdict(run) for run in found]


def _report_runs(rows: list[dict[str, Any]], as_json: bool, progress: RunProgress | None) -> None:
    """The runs' lines (those progress has not printed as they finished), or the JSON of all.

    Exits 1 when a run this command waited for did not complete (failed, stale, or still open
    at the timeout), so a script or cron job can tell; runs handed to Cloud Tasks are not waited for.
    """
    if as_json or progress is None:
        _emit(as_json, rows, "\n".join(_describe(r) for r in rows))
    else:
        for row in rows:
            if row.get("id") not in progress.reported:
                click.echo(_describe(row))
    unfinished = [row for row in rows if "id" in row and str(row.get("status")) != "completed"]
    if unfinished:
        click.echo(f"{len(unfinished)} of {len(rows)} run(s) did not complete", err=True)
        sys.exit(1)


USER_ERROR_EXIT = 2
"""Exit status of a user's error (as click's own usage errors): bad settings, dates or files."""


class UserError(click.ClickException):
    """A user's error, shown as one line (`Error: ...`) with exit status 2."""

    exit_code = USER_ERROR_EXIT


def _settings_problem(exc: Exception) -> str:
    """A settings validation error as one line naming the environment variables at fault."""
    problems = []
    for item in exc.errors(include_url=False):  # type: ignore[attr-defined]
        field = Settings.model_fields.get(str(item["loc"][0])) if item["loc"] else None
        aliases = getattr(field.validation_alias, "choices", None) if field else None
        name = " / ".join(map(str, aliases)) if aliases else ".".join(map(str, item["loc"])) or "settings"
        problems.append(f"{name}: {item['msg']}")
    return "invalid configuration: " + "; ".join(problems)


def _user_error(exc: BaseException) -> str | None:
    """The one-line message of a user's error, or None for anything else (a bug: traceback)."""
    import sqlalchemy.exc
    from pydantic import ValidationError

    from shared.errors import ConfigurationError, RequestRejected

    if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
        return _settings_problem(exc)
    if isinstance(exc, ConfigurationError | RequestRejected):
        return str(exc)
    if isinstance(exc, OSError):  # a file that cannot be read or written
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return f"cannot use the database (check its URL and that it is reachable): {exc.orig}"
    return None


@contextmanager
def _user_errors(verbose: bool) -> Iterator[None]:
    """A user's error ends the command with one line and exit status 2; `verbose` prints the traceback first."""
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        if verbose:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        raise UserError(message) from exc


def prepare_environment(*, needs_database: bool = True, migrate_first: bool = True) -> Settings:
    """What every command runs first: settings read and checked, the analytics database ready.

    Locally with no `COGNIFORCE_DATABASE_URL`, the embedded PostgreSQL is started (or a
    running one, e.g. `serve`'s, joined) and, unless `migrate_first` is False, migrated;
    a configured database is used as it is.
    """
    settings = get_settings()  # reading them validates them (production: every secret)
    if needs_database:
        local = not (settings.analytics_database_url or settings.is_production)
        settings = ensure_analytics_url(settings)
        if local and migrate_first:
            apply_migrations(analytics_engine(settings))
    return settings


class PreparedCommand(click.Command):
    """A command whose environment is prepared before its body runs (see `prepare_environment`).

    `@cli.command(needs_database=False)` for a command that reads no database;
    `migrate_first=False` for one that reports on the migrations itself.
    """

    def __init__(
        self, *args: Any, needs_database: bool = True, migrate_first: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.needs_database = needs_database
        self.migrate_first = migrate_first

    def invoke(self, ctx: click.Context) -> Any:
        with _user_errors(_verbose(ctx)):
            prepare_environment(needs_database=self.needs_database, migrate_first=self.migrate_first)
            return super().invoke(ctx)


class _Commands(click.Group):
    """The command group: every `@cli.command()` is a `PreparedCommand`."""

    command_class = PreparedCommand

    def invoke(self, ctx: click.Context) -> Any:
        with _user_errors(bool(ctx.params.get("verbose"))):
            return super().invoke(ctx)


def _verbose(ctx: click.Context) -> bool:
    return bool(ctx.find_root().params.get("verbose"))


@click.group(cls=_Commands)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level; a user's error shows its traceback.")
def cli(verbose: bool) -> None:
    """Time Savings Analytics: how much working time Open WebUI saves your people."""
    local_queues.register()
    configure_logging(get_settings().log_format, logging.DEBUG if verbose else logging.WARNING)


@cli.command(migrate_first=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def migrate(as_json: bool) -> None:
    """Apply pending analytics schema migrations (safe to run concurrently and repeatedly)."""
    applied = apply_migrations(analytics_engine(ensure_analytics_url(get_settings())))
    names = [f"{m.version:03d}_{m.name}" for m in applied]
    _emit(
        as_json,
        {"applied": names},
        "applied: " + ", ".join(names) if names else "schema is up to date; nothing to apply",
    )


_DATE = click.DateTime(["%Y-%m-%d"])


@contextmanager
def _as_usage_error() -> Iterator[None]:
    """The API's parameter rules, reported against this command's options (`end_date` → `--end-date`)."""
    from shared.errors import InvalidParameter

    try:
        yield
    except InvalidParameter as exc:
        option = "--" + exc.parameter.replace("_", "-")
        raise click.BadParameter(str(exc.problem), param_hint=f"'{option}'") from exc


@cli.command()
@click.option("--date", "day", type=_DATE, help="Local date to process (default: yesterday).")
@click.option("--force", is_flag=True, help="Re-estimate conversations even when unchanged.")
@click.option("--inline", is_flag=True, help="Run in this process instead of through the functions.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait for the run.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def run(day: datetime | None, force: bool, inline: bool, timeout: float, as_json: bool) -> None:
    """Process one day, as the nightly schedule does."""
    from functions.dates import checked_day, local_today
    from functions.dispatcher import yesterday

    settings = get_settings()
    target = day.date() if day else yesterday(settings)
    with _as_usage_error():
        checked_day(target, local_today(settings.zone))
    progress = _progress(1, as_json)
    rows = _run_dates([target], force=force, inline=inline, timeout=timeout, progress=progress)
    _report_runs(rows, as_json, progress)


@cli.command()
@click.option("--start-date", type=_DATE, required=True)
@click.option("--end-date", type=_DATE, required=True)
@click.option("--force", is_flag=True, help="Re-estimate conversations even when unchanged.")
@click.option("--inline", is_flag=True, help="Run in this process instead of through the functions.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait for the runs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def backfill(
    start_date: datetime, end_date: datetime, force: bool, inline: bool, timeout: float, as_json: bool
) -> None:
    """Process every date of a range, oldest first (the API's rules: at most a year, not in the future)."""
    from functions.dates import checked_range, local_today

    with _as_usage_error():
        first, last = checked_range(
            start_date.date(), end_date.date(), "a backfill", today=local_today(get_settings().zone)
        )
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    progress = _progress(len(days), as_json)
    rows = _run_dates(days, force=force, inline=inline, timeout=timeout, progress=progress)
    _report_runs(rows, as_json, progress)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def health(as_json: bool) -> None:
    """Last run, stale runs (reported; the pipeline closes them), next scheduled run, the settings that matter."""
    from functions.read.health import health_report

    settings = ensure_analytics_url(get_settings())
    report = health_report(analytics_engine(settings), settings, datetime.now(settings.zone))
    data = report.model_dump(mode="json")
    last = report.last_run
    lines = [
        f"status: {report.status}" + (f" ({'; '.join(report.problems)})" if report.problems else ""),
        f"last run: {last.run_date} {last.status}, {last.conversations_processed} analysed, "
        f"{last.conversations_skipped} skipped, {last.conversations_failed} failed, "
        f"{last.late_arrivals} late arrivals; {last.total_llm_requests} LLM requests, "
        + describe_cost(last.total_llm_cost_usd, last.total_llm_unpriced_tokens)
        if last
        else "last run: none yet",
        *([f"flagged estimates: {last.flag_note}"] if last and last.flag_note else []),
        f"stale runs (the next dispatch closes them): {len(report.stale_runs)}",
        f"next run: {report.next_run.scheduled_at} ({report.next_run.source})",
        f"zone {settings.timezone}, idle threshold {settings.idle_threshold_minutes} min, "
        f"estimator {report.system_info.estimator} ({report.system_info.prompt_version})",
    ]
    _emit(as_json, data, "\n".join(lines))
    if report.status != "healthy":
        sys.exit(1)


@cli.command()
@click.option(
    "--days",
    default=7,
    show_default=True,
    type=click.IntRange(1, MAX_DAYS),
    help="Local days ending yesterday.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats(days: int, as_json: bool) -> None:
    """Time saved over the last days, from the daily aggregates."""
    from functions.dispatcher import yesterday
    from functions.read import queries
    from functions.read.schemas import DateRange
    from functions.read.side import read_side
    from shared.roles import Role

    settings = ensure_analytics_url(get_settings())
    date_range = DateRange.ending(yesterday(settings), days)
    engine = analytics_engine(settings)
    read = read_side(Role.ADMIN, settings, engine)  # the command line acts as an admin
    with engine.connect() as connection:
        answer = read.summary(connection, queries.Scope(), date_range)
    totals, trend = answer.current, answer.trend
    data = {
        "range": date_range.model_dump(mode="json"),
        "totals": totals.model_dump(mode="json"),
        "daily": [point.model_dump(mode="json") for point in trend],
    }
    hours = [
        round((v or 0) / 60, 1)
        for v in (totals.total_time_saved_low, totals.total_time_saved, totals.total_time_saved_high)
    ]
    lines = [
        f"{date_range.start_date} … {date_range.end_date} ({days} days, {settings.timezone}), estimator: {totals.estimator}",
        f"conversations {totals.conversation_count}, hours saved {hours[1]} (band {hours[0]}–{hours[2]}), "
        f"active hours {round((totals.total_active_time or 0) / 60, 1)}, mean confidence {totals.avg_confidence_level}",
        *(
            [
                f"estimating cost: {describe_cost(totals.analysis_cost_usd, totals.analysis_unpriced_tokens or 0)}"
            ]
            if settings.money_shown
            else []
        ),
    ]
    _emit(as_json, data, "\n".join(lines))


@cli.command()
def publish() -> None:
    """Publish the viewer's releases that are due (closed weeks and months; the aggregator does it after each run)."""
    from functions.read.releases import out_of_budget, publish_due

    settings = ensure_analytics_url(get_settings())
    now = datetime.now(settings.zone)
    with analytics_engine(settings).begin() as connection:
        counts = publish_due(connection, settings, now)
        short = out_of_budget(connection, since=now)
    click.echo(f"releases: {counts['published']} published, {counts['refused']} refused by the auditor")
    if short:
        click.echo(
            f"the auditor's budget ran out in {', '.join(short)}: cells it could not prove are withheld",
            err=True,
        )
    if counts["refused"] or short:
        sys.exit(1)


@cli.command()
@click.option("--month", help="Calendar month, YYYY-MM (default: the last full month).")
@click.option("--start-date", type=_DATE, help="First date of a custom range (with --end-date).")
@click.option("--end-date", type=_DATE, help="Last date of a custom range.")
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, writable=True), required=True, help="HTML file to write."
)
def report(month: str | None, start_date: datetime | None, end_date: datetime | None, out: str) -> None:
    """Write the print-ready report of a month or range to a self-contained HTML file."""
    from pathlib import Path

    from pydantic import ValidationError

    from functions.api.report import ReportQuery, write_report
    from shared.errors import InvalidParameter

    settings = get_settings()
    with _as_usage_error():
        try:
            query = ReportQuery(
                month=month,
                start_date=start_date.date() if start_date else None,
                end_date=end_date.date() if end_date else None,
            )
        except ValidationError as exc:
            raise InvalidParameter.from_validation(exc) from exc
        covered = write_report(analytics_engine(settings), settings, Path(out), query)
    click.echo(f"report for {covered.start_date} … {covered.end_date} written to {out}")


@cli.command()
@click.option("--from", "since", type=_DATE, required=True, help="First local date to re-price.")
def reprice(since: datetime) -> None:
    """Apply the current hourly rates and model prices to every date from --from on, on purpose."""
    from functions.value import reprice_history

    settings = get_settings()
    dates = reprice_history(analytics_engine(settings), settings, since.date())
    click.echo(f"re-priced {len(dates)} dates from {since.date()}")


@cli.command()
@click.option("--from", "since", type=_DATE, required=True, help="First local date to recalibrate.")
def recalibrate(since: datetime) -> None:
    """Apply the latest calibration version (also a pending one) to every date from --from on, on purpose."""
    from functions.calibrated import latest_version, pending_change, recalibrate_history

    settings = get_settings()
    engine = analytics_engine(settings)
    with engine.connect() as connection:
        latest = latest_version(connection)
        pending = pending_change(connection, settings)
    if latest is None:
        raise click.ClickException(
            "no calibration yet: one is computed when a run is aggregated with ANALYTICS_CALIBRATION "
            "set to show or apply and confirmations are stored"
        )
    dates = recalibrate_history(engine, since.date())
    if pending is not None:
        click.echo(f"applied the pending calibration version {pending.version}: {pending.moved}")
    click.echo(f"recalibrated {len(dates)} dates from {since.date()} with calibration version {latest}")


@cli.command("hash-user", needs_database=False)
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def hash_user(user_id: str, as_json: bool) -> None:
    """Print the pseudonym of an Open WebUI user id (to find a person's rows)."""
    pseudonym = pseudonymise(user_id, get_settings().hmac_key.get_secret_value())
    _emit(as_json, {"user_id_hash": pseudonym}, pseudonym)


@cli.command("demo-data", needs_database=False)
@click.option("--days", default=DEMO_DAYS, show_default=True, help="Days of synthetic history.")
@click.option("--users", default=DEMO_USERS, show_default=True, help="Synthetic users.")
def demo_data(days: int, users: int) -> None:
    """(Re)build the demo Open WebUI database: synthetic, clearly labelled conversations."""

    settings = get_settings()
    summary = build_demo_database(settings.demo_source_path, zone=settings.zone, days=days, users=users)
    click.echo(f"demo database {settings.demo_source_path}: {summary}")


@cli.command()
@click.option("--port", default=8080, show_default=True, help="Port of the dashboard and API.")
@click.option(
    "--days",
    type=click.IntRange(1, DEMO_DAYS),
    help=f"Days to process before serving (default: the demo's {DEMO_DAYS}, or 30 with your own Open WebUI).",
)
def serve(port: int, days: int | None) -> None:
    """The whole product locally: databases, the four functions, a backfill, then the dashboard."""
    from functions.dispatcher import yesterday
    from infra.local_schedule import LocalSchedule
    from infra.local_stack import LocalStack, check_listen_address, free_port

    for stop_signal in (signal.SIGTERM, signal.SIGINT):  # stop the functions and Postgres, then exit 0
        signal.signal(stop_signal, _stop_serving)
    settings = ensure_analytics_url(get_settings())
    check_listen_address(settings.serve_host, settings)
    environment = _prepare(settings)
    days = days or (30 if settings.source_database_url else DEMO_DAYS)
    dashboard_port = port if _port_is_free(port) else free_port()
    stack = LocalStack(
        environment,
        log_dir=settings.local_state_dir / "logs",
        ports={"api": dashboard_port},
        api_host=settings.serve_host,
    )
    click.echo("starting dispatch, analyze, aggregate and api under functions-framework ...")
    with stack:
        last = yesterday(settings)
        dates = [last - timedelta(days=back) for back in range(days - 1, -1, -1)]
        backfill = _ServeBackfill(settings, stack.urls["dispatch"], dates)
        password = settings.dashboard_password.get_secret_value()
        click.echo(f"dashboard:  {stack.urls['api']}")
        click.echo(
            f"analytics:  {environment['COGNIFORCE_DATABASE_URL']}  (psql: host=<unix_sock folder>, user postgres)"
        )
        click.echo(f"source:     {environment['OPENWEBUI_DATABASE_URL']}")
        click.echo(f"password:   {password}   (ANALYTICS_DASHBOARD_PASSWORD; local default)")
        click.echo(
            f"API:        curl -H 'Authorization: Bearer {password}' {stack.urls['api']}api/v1/analytics/summary"
        )
        click.echo(f"logs:       {settings.local_state_dir / 'logs'}")
        schedule = LocalSchedule.for_settings(settings, stack.urls["dispatch"]).start()
        click.echo(
            f"schedule:   {settings.schedule} in {settings.timezone}, "
            f"next run {schedule.next_run():%Y-%m-%d %H:%M %Z} (run by this process)"
        )
        click.echo(
            f"processing the last {days} days through the pipeline ({settings.effective_estimator} estimator) "
            "in the background; the dashboard shows the progress and fills in as dates complete"
        )
        click.echo("press Ctrl-C to stop")
        backfill.start()
        reported: set[uuid.UUID] = set()
        try:
            while True:
                backfill.join(60)
                if backfill.is_alive():
                    continue  # its own lines report the backfill's runs
                reported.update(backfill.run_ids)
                _sweep_stale_runs(settings)
                _report_finished_runs(settings, reported)
        finally:
            schedule.stop()
            clear_backfill(settings)


class _ServeBackfill(threading.Thread):
    """`serve`'s first backfill, behind the dashboard: dispatch every date, watch the runs, report.

    What it dispatched is recorded for the dashboard (`functions.backfill_progress`).
    """

    def __init__(self, settings: Settings, dispatch_url: str, dates: list[date]) -> None:
        super().__init__(name="serve-backfill", daemon=True)
        self.settings, self.url, self.dates = settings, dispatch_url, dates
        self.run_ids: list[uuid.UUID] = []
        self.started_at = datetime.now(settings.zone)
        write_backfill(settings, len(dates), self.started_at, self.run_ids)

    def run(self) -> None:
        progress = _progress(len(self.dates), False, "  ")
        try:
            self.run_ids = _dispatch_all_over_http(
                self.settings, self.url, self.dates, False, progress, on_dispatched=self._record
            )
            watch_runs(analytics_engine(self.settings), self.run_ids, progress, timeout=3600)
            click.echo(f"processed {len(self.dates)} days: the dashboard shows them all")
        except Exception as exc:  # the dashboard keeps serving what is there; the reason is said
            logging.getLogger(__name__).debug("serve backfill failed", exc_info=True)
            click.echo(f"processing stopped: {exc}", err=True)
        finally:
            clear_backfill(self.settings)

    def _record(self, run_ids: list[uuid.UUID]) -> None:
        self.run_ids = list(run_ids)
        write_backfill(self.settings, len(self.dates), self.started_at, self.run_ids)


def _report_finished_runs(settings: Settings, reported: set[uuid.UUID]) -> None:
    """`serve`: one line for each run that finished since (the nightly ones, a trigger from the API)."""
    from functions import runs

    with analytics_engine(settings).connect() as connection:
        latest = runs.recent_runs(connection, limit=10)
    for run in reversed(latest):
        if run.is_final and run.id not in reported:
            reported.add(run.id)
            click.echo(f"{datetime.now(settings.zone):%Y-%m-%d %H:%M}  " + _describe_run(asdict(run)))


def _sweep_stale_runs(settings: Settings) -> None:
    """Locally, `serve` closes runs that went quiet (in the cloud the nightly dispatch does)."""
    from functions import runs

    with analytics_engine(settings).begin() as connection:
        closed = runs.close_stale_runs(connection, settings)
    for run_id in closed:
        click.echo(f"closed stale run {run_id}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def calibration(as_json: bool) -> None:
    """How well the estimates agree with the minutes people confirmed in Open WebUI."""
    from functions.calibrated import pending_change
    from functions.calibration import confirmation_report, render_text

    settings = get_settings()
    with analytics_engine(settings).connect() as connection:
        report = confirmation_report(connection, minimum=settings.calibration_min_confirmations)
        pending = pending_change(connection, settings)
    text = render_text(report) + (f"\n{pending}" if pending is not None else "")
    _emit(as_json, report.model_dump(mode="json"), text)


_MAX_INPUT_CHARACTERS = 20_000_000  # a --labels or --tasks file


@cli.command()
@click.option(
    "--labels",
    "labels_file",
    type=click.File("r", encoding="utf-8-sig"),
    help="CSV of `conversation id, minutes` (a header row is allowed).",
)
@click.option(
    "--tasks",
    "tasks_file",
    type=click.File("r", encoding="utf-8-sig"),
    help="JSON Lines of labelled tasks: task_text, answer_text, human_minutes_low, human_minutes_high.",
)
@click.option(
    "--any-estimator", is_flag=True, help="Compare analyses of every estimator, not only the configured one."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate(labels_file: Any, tasks_file: Any, any_estimator: bool, as_json: bool) -> None:
    """The calibration figures against your own minutes (--labels) or a labelled task set (--tasks); stores nothing."""
    from functions.calibration import LabelsRejected, evaluate_labels, read_labels, render_text

    if (labels_file is None) == (tasks_file is None):
        raise click.UsageError("give exactly one of --labels FILE.csv and --tasks FILE.jsonl")
    if tasks_file is not None:
        _evaluate_tasks(tasks_file, as_json)
        return
    settings = get_settings()
    text = labels_file.read(_MAX_INPUT_CHARACTERS + 1)
    if len(text) > _MAX_INPUT_CHARACTERS:
        raise click.BadParameter(f"larger than {_MAX_INPUT_CHARACTERS:,} characters", param_hint="--labels")
    try:
        labels = read_labels(text)
    except LabelsRejected as exc:
        raise click.BadParameter(str(exc), param_hint="--labels") from exc
    estimator = None if any_estimator else settings.effective_estimator.value
    with analytics_engine(settings).connect() as connection:
        report = evaluate_labels(
            connection, labels, minimum=settings.calibration_min_confirmations, estimator=estimator
        )
    _emit(as_json, report.model_dump(mode="json"), render_text(report, what="labelled conversations"))


def _evaluate_tasks(tasks_file: Any, as_json: bool) -> None:
    """`evaluate --tasks`: the configured estimator on each task; a bad file is one line and exit 2."""
    from infra import evaluate_tasks
    from shared.estimators import build_estimator

    name = getattr(tasks_file, "name", "--tasks")
    try:
        text = tasks_file.read(_MAX_INPUT_CHARACTERS + 1)
    except UnicodeDecodeError as exc:
        _reject(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    if len(text) > _MAX_INPUT_CHARACTERS:
        _reject(f"{name}: larger than {_MAX_INPUT_CHARACTERS:,} characters")
    try:
        tasks = evaluate_tasks.read_tasks(text)
    except evaluate_tasks.TasksRejected as exc:
        _reject(f"{name}: {exc}")
    from shared.errors import ConfigurationError

    settings = get_settings()
    try:
        estimator = build_estimator(settings)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    result = evaluate_tasks.evaluate_tasks(
        tasks, estimator, lambda task: evaluate_tasks.task_digest(task, settings)
    )
    _emit(as_json, result.as_json(), evaluate_tasks.render_text(result))
    if result.figures.count == 0:
        click.echo(f"no task could be estimated ({len(result.failed)} failed)", err=True)
        sys.exit(1)


def _reject(message: str) -> NoReturn:
    """A bad input file: one line on stderr, exit status 2 (a usage error), no traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _stop_serving(signum: int, frame: object) -> None:
    """Ctrl-C or `kill`: a normal stop (exit 0); the `with` blocks stop what was started."""
    click.echo("stopping ...", err=True)
    raise SystemExit(0)


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0
