"""Measuring active and idle time: the spec's example, the rounding rule, clock skew, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.conversation import Message, Timing
from shared.errors import SkipConversation
from shared.openwebui.document import ChatRecord, parse_conversation
from shared.timing import attribution_date, measure

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
BUDAPEST = ZoneInfo("Europe/Budapest")


def _messages(*offsets_seconds: float | None) -> list[Message]:
    return [
        Message(
            id=str(index),
            role="user" if index % 2 == 0 else "assistant",
            text="",
            timestamp=None if offset is None else START + timedelta(seconds=offset),
        )
        for index, offset in enumerate(offsets_seconds)
    ]


def _minutes(timing: Timing) -> tuple[int, int, int]:
    return timing.total_minutes, timing.active_minutes, timing.idle_minutes


def test_the_specs_example_from_an_open_webui_document() -> None:
    document = {
        "messages": [
            {"timestamp": 1640995200, "role": "user", "content": "a"},  # 2022-01-01 00:00:00
            {"timestamp": 1640995800, "role": "assistant", "content": "b"},  # +10 minutes
            {"timestamp": 1640999400, "role": "user", "content": "c"},  # +60 minutes (idle gap)
        ]
    }
    record = ChatRecord(id="c", user_id="u", updated_at=1640999400, document=document)
    timing = measure(parse_conversation(record).messages, idle_threshold_minutes=10)
    assert _minutes(timing) == (70, 10, 60)
    assert timing.timed_messages == 3
    assert timing.first_message_at == datetime(2022, 1, 1, tzinfo=UTC)
    assert timing.last_message_at == datetime(2022, 1, 1, 1, 10, tzinfo=UTC)


def test_a_gap_equal_to_the_threshold_is_active_one_second_more_is_idle() -> None:
    assert _minutes(measure(_messages(0, 600), 10)) == (10, 10, 0)
    assert _minutes(measure(_messages(0, 601), 10)) == (10, 0, 10)


def test_clock_skew_is_sorted_not_an_error() -> None:
    # the first user message keeps the browser clock: it lands 5 s after its own answer
    timing = measure(_messages(5, 0, 120, 121), 10)
    assert timing.first_message_at == START
    assert timing.last_message_at == START + timedelta(seconds=121)
    assert _minutes(timing) == (2, 2, 0)


def test_untimed_messages_are_ignored_and_fewer_than_two_timed_skip() -> None:
    assert measure(_messages(None, 0, None, 300), 10).timed_messages == 2
    for offsets in ((), (None,), (0,), (None, 30, None)):
        with pytest.raises(SkipConversation) as raised:
            measure(_messages(*offsets), 10)
        assert raised.value.reason_code == "too_few_timestamps"


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        ((0, 29), (0, 0, 0)),
        ((0, 30), (1, 1, 0)),  # half a minute rounds up
        ((0, 89), (1, 1, 0)),
        ((0, 90), (2, 2, 0)),
        ((0, 30, 30 + 3600), (61, 1, 60)),  # 0.5 active → 1, 60.5 total → 61
        ((0, 20, 20 + 700, 20 + 700 + 20), (12, 1, 11)),  # 40 s active, 740 s total
        ((0, 0.4, 29.7), (0, 0, 0)),  # sub-second precision: 29.7 s
        ((0, 0.5, 30.0), (1, 1, 0)),
    ],
)
def test_rounding_rule(offsets: tuple[float, ...], expected: tuple[int, int, int]) -> None:
    assert _minutes(measure(_messages(*offsets), 10)) == expected


def test_equal_timestamps_are_zero_minutes() -> None:
    assert _minutes(measure(_messages(0, 0, 0), 10)) == (0, 0, 0)


def test_negative_threshold_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        measure(_messages(0, 1), -1)


def test_attribution_date_is_the_local_date_of_the_last_message() -> None:
    late = datetime(2026, 10, 25, 22, 45, tzinfo=UTC)  # 23:45 CET, after the clocks went back
    timing = measure(
        [
            Message("a", "user", "", late - timedelta(minutes=5)),
            Message("b", "assistant", "", late),
        ],
        10,
    )
    assert attribution_date(timing, BUDAPEST) == date(2026, 10, 25)
    assert attribution_date(late + timedelta(minutes=20), BUDAPEST) == date(2026, 10, 26)
    assert attribution_date(datetime(2026, 3, 29, 21, 59, tzinfo=UTC), BUDAPEST) == date(2026, 3, 29)
    assert attribution_date(datetime(2026, 3, 29, 22, 0, tzinfo=UTC), BUDAPEST) == date(2026, 3, 30)
    with pytest.raises(ValueError, match="naive"):
        attribution_date(datetime(2026, 3, 29, 12, 0), BUDAPEST)


# --- properties ------------------------------------------------------------------

_gaps = st.lists(st.integers(min_value=0, max_value=5 * 3600), min_size=1, max_size=30)
_thresholds = st.integers(min_value=1, max_value=60)


def _from_gaps(gaps: list[int]) -> list[Message]:
    offsets = [0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    return _messages(*offsets)


@settings(max_examples=200, deadline=None)
@given(gaps=_gaps, threshold=_thresholds, skew=st.randoms(use_true_random=False))
def test_active_plus_idle_is_total_and_nothing_is_negative(
    gaps: list[int], threshold: int, skew: object
) -> None:
    messages = _from_gaps(gaps)
    skew.shuffle(messages)  # type: ignore[attr-defined]
    timing = measure(messages, threshold)
    assert timing.active_minutes + timing.idle_minutes == timing.total_minutes
    assert min(timing.total_minutes, timing.active_minutes, timing.idle_minutes) >= 0
    assert timing.active_minutes <= timing.total_minutes
    assert timing.total_minutes == (sum(gaps) * 2 + 60) // 120  # round-half-up of the span


@settings(max_examples=200, deadline=None)
@given(gaps=_gaps, threshold=_thresholds, position=st.integers(min_value=0), extra=st.integers(min_value=1))
def test_lengthening_an_idle_gap_never_changes_active_time(
    gaps: list[int], threshold: int, position: int, extra: int
) -> None:
    index = position % len(gaps)
    gaps = list(gaps)
    gaps[index] = max(gaps[index], threshold * 60 + 1)  # an idle gap
    longer = [*gaps[:index], gaps[index] + extra % (10 * 86_400), *gaps[index + 1 :]]
    assert (
        measure(_from_gaps(gaps), threshold).active_minutes
        == measure(_from_gaps(longer), threshold).active_minutes
    )


@settings(max_examples=200, deadline=None)
@given(
    first=st.lists(st.integers(min_value=0, max_value=3 * 3600), max_size=10),
    second=st.lists(st.integers(min_value=0, max_value=3 * 3600), max_size=10),
    threshold=_thresholds,
    pause=st.integers(min_value=1, max_value=10_000),
)
def test_inserting_an_idle_gap_between_two_sessions_adds_no_active_time(
    first: list[int], second: list[int], threshold: int, pause: int
) -> None:
    first = [gap // 60 * 60 for gap in first]  # whole minutes: no rounding between the parts
    second = [gap // 60 * 60 for gap in second]
    joined = measure(_from_gaps([*first, threshold * 60 + pause * 60, *second]), threshold)

    def active(gaps: list[int]) -> int:
        return measure(_from_gaps(gaps), threshold).active_minutes if gaps else 0

    assert joined.active_minutes == active(first) + active(second)
