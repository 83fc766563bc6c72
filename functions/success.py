"""The success signal: which conversations did not help, so that they save nothing.

A conversation is *unsuccessful* when

* the latest rating given in Open WebUI to any answer on its kept branch is a thumbs
  down (a down rating later followed by an up rating of a kept answer is a success
  again; ratings of answers the user did not keep do not count), or
* its owner said "AI did not help" through the time-savings Action.

`rated_down` is decided when the conversation is analysed (Open WebUI's `feedback`
table is read then); `confirmed_no_help` (and `confirmed_new_work`, "I would not have done
this without AI") are set then too, and kept in step by the aggregator at every run
(`sync_confirmations`), which rebuilds the dates whose flags changed. The feedback request
itself rebuilds nothing: an answer shows in the figures after the next run. The metrics
`total_time_saved_successful` and `unsuccessful_count` (`functions/metrics.py`) read the
success flags; the new-work metrics read `confirmed_new_work`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.openwebui.reader import Rating

__all__ = ["confirmed_new_work", "confirmed_no_help", "rated_down", "sync_confirmations"]


def rated_down(kept_answer_ids: Iterable[str], ratings: Iterable[Rating]) -> bool:
    """True when the latest thumbs rating of a kept answer is a thumbs down."""
    kept = set(kept_answer_ids)
    latest: Rating | None = None
    for rating in ratings:
        usable = rating.message_id in kept and rating.rating is not None
        if usable and (latest is None or rating.updated_at >= latest.updated_at):
            latest = rating
    return latest is not None and latest.rating == -1


_NO_HELP = sa.text(
    "SELECT EXISTS (SELECT 1 FROM time_confirmations WHERE conversation_id = :c AND did_not_help)"
)
_NEW_WORK = sa.text(
    "SELECT EXISTS (SELECT 1 FROM time_confirmations WHERE conversation_id = :c AND new_work)"
)


def confirmed_no_help(connection: Connection, conversation_id: str) -> bool:
    """Someone said "AI did not help" for this conversation (their latest answer)."""
    return bool(connection.execute(_NO_HELP, {"c": conversation_id}).scalar_one())


def confirmed_new_work(connection: Connection, conversation_id: str) -> bool:
    """Someone said "I would not have done this without AI" for this conversation (their latest answer)."""
    return bool(connection.execute(_NEW_WORK, {"c": conversation_id}).scalar_one())


_SYNC = sa.text(
    """
    WITH said AS (
        SELECT a.conversation_id,
               coalesce(bool_or(c.did_not_help), false) AS no_help,
               coalesce(bool_or(c.new_work), false) AS new_work
        FROM conversation_analysis a
        LEFT JOIN time_confirmations c ON c.conversation_id = a.conversation_id
        WHERE a.status = 'analyzed'
        GROUP BY a.conversation_id
    )
    UPDATE conversation_analysis a SET confirmed_no_help = said.no_help, confirmed_new_work = said.new_work
    FROM said
    WHERE a.conversation_id = said.conversation_id
      AND (a.confirmed_no_help <> said.no_help OR a.confirmed_new_work <> said.new_work)
    RETURNING a.analysis_date
    """
)


def sync_confirmations(connection: Connection) -> set[date]:
    """Bring every analysis's `confirmed_no_help` and `confirmed_new_work` in step with the stored
    answers; the dates whose aggregates must be rebuilt (the caller rebuilds them)."""
    return {day for day in connection.execute(_SYNC).scalars() if day is not None}
