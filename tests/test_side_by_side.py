"""Side-by-side answers (several models answering one message at once) are not regenerations.

The chats are written the way Open WebUI's frontend writes a side-by-side turn: the user
message lists its `models`, one answer per model with the same timestamp, each with its
`model` and `modelIdx`; regenerating one model's answer adds a sibling with that model's
`modelIdx` (see `infra/openwebui_fixture.py`, `ChatBuilder.side_by_side`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from infra.openwebui_fixture import ChatBuilder, OpenWebUIFixture
from shared.config import get_settings, reset_settings_cache
from shared.conversation import Conversation
from shared.digest import build_digest
from shared.estimators.heuristic import MINUTES_PER_REGENERATION, HeuristicEstimator
from shared.openwebui.document import ChatRecord, parse_conversation
from shared.openwebui.reader import load_conversation
from shared.queue import EnqueueReport

NOW = datetime(2026, 6, 12, tzinfo=UTC)
START = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


def _parse(chat: ChatBuilder) -> Conversation:
    record = ChatRecord(
        id=chat.chat_id, user_id="u", updated_at=chat.last_timestamp, document=chat.document()
    )
    return parse_conversation(record, (), now=NOW)


def _side_by_side_chat(*, regenerate_b: bool = False) -> ChatBuilder:
    chat = ChatBuilder(START, model="gpt-4o")
    for number in range(3):
        question, answers = chat.side_by_side(
            f"Question {number}",
            [("gpt-4o", f"A{number} from gpt-4o"), ("llama3.1:8b", f"A{number} from llama")],
        )
        if regenerate_b and number == 1:
            chat.regenerate(question, "A1 from llama, again", model="llama3.1:8b", extra={"modelIdx": 1})
        chat.select(answers[0] if number < 2 else chat.current_id or answers[-1])
    return chat


def test_other_models_answers_are_counted_as_side_by_side_not_as_regenerations() -> None:
    conversation = _parse(_side_by_side_chat())
    assert conversation.regenerations == 0
    assert conversation.side_by_side_answers == 3
    assert conversation.abandoned_branches == 0


def test_a_regeneration_inside_a_side_by_side_turn_still_counts() -> None:
    conversation = _parse(_side_by_side_chat(regenerate_b=True))
    assert conversation.regenerations == 1
    assert conversation.side_by_side_answers == 3


def test_a_single_model_turn_answered_again_by_another_model_is_a_regeneration() -> None:
    chat = ChatBuilder(START, model="gpt-4o")
    question, _first = chat.turn("Write a haiku", "first")
    chat.regenerate(question, "second", model="llama3.1:8b")  # the user message lists one model
    conversation = _parse(chat)
    assert (conversation.regenerations, conversation.side_by_side_answers) == (1, 0)


def test_the_heuristic_and_the_digest_tell_them_apart() -> None:
    side_by_side = build_digest(_parse(_side_by_side_chat()), 1500)
    regenerated = build_digest(_parse(_side_by_side_chat(regenerate_b=True)), 1500)
    assert side_by_side.features.regenerations == 0
    assert "regenerated answer" not in side_by_side.text
    assert "3 answers from other models shown side by side (compared, not regenerated)" in side_by_side.text
    assert "1 regenerated answer" in regenerated.text
    estimator = HeuristicEstimator()
    plain = estimator.estimate(side_by_side).most_likely
    again = estimator.estimate(regenerated).most_likely
    # one regeneration more is MINUTES_PER_REGENERATION more before the category factor (≥ 1)
    assert again > plain
    assert again - plain <= MINUTES_PER_REGENERATION * 2


def test_the_reader_gives_the_same_counts_from_a_real_table(tmp_path: object) -> None:
    source = OpenWebUIFixture.sqlite(f"{tmp_path}/webui.db")
    chat = _side_by_side_chat(regenerate_b=True)
    source.add_chat("user-1", chat)
    conversation = load_conversation(source.read_only_engine(), chat.chat_id, now=NOW)
    source.dispose()
    assert (conversation.regenerations, conversation.side_by_side_answers) == (1, 3)


class _NoDelivery:
    """A queue that accepts the dispatcher's tasks and delivers none (the test analyses by hand)."""

    def enqueue(self, target: str, payload: dict[str, object], *, name: str) -> bool:
        return True

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, object]]]) -> EnqueueReport:
        return EnqueueReport(created=len(list(tasks)))


def test_the_analyzer_stores_both_counts(
    tmp_path: Path, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions import analyzer, dispatcher
    from infra.local_queues import inline_queue

    source = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    chat = _side_by_side_chat(regenerate_b=True)
    source.add_chat("user-1", chat)
    source.dispose()
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", source.url)
    reset_settings_cache()
    settings = get_settings()
    run = dispatcher.dispatch(target_date=date(2026, 6, 10), settings=settings, queue=_NoDelivery())
    outcome = analyzer.analyze(
        {"run_id": str(run.run_id), "conversation_id": chat.chat_id},
        settings=settings,
        queue=inline_queue(settings),
    )
    assert outcome.outcome == "analyzed"
    with analytics_engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT regeneration_count, side_by_side_count FROM conversation_analysis")
        ).one()
    assert tuple(row) == (1, 3)
