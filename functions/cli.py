"""The command line: `python main.py COMMAND`. Every command honours the same settings as the functions."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from shared.config import get_settings
from shared.db import analytics_engine, resolve_analytics_url
from shared.migrate import apply_migrations

__all__ = ["cli"]


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, default=str, indent=2) if as_json else text)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """Time Savings Analytics: how much working time Open WebUI saves your people."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def migrate(as_json: bool) -> None:
    """Apply pending analytics schema migrations (safe to run concurrently and repeatedly)."""
    applied = apply_migrations(analytics_engine(get_settings()))
    names = [f"{m.version:03d}_{m.name}" for m in applied]
    _emit(
        as_json,
        {"applied": names},
        "applied: " + ", ".join(names) if names else "schema is up to date; nothing to apply",
    )


@cli.command()
def serve() -> None:
    """Start the local stack (embedded PostgreSQL, migrations) and keep it running."""
    settings = get_settings()
    url = resolve_analytics_url(settings)
    applied = apply_migrations(analytics_engine(settings))
    click.echo(f"analytics PostgreSQL: {url}")
    click.echo(f"migrations applied now: {len(applied)}")
