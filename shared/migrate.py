"""Apply the numbered plain-SQL migrations in `migrations/`, once each, in order.

All pending migrations run in one transaction that first takes a transaction-scoped
advisory lock: concurrent runners (several function instances at cold start, an
operator's `migrate`) queue on the lock, and every runner after the first finds
nothing left to do. Applied files are recorded with a checksum in
`schema_migrations`; editing an applied file is an error, not a silent drift.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.config import REPO_ROOT
from shared.errors import ConfigurationError

__all__ = ["MIGRATIONS_DIR", "Migration", "apply_migrations", "discover_migrations"]

MIGRATIONS_DIR = REPO_ROOT / "migrations"
# Arbitrary but fixed: the advisory lock key that serialises migration runners.
_MIGRATION_LOCK_KEY = 7_291_042_118
_FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    checksum VARCHAR(64) NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files of `directory`, ordered by version; bad names are an error."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ConfigurationError(f"migration file {path.name} is not named NNN_lower_snake.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ConfigurationError(f"duplicate migration versions in {directory}")
    return migrations


def _applied_checksums(connection: Connection) -> dict[int, str]:
    rows = connection.execute(sa.text("SELECT version, checksum FROM schema_migrations"))
    return {version: checksum for version, checksum in rows}


def apply_migrations(engine: Engine, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply every pending migration; return the ones this call applied (often none)."""
    migrations = discover_migrations(directory)
    with engine.begin() as connection:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        connection.exec_driver_sql(_CREATE_LEDGER)
        applied = _applied_checksums(connection)
        for migration in migrations:
            recorded = applied.get(migration.version)
            if recorded is not None and recorded != migration.checksum:
                raise ConfigurationError(
                    f"migration {migration.version:03d}_{migration.name}.sql changed after it was "
                    "applied; add a new migration instead of editing an old one"
                )
        pending = [m for m in migrations if m.version not in applied]
        for migration in pending:
            connection.exec_driver_sql(migration.sql)
            connection.execute(
                sa.text("INSERT INTO schema_migrations (version, name, checksum) VALUES (:v, :n, :c)"),
                {"v": migration.version, "n": migration.name, "c": migration.checksum},
            )
    return pending
