"""Commit one conversation's outcome on a run, and start the aggregator when it was the last one."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from sqlalchemy.engine import Connection, Engine

from functions import runs
from shared.queue import TaskQueue

__all__ = ["commit_outcome", "request_aggregation"]

_log = logging.getLogger(__name__)


class _AlreadyCounted(Exception):
    """A concurrent delivery counted this conversation first: roll our writes back."""


def request_aggregation(queue: TaskQueue, run_id: uuid.UUID) -> None:
    """Enqueue the run's aggregator task (named, so a repeat is a no-op)."""
    queue.enqueue("aggregate", {"run_id": str(run_id)}, name=f"aggregate-{run_id.hex}")


def commit_outcome(
    engine: Engine,
    queue: TaskQueue,
    run_id: uuid.UUID,
    record: runs.OutcomeRecord,
    *,
    write: Callable[[Connection], None] | None = None,
) -> bool:
    """Write the analysis (if any) and count the outcome in one transaction.

    Returns False, with nothing written, when the outcome was already counted.
    """
    try:
        with engine.begin() as connection:
            if write is not None:
                write(connection)
            counted, finished = runs.record_outcome(connection, run_id, record)
            if not counted:
                raise _AlreadyCounted
    except _AlreadyCounted:
        _log.info("run %s: conversation %s already counted", run_id, record.conversation_id)
        return False
    if finished:
        request_aggregation(queue, run_id)
    return True
