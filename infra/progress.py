"""Progress of pipeline runs while they are open, read from the run ledger (`functions.runs`).

`RunProgress` is fed the ledger's view of the runs a command waits for and prints:

* one line per run as it becomes final (`describe(run)`), on `out`;
* a status line on `status`: runs finished of total, conversations analysed /
  skipped / failed of those planned so far. On a terminal it is one line rewritten
  in place (carriage return, erase to end of line) with an ETA from the rate
  conversations finish at; elsewhere (a log file, a pipe, systemd's journal) a plain
  line at most every `interval_seconds`, and a last one when everything is final.

`watch_runs` polls the ledger until every run is final (or a deadline passes).
Local tooling, never deployed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # the CLI imports this module on every command; the ledger only when it waits
    from sqlalchemy.engine import Engine

    from functions import runs

__all__ = ["PLAIN_INTERVAL_SECONDS", "RunProgress", "watch_runs"]

PLAIN_INTERVAL_SECONDS = 30.0  # not on a terminal: at most one status line this often
_ERASE_LINE = "\r\x1b[K"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class RunProgress:
    """Prints runs as they finish and a status line; see the module docstring."""

    def __init__(
        self,
        total_runs: int,
        describe: Callable[[runs.Run], str],
        *,
        out: TextIO,
        status: TextIO,
        interval_seconds: float = PLAIN_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total_runs = total_runs
        self._describe = describe
        self._out = out
        self._status = status
        self._tty = bool(getattr(status, "isatty", lambda: False)())
        self._interval = interval_seconds
        self._clock = clock
        self._started = clock()
        self._first_finished: int | None = None  # conversations already finished when we started
        self._reported: set[uuid.UUID] = set()
        self._last_plain: float | None = None
        self._line_shown = False
        self._last_text = ""

    @property
    def reported(self) -> frozenset[uuid.UUID]:
        """The runs whose line was printed as they finished."""
        return frozenset(self._reported)

    def update(self, found: Sequence[runs.Run]) -> None:
        """Report what the ledger says now about the runs (those known so far)."""
        newly_final = [run for run in found if run.is_final and run.id not in self._reported]
        if newly_final and self._line_shown:
            self._status.write(_ERASE_LINE)
            self._status.flush()
            self._line_shown = False
        for run in newly_final:
            self._reported.add(run.id)
            self._out.write(self._describe(run) + "\n")
        if newly_final:
            self._out.flush()
        all_final = len(self._reported) >= self.total_runs
        text = self._text(found, with_eta=self._tty and not all_final)
        if self._tty:
            if not all_final:
                self._status.write(_ERASE_LINE + text)
                self._status.flush()
                self._line_shown = True
            return
        now = self._clock()
        due = self._last_plain is None or now - self._last_plain >= self._interval
        if (due and text != self._last_text) or (all_final and text != self._last_text):
            self._status.write(text + "\n")
            self._status.flush()
            self._last_plain, self._last_text = now, text

    def close(self) -> None:
        """Leave the terminal on a clean line."""
        if self._line_shown:
            self._status.write(_ERASE_LINE)
            self._status.flush()
            self._line_shown = False

    def _text(self, found: Sequence[runs.Run], *, with_eta: bool) -> str:
        planned = sum(run.conversations_expected for run in found)
        analysed = sum(run.conversations_processed for run in found)
        skipped = sum(run.conversations_skipped for run in found)
        failed = sum(run.conversations_failed for run in found)
        finished = analysed + skipped + failed
        text = (
            f"progress: {sum(run.is_final for run in found)}/{self.total_runs} runs finished; "
            f"conversations {analysed} analysed, {skipped} skipped, {failed} failed of {planned} planned"
        )
        if with_eta:
            text += f"; ETA {self._eta(finished, planned, len(found))}"
        return text

    def _eta(self, finished: int, planned: int, known: int) -> str:
        if self._first_finished is None:
            self._first_finished = finished
        done_here = finished - self._first_finished
        elapsed = self._clock() - self._started
        if done_here <= 0 or elapsed <= 0:
            return "--"
        if (
            0 < known < self.total_runs
        ):  # an inline backfill: the dates not dispatched yet, at the known runs' mean
            planned += round(planned * (self.total_runs - known) / known)
        return _duration((planned - finished) * elapsed / done_here)


def watch_runs(
    engine: Engine,
    run_ids: Sequence[uuid.UUID],
    progress: RunProgress | None,
    *,
    timeout: float,
    poll_seconds: float = 0.5,
) -> list[runs.Run]:
    """Poll the ledger until every run of `run_ids` is final or `timeout` seconds pass."""
    from functions import runs

    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                found = runs.get_runs(connection, run_ids)
            if progress is not None:
                progress.update(found)
            if all(run.is_final for run in found) or time.monotonic() > deadline:
                return found
            time.sleep(poll_seconds)
    finally:
        if progress is not None:
            progress.close()
