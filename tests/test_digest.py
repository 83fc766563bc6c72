"""The transcript digest: what it keeps, what it describes, what it never contains, and its size bound."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.openwebui_fixture import ChatBuilder, realistic_chat
from shared.config import DigestMode
from shared.conversation import Conversation, Message
from shared.digest import CHARS_PER_TOKEN, build_digest
from shared.openwebui.document import ChatRecord, parse_conversation

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

PYTHON_ANSWER = """Here is the function you asked for. It reads the rows and sums them per month.

```python
def monthly_totals(rows):
    totals = {}
    for row in rows:
        key = row.date.strftime("%Y-%m")
        totals[key] = totals.get(key, 0) + row.amount
    return totals
```

| Month | Total |
|:------|------:|
| 2026-01 | 10 |

Notes:

- it ignores empty rows
- it keeps the order
  of insertion
- it is pure

1. first
2. second
"""


def _conversation(chat: ChatBuilder) -> Conversation:
    record = ChatRecord(
        id=chat.chat_id, user_id="user-1", updated_at=chat.last_timestamp, document=chat.document()
    )
    return parse_conversation(record)


def _sample() -> Conversation:
    chat = ChatBuilder(START, model="gpt-4o")
    question = chat.user(
        "Szia! Írj egy Python függvényt a havi bevételhez. Kovács Éva vagyok, kovacs.eva@example.hu, "
        "+36 30 123 4567.",
        files=[{"type": "file", "name": "bevetel.csv"}],
    )
    chat.assistant("An earlier attempt that was regenerated.")
    chat.regenerate(question, PYTHON_ANSWER, model="gpt-4o-mini")
    chat.turn("Danke! Und jetzt als SQL, bitte. Grüße 😀", "```sql\nSELECT 1;\nSELECT 2;\n```\nFertig.")
    return _conversation(chat)


def test_digest_keeps_the_asks_in_order_and_describes_the_answers() -> None:
    digest = build_digest(_sample(), 1500)
    text = digest.text

    first = text.index("1. user: Szia! Írj egy Python függvényt")
    second = text.index("2. user: Danke! Und jetzt als SQL, bitte. Grüße 😀")
    assert first < second
    assert "[1 attachment]" in text
    assert "assistant: 36 words, python code 6 lines, 1 table, 2 lists (5 items)" in text
    assert "assistant: 1 word, sql code 2 lines" in text
    assert "1 regenerated answer" in text and "1 abandoned branch" in text
    assert "Models: gpt-4o-mini, gpt-4o." in text
    assert "def monthly_totals" not in text  # answers are described, never pasted
    assert "An earlier attempt" not in text
    assert not digest.truncated
    assert digest.approx_tokens == -(-len(text) // CHARS_PER_TOKEN)


def test_digest_never_contains_emails_or_phone_numbers() -> None:
    text = build_digest(_sample(), 1500).text
    assert "kovacs.eva@example.hu" not in text and "[EMAIL]" in text
    assert "123 4567" not in text and "[PHONE]" in text


def test_known_names_are_replaced_including_parts_and_inflected_forms() -> None:
    chat = ChatBuilder(START)
    chat.user(
        "Hi, I am Zsófia Kovács. Küldd el Kovácsnak és ZSÓFIÁNAK; Bence Tóth is here. "
        "Annual report for Jean-Luc, ann@example.com."
    )
    chat.assistant("Hello Zsófia")
    names = ["Zsófia Kovács", "Bence Tóth", "Ann", "Jean-Luc Picard", "", "12"]
    text = build_digest(_conversation(chat), 1500, known_names=names).text
    for part in ("Zsófia", "ZSÓFIÁ", "Kovács", "Bence", "Tóth", "Jean", "Luc"):
        assert part not in text
    assert "Hi, I am [NAME]. Küldd el [NAME] és [NAME]; [NAME] is here." in text
    assert "Annual report for [NAME], [EMAIL]." in text  # a 3-letter name part matches whole words only
    assert "Zsófia Kovács" in build_digest(_conversation(chat), 1500).text  # only known names are scrubbed


def test_names_marked_by_salutations_and_sign_offs_go_even_when_lines_are_joined() -> None:
    chat = ChatBuilder(START)
    chat.user(
        "Polish this e-mail:\n\nDear Mr. Whitfield,\nthe delivery to Kedves Szilvia! is late.\n\n"
        "Best regards,\nGwendolyn Ashcombe\nProcurement"
    )
    chat.assistant("Here you go.")
    text = build_digest(_conversation(chat), 1500).text
    assert "Whitfield" not in text and "Gwendolyn" not in text and "Ashcombe" not in text
    assert "Szilvia" not in text
    assert (
        "1. user: Polish this e-mail: Dear Mr. [NAME], the delivery to Kedves [NAME]! is late. "
        "Best regards, [NAME] Procurement"
    ) in text


def test_national_phone_formats_follow_the_regions_given() -> None:
    chat = ChatBuilder(START)
    chat.user("Ruf an: 030 1078001 oder (555) 223-8371.")
    chat.assistant("ok")
    conversation = _conversation(chat)
    assert "Ruf an: [PHONE] oder [PHONE]." in build_digest(conversation, 1500).text
    assert "030 1078001" in build_digest(conversation, 1500, regions=["HU"]).text


def _planted_counts_chat() -> tuple[Conversation, list[str]]:
    words = ["glimmerquokka", "tarnwhistle", "Brombeerschnecke", "Kovács Zsófia", "gpt-secret-model"]
    chat = ChatBuilder(START, title="glimmerquokka title", model="gpt-secret-model")
    chat.system("Secret tarnwhistle system prompt.")
    question = chat.user(
        "Dear Brombeerschnecke,\nwrite glimmerquokka code:\n```python\nprint('tarnwhistle')\nx = 1\n```",
        files=[{"type": "file", "name": "glimmerquokka.csv"}],
    )
    chat.assistant("An earlier glimmerquokka answer.")
    chat.regenerate(question, PYTHON_ANSWER)
    chat.turn("Thanks, Kovács Zsófia. Also +36 30 123 4567? 🙂", "Sure: tarnwhistle.", think=300)
    return _conversation(chat), words


def test_counts_mode_holds_no_text_of_the_conversation_only_its_shape() -> None:
    conversation, planted = _planted_counts_chat()
    digest = build_digest(conversation, 1500, mode=DigestMode.COUNTS)
    text = digest.text
    for value in [*planted, "print", "write", "Dear", "Thanks", "123 4567", "🙂", "earlier"]:
        assert value.lower() not in text.lower(), value
    assert digest.counts_only
    assert text.startswith("Conversation, counts only (no text of it is included): 2 user messages")
    assert "1 system message (4 words)" in text
    assert "Answered by 1 model." in text
    assert "Effort signals: 1 regenerated answer, 1 abandoned branch, 1 attachment." in text
    assert (
        "1. user: 5 words, 89 characters, python code 1 block (2 lines), 1 attachment; under a minute" in text
    )
    assert "   assistant: 36 words, python code 6 lines, 1 table, 2 lists (5 items)" in text
    assert "2. user: 8 words, 46 characters; 5 minutes after the previous message" in text
    assert "Time from the first to the last message: 6 minutes." in text
    # the features are those of the full digest: the heuristic's volume terms do not change
    assert digest.features == build_digest(conversation, 1500).features
    assert not build_digest(conversation, 1500).counts_only


def test_counts_mode_keeps_the_budget_on_long_conversations() -> None:
    chat = ChatBuilder(START)
    for index in range(300):
        chat.turn(f"Question {index} " + "details " * 30, "Answer. " * 50 + "\n```python\nx = 1\n```")
    digest = build_digest(_conversation(chat), 300, mode=DigestMode.COUNTS)
    assert len(digest.text) <= 300 * CHARS_PER_TOKEN
    assert digest.truncated and "turns omitted" in digest.text
    assert "Question" not in digest.text and "details" not in digest.text


def test_features_count_what_the_assistant_produced() -> None:
    features = build_digest(_sample(), 1500).features
    assert features.user_turns == 2
    assert features.assistant_turns == 2
    assert dict(features.code_lines_by_language) == {"python": 6, "sql": 2}
    assert features.code_lines == 8
    assert features.tables == 1
    assert features.attachments == 1
    assert features.regenerations == 1
    assert features.abandoned_branches == 1
    assert features.models == ("gpt-4o-mini", "gpt-4o")
    assert features.assistant_words == 37  # 36 + "Fertig"; list markers are not words
    assert features.user_words > 15


def test_user_pasted_code_is_summarised_not_pasted_and_not_counted_as_output() -> None:
    chat = ChatBuilder(START)
    chat.user(
        "Why does this fail?\n```js\nconst token = 'sk-abcdefghijklmnopqrstuvwxyz123456';\nfoo();\n```\nThanks"
    )
    chat.assistant("Because foo is undefined.")
    digest = build_digest(_conversation(chat), 1500)
    assert "user: Why does this fail? [javascript code 2 lines] Thanks" in digest.text
    assert "sk-abc" not in digest.text
    assert dict(digest.features.code_lines_by_language) == {}


def test_unclosed_fences_unlabelled_code_and_odd_languages() -> None:
    chat = ChatBuilder(START)
    chat.user("go")
    chat.assistant(
        "```\nplain\nlines\n```\n~~~{.py}\nx = 1\n~~~\n````weird$lang\nline\n````\n```ts\nlet a\nlet b"
    )
    features = build_digest(_conversation(chat), 1500).features
    assert dict(features.code_lines_by_language) == {
        "typescript": 2,
        "unlabelled": 2,
        "other": 1,
        "python": 1,
    }


def test_long_asks_are_shortened_with_a_marker_and_redacted_before_cutting() -> None:
    chat = ChatBuilder(START)
    secret = "contact me at someone.with.a.long.name@example-company.com please"
    chat.user("word " * 110 + secret + " more" * 400)
    chat.assistant("ok")
    digest = build_digest(_conversation(chat), 1500)
    line = next(line for line in digest.text.splitlines() if line.startswith("1. user:"))
    assert line.endswith(" chars]") and " … [" in line
    assert len(line) <= len("1. user: ") + 600
    assert "example-company" not in digest.text and "someone.with" not in digest.text
    assert digest.truncated


def test_tight_budget_keeps_first_and_last_asks_and_counts_the_omitted() -> None:
    chat = ChatBuilder(START)
    for index in range(60):
        chat.turn(f"Question number {index}: " + "details " * 30, "Answer. " * 50 + "\n```python\nx = 1\n```")
    digest = build_digest(_conversation(chat), 200)

    assert len(digest.text) <= 200 * CHARS_PER_TOKEN
    assert digest.approx_tokens <= 200
    assert digest.truncated
    assert "1. user: Question number 0:" in digest.text
    assert "60. user: Question number 59:" in digest.text
    assert "turns omitted" in digest.text
    omitted = int(digest.text.split("[… ")[1].split(" turns omitted")[0])
    shown = sum(1 for line in digest.text.splitlines() if ". user: " in line)
    assert omitted + shown == 60
    assert digest.features.user_turns == 60  # the features still describe the whole conversation


def test_a_single_enormous_turn_is_cut_hard_within_the_budget() -> None:
    messages = (
        Message("u", "user", "word " * 5000, START),
        Message("a", "assistant", "```python\n" + "x\n" * 9000 + "```", START),
    )
    conversation = Conversation("c", "u", START, messages, models=("m" * 5000,))
    digest = build_digest(conversation, 200)
    assert len(digest.text) <= 800
    assert digest.truncated


def test_digest_is_deterministic_and_handles_messages_without_a_user_first() -> None:
    messages = (
        Message("s", "system", "You are a helpful assistant. Secret system prompt.", START),
        Message("g", "assistant", "Hello! How can I help?", START),
        Message("u", "user", "Fasse zusammen: Übermäßig große Dateien.", START + timedelta(seconds=30)),
    )
    conversation = Conversation("c", "u", START, messages)
    first = build_digest(conversation, 500)
    assert first == build_digest(conversation, 500)
    assert "1 system message (8 words, not shown)" in first.text
    assert "Secret system prompt" not in first.text
    assert "1. (no user message)\n   assistant: 5 words" in first.text
    assert "2. user: Fasse zusammen: Übermäßig große Dateien.\n   assistant: no answer" in first.text


def test_invalid_budget_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        build_digest(_sample(), 0)


_texts = st.text(
    alphabet=st.sampled_from(list("ab cdé\n`|-#*1.:😀")) | st.characters(codec="utf-8"), max_size=300
)


@settings(max_examples=60, deadline=None)
@given(
    turns=st.lists(st.tuples(_texts, _texts), min_size=1, max_size=25),
    budget=st.integers(min_value=1, max_value=800),
)
def test_the_text_never_exceeds_the_budget(turns: list[tuple[str, str]], budget: int) -> None:
    messages: list[Message] = []
    for index, (ask, answer) in enumerate(turns):
        messages.append(Message(f"u{index}", "user", ask, START))
        messages.append(Message(f"a{index}", "assistant", answer, START))
    digest = build_digest(Conversation("c", "u", START, tuple(messages)), budget)
    assert len(digest.text) <= budget * CHARS_PER_TOKEN
    assert digest.approx_tokens <= budget


def test_realistic_chats_fit_the_default_budget() -> None:
    rng = random.Random(11)
    for index in range(40):
        conversation = _conversation(realistic_chat(rng, START + timedelta(hours=index)))
        digest = build_digest(conversation, 1500)
        assert len(digest.text) <= 6000
        assert digest.features.user_turns == sum(1 for m in conversation.messages if m.role == "user")
