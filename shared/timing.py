"""How long someone actually worked on a conversation.

The timed messages are sorted (clock skew can put a user message a few seconds
after its own answer; a negative gap is not an error, sorting removes it). Each
gap between consecutive messages is *active* when it is at most the idle
threshold (a gap exactly equal to the threshold is active) and *idle* otherwise.

Rounding, the one rule: everything is summed in exact (microsecond) seconds, then
``total_minutes = round_half_up(total_seconds / 60)``,
``active_minutes = round_half_up(active_seconds / 60)`` and
``idle_minutes = total_minutes - active_minutes``, so active + idle == total
exactly and none is negative.

Untimed messages (no valid timestamp) are counted by the caller but not timed
here; fewer than two timed messages cannot be measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from shared.conversation import Message, Timing
from shared.errors import ReasonCode, SkipConversation

__all__ = ["attribution_date", "measure"]

_MICROSECOND = timedelta(microseconds=1)
_MINUTE_US = 60_000_000


def measure(messages: Iterable[Message], idle_threshold_minutes: float) -> Timing:
    """Total, active and idle minutes of the timed messages; SkipConversation below two of them."""
    if idle_threshold_minutes < 0:
        raise ValueError("idle_threshold_minutes must not be negative")
    stamps = sorted(message.timestamp for message in messages if message.timestamp is not None)
    if len(stamps) < 2:
        raise SkipConversation(
            f"{len(stamps)} timed message(s); at least 2 are needed",
            reason_code=ReasonCode.TOO_FEW_TIMESTAMPS,
        )
    threshold_us = round(idle_threshold_minutes * _MINUTE_US)
    total_us = (stamps[-1] - stamps[0]) // _MICROSECOND
    active_us = 0
    for earlier, later in pairwise(stamps):
        gap_us = (later - earlier) // _MICROSECOND
        if gap_us <= threshold_us:
            active_us += gap_us
    total_minutes = _round_half_up_minutes(total_us)
    active_minutes = _round_half_up_minutes(active_us)
    return Timing(
        first_message_at=stamps[0],
        last_message_at=stamps[-1],
        total_minutes=total_minutes,
        active_minutes=active_minutes,
        idle_minutes=total_minutes - active_minutes,
        timed_messages=len(stamps),
    )


def attribution_date(last_message_at: datetime | Timing, zone: ZoneInfo) -> date:
    """The local date a conversation counts for: the date of its last timed message in `zone`."""
    moment = last_message_at.last_message_at if isinstance(last_message_at, Timing) else last_message_at
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined local date")
    return moment.astimezone(zone).date()


def _round_half_up_minutes(microseconds: int) -> int:
    return (microseconds + _MINUTE_US // 2) // _MINUTE_US
