"""The demo Open WebUI database for `make run`: synthetic, clearly labelled, realistic in shape.

A SQLite file with Open WebUI's real tables and JSON shapes, over `DEMO_DAYS` local
days ending yesterday:

* `DEMO_USERS` demo users ("Demo User 07", `@demo.invalid` addresses) who start
  using Open WebUI over the first months (adoption grows), each with their own
  habit; quiet weekends, public holidays and a slower August and Christmas week;
* groups above and below the default minimum group size (the dashboard shows the
  small ones as hidden), some people in two groups;
* seven kinds of work the heuristic estimator recognises (coding, writing,
  analysis, research, translation, learning, other) in English, Hungarian and
  German; only coding chats contain code;
* several models, among them a long Bedrock ARN and an `hf.co/...-GGUF:Q4_K_M`
  id, with token `usage` in the shapes Open WebUI stores (OpenAI, normalised
  input/output, Ollama counts and durations); side-by-side answers of two
  models in a few chats; tags in `chat.meta.tags`; 👍/👎 ratings on some answers
  (the message's `annotation`, as the Open WebUI page saves it);
* chats the product must skip, each for its own reason (a question never
  answered, an empty chat, a chat whose JSON is broken) and rows it must leave
  out (share-link copies, internal chats).

Every chat title starts with "[demo]". The same seed gives the same database
(dates are relative to today). Nothing here is real data.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from infra.openwebui_fixture import ChatBuilder, OpenWebUIFixture, raw_json

__all__ = [
    "BEDROCK_MODEL",
    "DEMO_DAYS",
    "DEMO_MODELS",
    "DEMO_USERS",
    "GGUF_MODEL",
    "DemoRating",
    "build_demo_database",
]

DEMO_DAYS = 400
DEMO_USERS = 60

# (name, members): the first members of the list of people, then the next, ...; the
# last two are below the default minimum group size of 5
_GROUPS = (
    ("Engineering", 16),
    ("Finance", 9),
    ("Marketing", 8),
    ("Legal", 6),
    ("Research", 7),
    ("Customer Support", 8),
    ("Executive Board", 3),
    ("Interns", 4),
)
_SECOND_GROUP = ("Research", range(0, 4))  # four engineers are in the research group too

BEDROCK_MODEL = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"
GGUF_MODEL = "hf.co/bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M"
# model id → (share of chats, usage shape)
DEMO_MODELS: dict[str, tuple[float, str]] = {
    "gpt-4o": (0.34, "openai"),
    "gpt-4o-mini": (0.26, "openai"),
    BEDROCK_MODEL: (0.16, "normalised"),
    "llama3.1:8b": (0.14, "ollama"),
    GGUF_MODEL: (0.10, "ollama"),
}

# share of chats per kind of work (the heuristic's categories)
_CATEGORY_SHARES = {
    "coding": 0.26,
    "writing": 0.22,
    "analysis": 0.16,
    "learning": 0.12,
    "translation": 0.09,
    "research": 0.08,
    "other": 0.07,
}

_TAGS = {
    "coding": ("backend", "bugfix", "sql", "automation"),
    "writing": ("customers", "internal-comms", "hr"),
    "analysis": ("q3-report", "budget", "sales"),
    "research": ("market", "vendors"),
    "translation": ("localisation",),
    "learning": ("onboarding", "tax"),
    "other": ("offsite",),
}


@dataclass(frozen=True, slots=True)
class DemoRating:
    """A 👍 (1) or 👎 (-1) a demo user gave an answer (also in the message's `annotation`)."""

    chat_id: str
    message_id: str
    user_id: str
    model: str
    rating: int
    created_at: int


@dataclass(frozen=True, slots=True)
class _Topic:
    titles: tuple[str, ...]
    asks: tuple[str, ...]
    follow_ups: tuple[str, ...]
    answers: tuple[str, ...]


_TOPICS: dict[str, _Topic] = {
    "coding": _Topic(
        titles=("Fix the date parsing function", "SQL query for monthly revenue", "Deploy script"),
        asks=(
            "Why does this Python function raise a KeyError when the input is empty?",
            "Write a SQL query that returns monthly revenue per region.",
            "Kérlek, javítsd ki a hibát ebben a függvényben: a dátumokat rosszul kezeli.",
            "Can you debug this bash script? It stops after the first step.",
            "Refactor this function so that it can be tested without the API.",
        ),
        follow_ups=(
            "Now add a unit test for the function.",
            "The code still fails with an exception on an empty list.",
            "Make the script safe to run twice.",
        ),
        answers=(
            "The function reads the key before checking it exists. Guard it first:",
            "Here is a version that handles the empty case and keeps the old behaviour:",
            "This query groups by region and month:",
            "A javított függvény először ellenőrzi a bemenetet:",
        ),
    ),
    "writing": _Topic(
        titles=("Customer e-mail about the delay", "Levél a beszállítónak", "Newsletter draft"),
        asks=(
            "Draft an e-mail to the customer about the delayed delivery, friendly but firm.",
            "Írj egy udvarias levelet a beszállítónak a késésről.",
            "Bitte formuliere die E-Mail an den Kunden höflicher.",
            "Rewrite this paragraph for the staff newsletter so it reads more warmly.",
            "Draft a short blog post announcing our new office hours.",
        ),
        follow_ups=(
            "Make it shorter and more formal, please.",
            "Rewrite the last paragraph, it sounds too stiff.",
            "Fogalmazd meg rövidebben.",
        ),
        answers=(
            "Dear Ms Novak, thank you for your patience while we sort out the delivery. ",
            "Tisztelt Partnerünk! Köszönjük türelmüket, a szállítás jövő héten érkezik. ",
            "Sehr geehrte Frau Weber, vielen Dank für Ihre Geduld. Die Lieferung kommt nächste Woche. ",
            "We are happy to share that from Monday the front desk opens at eight. ",
            "Kind regards, and please let me know if anything is unclear. ",
        ),
    ),
    "analysis": _Topic(
        titles=("Q3 sales by region", "Költségadatok elemzése", "Budget forecast"),
        asks=(
            "Compare the Q3 sales data by region and point out the trend.",
            "Elemezd a költségadatokat, és mutasd meg, hol nőttek a legjobban.",
            "Evaluate these spreadsheet figures and forecast next quarter.",
            "Compare the three vendors by price and support in a table.",
        ),
        follow_ups=(
            "Which region drives the trend?",
            "Add a column with the change against last year.",
            "Mi okozza az eltérést a második negyedévben?",
        ),
        answers=(
            "Revenue grew 12% while costs stayed flat; the north region grew fastest. ",
            "Összefoglalva: a bevétel 12%-kal nőtt, a költségek stagnáltak. ",
            "The second quarter dips because two large orders moved into July. ",
            "Next quarter should land between 1.1 and 1.3 million if the pipeline holds. ",
        ),
    ),
    "research": _Topic(
        titles=("Remote work productivity", "Piaci áttekintés", "Heat pump vendors"),
        asks=(
            "Give me an overview of the literature on remote work productivity, with sources.",
            "Készíts áttekintést a hazai felhőszolgáltatókról, forrásokkal.",
            "Research the state of the art in heat pumps for office buildings.",
        ),
        follow_ups=(
            "Which sources are the most recent?",
            "Give me an overview of the counter-arguments too.",
        ),
        answers=(
            "Three strands stand out: studies of output per hour, surveys of wellbeing, and field experiments. ",
            "A legnagyobb szereplők ára hasonló, a támogatásban van különbség. ",
            "Most recent work points to modulating units with a seasonal efficiency above four. ",
        ),
    ),
    "translation": _Topic(
        titles=("Contract clause in English", "Fordítás angolra", "Produktbeschreibung"),
        asks=(
            "Translate this paragraph into English and keep the tone friendly: "
            "Köszönjük, hogy velünk dolgozik, a szerződést mellékeljük.",
            "Fordítsd le angolra ezt a bekezdést: a határidő péntek délután öt óra.",
            "Please translate the product description into German.",
            "Fordítsd le magyarra: The parties agree to settle disputes amicably.",
        ),
        follow_ups=(
            "Translate the second sentence more literally.",
            "Now the same into German, please.",
        ),
        answers=(
            "Thank you for working with us; please find the contract attached. ",
            "The deadline is Friday at five in the afternoon. ",
            "Die leichte Jacke hält warm und trocknet schnell. ",
            "A felek megállapodnak, hogy vitáikat békésen rendezik. ",
        ),
    ),
    "learning": _Topic(
        titles=("How VAT reverse charge works", "Mi a különbség?", "Onboarding questions"),
        asks=(
            "Explain how a VAT reverse charge works, with a simple example.",
            "What is the difference between a lease and a rental agreement?",
            "Magyarázd el, hogyan működik az osztalékadó.",
            "How does compound interest grow over ten years? I want to understand it.",
        ),
        follow_ups=(
            "Explain it once more, as if I were new to the topic.",
            "Why does the second case differ?",
        ),
        answers=(
            "Under a reverse charge the buyer, not the seller, accounts for the tax. ",
            "A lease usually runs for years and the lessee maintains the asset; a rental is short. ",
            "Az osztalék után a magánszemély fizet, a kifizető vonja le. ",
            "Each year the interest is added to the balance, so the next year earns on more. ",
        ),
    ),
    "other": _Topic(
        titles=("Team lunch", "Offsite agenda", "Gift ideas"),
        asks=(
            "Plan a team lunch for twelve people next Friday near the office.",
            "Suggest an agenda for a one-day team offsite in the spring.",
            "Ideas for a farewell gift for a colleague who loves hiking?",
        ),
        follow_ups=("Something cheaper, please.", "Add a rainy-day option."),
        answers=(
            "A bistro with a set menu works well for twelve; book a table for half past twelve. ",
            "Morning: review of the year; afternoon: a walk and the plans for autumn. ",
            "A good map of the region and a light thermos are both welcome. ",
        ),
    ),
}

_CODE_BLOCKS = (
    "```python\ndef monthly_totals(rows):\n    totals = {}\n    for row in rows:\n"
    "        key = row.date.strftime('%Y-%m')\n        totals[key] = totals.get(key, 0) + row.amount\n"
    "    return totals\n```",
    "```sql\nSELECT region, date_trunc('month', sold_at) AS month, sum(amount)\nFROM sales\n"
    "GROUP BY 1, 2\nORDER BY 1, 2;\n```",
    "```bash\nset -euo pipefail\npython -m venv .venv\n.venv/bin/pip install -r requirements.txt\n```",
    "```python\ndef test_empty_input():\n    assert monthly_totals([]) == {}\n```",
)
_TABLE = (
    "| Region | Q2 | Q3 | Change |\n|---|---:|---:|---:|\n| North | 410 | 486 | +18% |\n"
    "| South | 380 | 401 | +6% |\n| West | 295 | 301 | +2% |"
)
_LIST = "- first point\n- second point\n- third point"


def build_demo_database(
    path: Path,
    *,
    zone: ZoneInfo,
    days: int = DEMO_DAYS,
    users: int = DEMO_USERS,
    seed: int = 2026,
    today: date | None = None,
) -> str:
    """Write the demo database to `path` (replacing it) and describe what it holds."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    fixture = OpenWebUIFixture.sqlite(partial)
    fixture.engine.dispose()  # from here on every connection writes without a journal or fsync:
    sa.event.listen(fixture.engine, "connect", _unsynchronised)  # a scratch file until renamed
    today = today or datetime.now(zone).date()
    first_day = today - timedelta(days=days)
    people = [
        fixture.add_user(
            _uuid(rng),
            name=f"Demo User {n:02d}",
            email=f"demo{n:02d}@demo.invalid",
            created_at=_epoch(first_day, zone),
        )
        for n in range(1, users + 1)
    ]
    fixture.add_user(_uuid(rng), name="Demo Admin", email="admin@demo.invalid", role="admin")
    offset = 0
    for name, size in _GROUPS:
        members = people[offset : offset + size]
        if name == _SECOND_GROUP[0]:
            members = members + [people[i] for i in _SECOND_GROUP[1] if people[i] not in members]
        fixture.add_group(name, members, group_id=_uuid(rng))
        offset = (offset + size) % max(users, 1)

    habits = [_Habit.draw(rng, index, users, days) for index in range(users)]
    categories = Counter[str]()
    skipped = Counter[str]()
    ratings: list[DemoRating] = []
    chats = 0
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        day_index = days - back
        for person, habit in zip(people, habits, strict=True):
            for _ in range(habit.chats_on(day, day_index, rng)):
                start = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(
                    minutes=rng.choice(habit.hours) * 60 + rng.randint(0, 59)
                )
                kind = _skip_kind(rng)
                if kind:
                    _add_unmeasurable(fixture, rng, person, start, kind)
                    skipped[kind] += 1
                else:
                    category = _weighted(rng, _CATEGORY_SHARES)
                    categories[category] += 1
                    ratings += _add_chat(fixture, rng, person, start, category)
                chats += 1
    for rating in ratings:
        _record_rating(fixture, rating)
    fixture.dispose()
    partial.replace(path)
    spread = ", ".join(f"{name} {count}" for name, count in categories.most_common())
    return (
        f"{users} demo users, {len(_GROUPS)} groups, {chats} synthetic chats over {days} days "
        f"({spread}; {sum(skipped.values())} that cannot be measured; {len(ratings)} ratings)"
    )


def _record_rating(fixture: OpenWebUIFixture, rating: DemoRating) -> None:
    """The rating's `feedback` row, as Open WebUI writes it next to the message's `annotation`."""
    fixture.add_rating(
        user_id=rating.user_id,
        chat_id=rating.chat_id,
        message_id=rating.message_id,
        rating=rating.rating,
        model_id=rating.model,
        at=rating.created_at,
    )


# --- who works when -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Habit:
    start_day: int  # the day index the person starts using Open WebUI
    rate: float  # chats on an ordinary working day, once settled in
    hours: tuple[int, ...]  # local hours the person tends to start chats

    @classmethod
    def draw(cls, rng: random.Random, index: int, users: int, days: int) -> _Habit:
        # a pilot group from the start, then colleagues join over the first three quarters
        pilot = index < max(users // 6, 1)
        start_day = 0 if pilot else rng.randint(14, max(15, int(days * 0.75)))
        rate = rng.choice((0.1, 0.2, 0.3, 0.45, 0.7)) if not pilot else rng.choice((0.5, 0.8))
        early = rng.random() < 0.5
        hours = (
            (8, 9, 9, 10, 10, 11, 13, 14, 14, 15, 16) if early else (9, 10, 11, 11, 13, 14, 15, 16, 17, 17)
        )
        return cls(start_day, rate, hours)

    def chats_on(self, day: date, day_index: int, rng: random.Random) -> int:
        if day_index < self.start_day:
            return 0
        settled = min(1.0, 0.4 + (day_index - self.start_day) / 120)  # use grows as habits form
        expected = self.rate * settled * _day_factor(day)
        count = 0
        while expected > 0:  # Bernoulli trials of at most 1 chat each: a cheap Poisson-like draw
            if rng.random() < min(expected, 1.0):
                count += 1
            expected -= 1.0
        return count


def _day_factor(day: date) -> float:
    if (day.month, day.day) in _HOLIDAYS:
        return 0.03
    if day.weekday() >= 5:
        return 0.05
    if (day.month == 12 and day.day >= 27) or (day.month == 1 and day.day <= 2):
        return 0.3
    if day.month == 8:
        return 0.65
    return 1.0


# fixed-date public holidays (those of Hungary, where the demo's languages come from)
_HOLIDAYS = {(1, 1), (3, 15), (5, 1), (8, 20), (10, 23), (11, 1), (12, 24), (12, 25), (12, 26)}


# --- chats ---------------------------------------------------------------------------


def _add_chat(
    fixture: OpenWebUIFixture, rng: random.Random, person: str, start: datetime, category: str
) -> list[DemoRating]:
    topic = _TOPICS[category]
    model = _weighted(rng, {name: share for name, (share, _) in DEMO_MODELS.items()})
    side_by_side = rng.random() < 0.03
    second = rng.choice([m for m in DEMO_MODELS if m != model]) if side_by_side else None
    chat = ChatBuilder(
        start, chat_id=_uuid(rng), title=rng.choice(topic.titles), model=model, new_id=lambda: _uuid(rng)
    )
    turns = rng.choice((1, 2, 2, 3, 3, 4, 5, 6, 8, 12))
    ratings: list[DemoRating] = []
    first_answer_id = ""
    for index in range(turns):
        think = rng.choice((20, 45, 90, 180, 300)) if rng.random() > 0.08 else rng.randint(900, 5400)
        ask = rng.choice(topic.asks) if index == 0 else rng.choice(topic.follow_ups)
        question = chat.user(ask, after=0 if index == 0 else think)
        if second:
            chat.messages[question]["models"] = [model, second]
        answer = _answer(rng, category, topic)
        answer_id = _assistant(chat, rng, answer, model)
        first_answer_id = first_answer_id or answer_id
        if second:
            _assistant(chat, rng, _answer(rng, category, topic), second, parent=question, model_index=1)
            chat.select(answer_id)
        if rng.random() < 0.07:
            chat.regenerate(question, rng.choice(topic.answers) + "(second try)", after=rng.uniform(10, 60))
            chat.messages[chat.current_id or ""]["usage"] = _usage(rng, model, 80)
        if rng.random() < 0.006:
            rating = 1 if rng.random() < 0.8 else -1
            target = chat.current_id or answer_id
            chat.messages[target]["annotation"] = {"rating": rating}
            ratings.append(
                DemoRating(
                    chat.chat_id, target, person, chat.messages[target]["model"], rating, chat.last_timestamp
                )
            )
        if index and rng.random() < 0.03:
            edited = chat.edit(question, ask + " (edited)", after=rng.uniform(10, 60))
            _assistant(chat, rng, answer, model, parent=edited)
    if chat.last_timestamp <= chat.first_clock:  # a one-turn chat still takes a moment
        chat.clock += 5
    document = chat.document()
    if second:
        document["models"] = [model, second]
    tags = list(rng.sample(_TAGS[category], k=1)) if rng.random() < 0.3 else []
    fixture.add_chat(
        person,
        document,
        chat_id=chat.chat_id,
        title=f"[demo] {chat.title}",
        created_at=int(chat.first_clock),
        updated_at=chat.last_timestamp + rng.randint(0, 120),
        archived=rng.random() < 0.08,
        pinned=rng.random() < 0.03,
        meta={"tags": tags} if tags else {},
    )
    if rng.random() < 0.01:  # shared by link: Open WebUI keeps a copy owned by "shared-<chat id>"
        fixture.add_chat(
            f"shared-{chat.chat_id}", document, chat_id=_uuid(rng), title=f"[demo] {chat.title}",
            created_at=int(chat.first_clock), updated_at=chat.last_timestamp + 300,
        )  # fmt: skip
    return ratings


def _assistant(
    chat: ChatBuilder,
    rng: random.Random,
    content: str,
    model: str,
    *,
    parent: Any = None,
    model_index: int = 0,
) -> str:
    options: dict[str, Any] = {"after": rng.uniform(0.5, 3), "model": model}
    if parent is not None:
        options["parent"] = parent
    message_id = chat.assistant(content, **options)
    message = chat.messages[message_id]
    message["modelIdx"] = model_index
    message["usage"] = _usage(rng, model, max(1, len(content) // 4))
    return message_id


def _answer(rng: random.Random, category: str, topic: _Topic) -> str:
    answer = "".join(rng.choices(topic.answers, k=rng.randint(1, 6)))
    if category == "coding":
        answer += "\n\n" + rng.choice(_CODE_BLOCKS)
    elif category == "analysis" and rng.random() < 0.4:
        answer += "\n\n" + _TABLE
    if category in ("research", "other", "learning") and rng.random() < 0.3:
        answer += "\n\n" + _LIST
    return answer


def _usage(rng: random.Random, model: str, completion: int) -> dict[str, Any]:
    """Token usage in the shape Open WebUI stores for the model's kind of connection."""
    prompt = rng.randint(60, 2400)
    shape = DEMO_MODELS[model][1]
    if shape == "openai":
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": rng.choice((0, 0, 0, prompt // 2))},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
    if shape == "normalised":
        return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}
    eval_ns = completion * rng.randint(18, 40) * 1_000_000
    prompt_ns = prompt * rng.randint(1, 3) * 1_000_000
    return {
        "response_token/s": round(completion / (eval_ns / 1e9), 2),
        "prompt_token/s": round(prompt / (prompt_ns / 1e9), 2),
        "total_duration": eval_ns + prompt_ns + 40_000_000,
        "load_duration": 40_000_000,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": prompt_ns,
        "eval_count": completion,
        "eval_duration": eval_ns,
        "approximate_total": f"0h0m{max(1, (eval_ns + prompt_ns) // 1_000_000_000)}s",
    }


# --- chats the product must skip ------------------------------------------------------

_SKIP_SHARES = {"unanswered": 0.012, "empty": 0.003, "broken_json": 0.002, "internal": 0.004}


def _skip_kind(rng: random.Random) -> str | None:
    draw = rng.random()
    for kind, share in _SKIP_SHARES.items():
        if draw < share:
            return kind
        draw -= share
    return None


def _add_unmeasurable(
    fixture: OpenWebUIFixture, rng: random.Random, person: str, start: datetime, kind: str
) -> None:
    """A chat that cannot be measured (skipped, with its reason) or is not someone's work (left out)."""
    chat = ChatBuilder(start, chat_id=_uuid(rng), title="New Chat", new_id=lambda: _uuid(rng))
    when = int(start.timestamp())
    if kind == "unanswered":  # one message: the user closed the tab before the answer came
        chat.user(rng.choice(_TOPICS["learning"].asks), after=0)
        fixture.add_chat(person, chat, title="[demo] Unanswered question", updated_at=when + 30)
    elif kind == "empty":  # opened and left: Open WebUI saves an empty history
        fixture.add_chat(
            person,
            {"id": "", "title": "New Chat", "models": ["gpt-4o"], "history": {"messages": {}, "currentId": None},
             "messages": [], "tags": [], "params": {}, "timestamp": when * 1000, "files": []},
            chat_id=chat.chat_id, title="[demo] New Chat", created_at=when, updated_at=when,
        )  # fmt: skip
    elif kind == "broken_json":  # cut off mid-write (seen after a disk-full incident)
        fixture.add_chat(
            person, raw_json('{"id": "x", "history": {"messages": {"a": {"role": "us'),
            chat_id=chat.chat_id, title="[demo] Damaged chat", created_at=when, updated_at=when,
        )  # fmt: skip
    else:  # an internal chat (a note or a sub-agent's chat): left out, not counted
        chat.turn(rng.choice(_TOPICS["other"].asks), rng.choice(_TOPICS["other"].answers), think=0)
        fixture.add_chat(person, chat, title="[demo] Internal", meta={"internal": True})


# --- helpers ----------------------------------------------------------------------------


def _unsynchronised(connection: Any, record: Any) -> None:
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")


def _weighted(rng: random.Random, shares: dict[str, float]) -> str:
    return rng.choices(list(shares), weights=list(shares.values()), k=1)[0]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _epoch(day: date, zone: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
