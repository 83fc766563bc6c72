"""The success signal: which conversations did not help, so that they save nothing.

A conversation is *unsuccessful* when

* the latest rating given in Open WebUI to any answer on its kept branch is a thumbs
  down (a down rating later followed by an up rating of a kept answer is a success
  again; ratings of answers the user did not keep do not count), or
* its owner said "AI did not help" through the time-savings Action.

`rated_down` is decided when the conversation is analysed (Open WebUI's `feedback`
table is read then); `confirmed_no_help` is also kept in step by the feedback endpoint,
which rebuilds the aggregates of the conversation's date when it changes. The metrics
`total_time_saved_successful` and `unsuccessful_count` (`functions/metrics.py`) read both.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from functions.aggregates import recompute_dates
from shared.openwebui.reader import Rating

__all__ = ["confirmed_no_help", "rated_down", "sync_confirmed_no_help"]


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


def confirmed_no_help(connection: Connection, conversation_id: str) -> bool:
    """Someone said "AI did not help" for this conversation (their latest answer)."""
    return bool(connection.execute(_NO_HELP, {"c": conversation_id}).scalar_one())


def sync_confirmed_no_help(connection: Connection, conversation_id: str) -> bool:
    """Bring the analysis's `confirmed_no_help` in step; rebuild its date's aggregates if it changed."""
    changed = connection.execute(
        sa.text(
            "UPDATE conversation_analysis SET confirmed_no_help = :v "
            "WHERE conversation_id = :c AND status = 'analyzed' AND confirmed_no_help <> :v "
            "RETURNING analysis_date"
        ),
        {"c": conversation_id, "v": confirmed_no_help(connection, conversation_id)},
    ).scalar_one_or_none()
    if changed is not None:
        recompute_dates(connection, [changed])
    return changed is not None
