"""The Open WebUI Action and the feedback endpoint, over real HTTP on loopback.

The Action file is loaded the way Open WebUI 0.12.4 loads a function
(`open_webui/utils/plugin.py`: a fresh module, the file's text executed in it, the
`Action` class found and instantiated, its `Valves` filled from the admin's values) and
invoked the way `open_webui/utils/chat.py:chat_action` does (parameters picked by the
signature, `__user__` the user's model dump). `__event_call__` answers like the
browser's confirm dialog: the typed text on OK, `True` for an empty OK, `False` on cancel.
The exact answers of each supported Open WebUI release are in tests/test_action_releases.py.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.api import create_app
from functions.api.app import API_PREFIX
from functions.api.feedback import MAX_CONFIRMED_MINUTES
from functions.api.services import ApiServices
from infra.openwebui_fixture import ChatBuilder, OpenWebUIFixture
from shared.config import REPO_ROOT, get_settings, reset_settings_cache
from shared.db import reset_engines
from shared.pseudonym import pseudonymise_with_settings
from tests.ground_truth_support import add_analysis, confirmation_rows
from tests.loopback import serve_wsgi

ACTION_FILE = REPO_ROOT / "integrations" / "openwebui" / "time_savings_feedback.py"
TOKEN = "feedback-token-for-tests-0123456789"
ALICE = "3f1c9a52-0b7e-4c1a-9d0e-2a6b8c4d5e6f"
BOB = "8e2d7b41-5c3a-4f9e-8b1d-7c6a5b4e3d2c"
URL = API_PREFIX + "/feedback"


class Stack:
    """The api function on loopback, over an Open WebUI database with two users and two chats."""

    def __init__(
        self,
        base: str,
        engine: Engine,
        alice_chat: str,
        alice_message: str,
        bob_chat: str,
        requests: list[str],
    ) -> None:
        self.base = base
        self.requests = requests  # the path of every request that reached the api
        self.engine = engine
        self.alice_chat = alice_chat
        self.alice_message = alice_message
        self.bob_chat = bob_chat

    def post(self, body: Any, token: str | None = TOKEN) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(self.base + URL, json=body, headers=headers, timeout=10)

    def get(self, token: str | None = TOKEN, **params: str) -> requests.Response:
        """The state lookup: a POST with the ids in the body (URLs are logged)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(self.base + URL + "/state", json=params, headers=headers, timeout=10)


@pytest.fixture
def stack(tmp_path: Path, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    source = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    source.add_user(ALICE, name="Alice Example")
    source.add_user(BOB, name="Bob Example")
    chat = ChatBuilder(1_781_000_000.0, model="gpt-4o")
    _, answer = chat.turn("Write a SQL query for monthly totals", "SELECT ...")
    alice_chat = source.add_chat(ALICE, chat)
    bob_chat = source.add_chat(BOB, ChatBuilder(1_781_000_500.0))
    source.dispose()
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", source.url)
    monkeypatch.setenv("ANALYTICS_FEEDBACK_TOKEN", TOKEN)
    reset_settings_cache()
    reset_engines()
    app = create_app(services=ApiServices(get_settings()))
    seen: list[str] = []

    def counted(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(environ["PATH_INFO"])
        return app(environ, start_response)

    with serve_wsgi(counted) as base:
        yield Stack(base, analytics_engine, alice_chat, answer, bob_chat, seen)


# --- the Action, loaded and called like Open WebUI does ------------------------------------


def load_action(valves: dict[str, Any]) -> Any:
    """Open WebUI's `load_function_module_by_id` + the valves step of `chat_action`."""
    content = ACTION_FILE.read_text(encoding="utf-8")
    assert content.splitlines()[0] == '"""'  # Open WebUI reads the frontmatter from here
    module = types.ModuleType("function_time_savings_feedback")
    sys.modules[module.__name__] = module
    try:
        exec(compile(content, str(ACTION_FILE), "exec"), module.__dict__)  # noqa: S102 - as Open WebUI does
    finally:
        del sys.modules[module.__name__]
    assert not hasattr(module, "Pipe") and not hasattr(module, "Filter")
    assert hasattr(module, "Action")
    action = module.Action()
    assert hasattr(action, "valves") and hasattr(action, "Valves")
    action.valves = action.Valves(**valves)
    return action


class Browser:
    """`__event_call__` and `__event_emitter__` as the chat page answers them."""

    def __init__(self, *replies: Any) -> None:
        self.replies: list[Any] = list(replies)
        self.calls: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    async def event_call(self, event: dict[str, Any]) -> Any:
        self.calls.append(event)
        return self.replies.pop(0)

    async def event_emitter(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    @property
    def statuses(self) -> list[str]:
        return [event["data"]["description"] for event in self.events if event["type"] == "status"]

    @property
    def notifications(self) -> list[tuple[str, str]]:
        return [
            (event["data"]["type"], event["data"]["content"])
            for event in self.events
            if event["type"] == "notification"
        ]


def run_action(
    stack: Stack,
    browser: Browser,
    *,
    user: str = ALICE,
    chat_id: str | None = None,
    valves: dict[str, Any] | None = None,
) -> Any:
    action = load_action(valves or {"api_url": stack.base + "/", "feedback_token": TOKEN})
    body = {
        "model": "gpt-4o",
        "chat_id": chat_id or stack.alice_chat,
        "id": stack.alice_message,
        "session_id": "socket-session-1",
        "messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}],
    }
    extra = {
        "__model__": {"id": "gpt-4o"},
        "__id__": "time_savings_feedback",
        "__event_emitter__": browser.event_emitter,
        "__event_call__": browser.event_call,
        "__request__": None,
    }
    signature = inspect.signature(action.action)
    params: dict[str, Any] = {"body": body}
    params.update({key: value for key, value in extra.items() if key in signature.parameters})
    if "__user__" in signature.parameters:
        params["__user__"] = {"id": user, "email": "x@example.com", "name": "Someone", "role": "user"}
    assert inspect.iscoroutinefunction(action.action)
    return asyncio.run(action.action(**params))


def test_the_action_records_an_answer_before_analysis_and_the_latest_wins_after(stack: Stack) -> None:
    alice = pseudonymise_with_settings(ALICE, get_settings())

    browser = Browser("45 min")
    run_action(stack, browser)
    assert browser.calls[0]["type"] == "input"
    assert browser.calls[0]["data"]["title"] == "How long would this have taken you without AI?"
    assert "not been estimated yet" in browser.calls[0]["data"]["message"]
    assert browser.notifications == [("success", "Thanks: recorded 45 min by hand.")]
    [row] = confirmation_rows(stack.engine)
    assert row["conversation_id"] == stack.alice_chat
    assert row["user_id_hash"] == alice and ALICE not in str(row)
    assert (row["confirmed_minutes"], row["did_not_help"], row["preset"]) == (45, False, None)
    assert row["message_id"] == stack.alice_message
    assert row["seen_most_likely"] is None and row["answer_count"] == 1

    add_analysis(stack.engine, stack.alice_chat, user_id_hash=alice, low=20, most_likely=50, high=90)
    browser = Browser("15–60 min")
    run_action(stack, browser)
    message = browser.calls[0]["data"]["message"]
    assert "about 50 min by hand (20–90 min)" in message
    assert "You answered 45 min before" in message
    [row] = confirmation_rows(stack.engine)
    assert (row["confirmed_minutes"], row["preset"], row["answer_count"]) == (30, "15_60", 2)
    assert (row["seen_low"], row["seen_most_likely"], row["seen_high"]) == (20, 50, 90)
    assert (
        row["seen_estimator"],
        row["seen_model"],
        row["seen_prompt_version"],
        row["seen_task_category"],
    ) == (
        "llm",
        "gpt-4o-mini",
        "2026-11-28.1",
        "coding",
    )

    browser = Browser("more", "6")
    run_action(stack, browser)
    assert len(browser.calls) == 2
    [row] = confirmation_rows(stack.engine)
    assert (row["confirmed_minutes"], row["preset"]) == (360, "more")

    browser = Browser("AI did not help")
    run_action(stack, browser)
    assert browser.notifications == [("success", "Thanks: recorded that AI did not help with this.")]
    [row] = confirmation_rows(stack.engine)
    assert (row["confirmed_minutes"], row["did_not_help"], row["answer_count"]) == (None, True, 4)

    browser = Browser("I would not have done this without AI")
    run_action(stack, browser)
    assert '"I would not have done this without AI"' in browser.calls[0]["data"]["message"]
    assert browser.notifications == [
        ("success", "Thanks: recorded as new work you would not have done without AI.")
    ]
    [row] = confirmation_rows(stack.engine)
    assert (row["confirmed_minutes"], row["did_not_help"], row["new_work"]) == (None, False, True)
    browser = Browser("new work")
    run_action(stack, browser)
    assert "You answered new work before" in browser.calls[0]["data"]["message"]
    [row] = confirmation_rows(stack.engine)
    assert (row["new_work"], row["answer_count"]) == (True, 6)


@pytest.mark.parametrize("reply", [False, True, "   "])
def test_a_cancelled_or_empty_dialog_stores_nothing(stack: Stack, reply: Any) -> None:
    browser = Browser(reply)
    run_action(stack, browser)
    [(kind, text)] = browser.notifications
    assert kind == "error" and "your answer was not recorded" in text
    assert browser.statuses == []  # nothing is written into the chat
    assert confirmation_rows(stack.engine) == []


def test_the_action_reports_failures_and_stores_nothing(stack: Stack) -> None:
    browser = Browser("a long while")
    run_action(stack, browser)
    [(kind, text)] = browser.notifications
    assert kind == "error" and "could not read" in text

    browser = Browser("45")  # Bob presses the button in Alice's chat
    run_action(stack, browser, user=BOB)
    assert browser.calls == []  # refused before the question
    [(kind, text)] = browser.notifications
    assert kind == "error" and "only the owner of this chat" in text

    browser = Browser("45")
    run_action(stack, browser, chat_id="no-such-chat")
    [(kind, text)] = browser.notifications
    assert kind == "error" and "HTTP 404" in text

    browser = Browser("45")
    action = load_action({"api_url": stack.base, "feedback_token": "wrong-token"})
    asyncio.run(
        action.action(
            body={"chat_id": stack.alice_chat, "id": "m"},
            __user__={"id": ALICE},
            __event_emitter__=browser.event_emitter,
            __event_call__=browser.event_call,
        )
    )
    [(kind, text)] = browser.notifications
    assert kind == "error" and "misconfigured: tell your admin" in text and "HTTP 401" in text

    browser = Browser("45")
    action = load_action({"api_url": "http://127.0.0.1:9", "feedback_token": TOKEN, "timeout_seconds": 2})
    asyncio.run(
        action.action(
            body={"chat_id": stack.alice_chat},
            __user__={"id": ALICE},
            __event_emitter__=browser.event_emitter,
            __event_call__=browser.event_call,
        )
    )
    [(kind, text)] = browser.notifications
    assert kind == "error" and "misconfigured: tell your admin" in text and "could not be reached" in text

    browser = Browser("45")
    action = load_action({})
    asyncio.run(
        action.action(body={"chat_id": "c"}, __user__={"id": ALICE}, __event_emitter__=browser.event_emitter)
    )
    assert "Valves" in browser.notifications[0][1]
    assert confirmation_rows(stack.engine) == []


# --- the endpoint's rejections --------------------------------------------------------------


def _body(stack: Stack, **values: Any) -> dict[str, Any]:
    return {"chat_id": stack.alice_chat, "user_id": ALICE, **values}


@pytest.mark.parametrize(
    ("values", "parameter"),
    [
        ({"minutes": 0}, "minutes"),
        ({"minutes": -5}, "minutes"),
        ({"minutes": MAX_CONFIRMED_MINUTES + 1}, "minutes"),
        ({"minutes": 45.5}, "minutes"),
        ({"minutes": "45"}, "minutes"),
        ({"minutes": True}, "minutes"),
        ({"minutes": 10**30}, "minutes"),
        ({}, "query"),
        ({"minutes": 45, "did_not_help": True}, "query"),
        ({"minutes": 45, "new_work": True}, "query"),
        ({"preset": "15_60", "new_work": True}, "query"),
        ({"did_not_help": True, "new_work": True}, "query"),
        ({"new_work": "yes"}, "new_work"),
        ({"preset": "more"}, "query"),
        ({"preset": "more", "minutes": 200}, "query"),
        ({"preset": "15_60", "minutes": 45}, "query"),
        ({"preset": "a while"}, "preset"),
        ({"minutes": 45, "user_name": "Alice"}, "user_name"),
        ({"minutes": 45, "chat_id": "x" * 256}, "chat_id"),
        ({"minutes": 45, "chat_id": ""}, "chat_id"),
        ({"minutes": 45, "user_id": None}, "user_id"),
        ({"minutes": 45, "message_id": "a\x00b"}, "message_id"),
    ],
)
def test_bad_bodies_are_422_and_store_nothing(stack: Stack, values: dict[str, Any], parameter: str) -> None:
    response = stack.post(_body(stack, **values))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["parameter"] == parameter
    assert confirmation_rows(stack.engine) == []


def test_the_person_s_id_never_travels_in_a_url(stack: Stack) -> None:
    """Request URLs are logged (load balancers, Cloud Run): the raw Open WebUI user id must come in
    the body. A query string is refused, the old GET lookup does not exist, nothing is stored."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    ids = {"chat_id": stack.alice_chat, "user_id": ALICE}
    in_url = requests.post(stack.base + URL + "/state", params=ids, headers=headers, timeout=10)
    assert in_url.status_code == 422 and "not in the URL" in in_url.json()["detail"][0]["message"]
    submitted = requests.post(
        stack.base + URL,
        params={"user_id": ALICE},
        json={"chat_id": stack.alice_chat, "minutes": 45},
        headers=headers,
        timeout=10,
    )
    assert submitted.status_code == 422
    assert requests.get(stack.base + URL, params=ids, headers=headers, timeout=10).status_code == 405
    assert confirmation_rows(stack.engine) == []


def test_rejections_of_chat_owner_and_credentials(stack: Stack) -> None:
    cases = [
        (stack.post(_body(stack, minutes=45, chat_id="no-such-chat")), 404, "not_found"),
        (stack.post(_body(stack, minutes=45, chat_id=stack.bob_chat)), 403, "not_chat_owner"),
        (stack.post(_body(stack, minutes=45, user_id=BOB)), 403, "not_chat_owner"),
        (stack.get(chat_id=stack.bob_chat, user_id=ALICE), 403, "not_chat_owner"),
        (stack.get(chat_id="nope", user_id=ALICE), 404, "not_found"),
        (stack.post(_body(stack, minutes=45), token=None), 401, "unauthorized"),
        (stack.post(_body(stack, minutes=45), token="not-the-token"), 401, "unauthorized"),
        (stack.get(token=None, chat_id=stack.alice_chat, user_id=ALICE), 401, "unauthorized"),
    ]
    for response, status, error in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"] == error
    body = requests.post(
        stack.base + URL, data="[1, 2]", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert body.status_code == 422
    assert confirmation_rows(stack.engine) == []
    # the feedback credential opens the feedback routes and nothing else
    for path in ("/summary", "/export/csv", "/health"):
        other = requests.get(
            stack.base + API_PREFIX + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        assert other.status_code == 403  # a known role, not admitted here
    # an admin may use the routes too
    admin = stack.post(_body(stack, did_not_help=True), token="local-dev-password")
    assert admin.status_code == 200
    assert admin.json()["confirmation"]["did_not_help"] is True


def test_the_state_shows_the_estimate_and_the_previous_answer(stack: Stack) -> None:
    alice = pseudonymise_with_settings(ALICE, get_settings())
    first = stack.get(chat_id=stack.alice_chat, user_id=ALICE)
    assert first.status_code == 200
    assert first.json() == {"chat_id": stack.alice_chat, "estimate": None, "confirmation": None}
    add_analysis(
        stack.engine,
        stack.alice_chat,
        user_id_hash=alice,
        category="writing",
        estimator="heuristic",
        model=None,
    )
    assert stack.post(_body(stack, preset="1_4h")).status_code == 200
    state = stack.get(chat_id=stack.alice_chat, user_id=ALICE).json()
    assert state["estimate"] == {
        "low": 30,
        "most_likely": 60,
        "high": 120,
        "estimator": "heuristic",
        "model": None,
        "prompt_version": "2026-11-28.1",
        "task_category": "writing",
    }
    assert state["confirmation"]["confirmed_minutes"] == 120
    assert state["confirmation"]["preset"] == "1_4h"


def test_the_database_enforces_the_same_bound(analytics_engine: Engine) -> None:
    from tests.ground_truth_support import add_confirmation

    add_confirmation(analytics_engine, "c1", "a" * 64, confirmed_minutes=MAX_CONFIRMED_MINUTES)
    with pytest.raises(sa.exc.DBAPIError, match="time_confirmations_answer"):
        add_confirmation(analytics_engine, "c2", "a" * 64, confirmed_minutes=MAX_CONFIRMED_MINUTES + 1)
    with pytest.raises(sa.exc.DBAPIError, match="time_confirmations_answer"):
        add_confirmation(analytics_engine, "c3", "a" * 64, confirmed_minutes=30, did_not_help=True)
    with pytest.raises(sa.exc.DBAPIError, match="time_confirmations_answer"):
        add_confirmation(analytics_engine, "c4", "a" * 64, confirmed_minutes=30, new_work=True)
    with pytest.raises(sa.exc.DBAPIError, match="time_confirmations_answer"):
        add_confirmation(analytics_engine, "c5", "a" * 64, did_not_help=True, new_work=True)
    add_confirmation(analytics_engine, "c6", "a" * 64, new_work=True)


def test_new_work_is_stored_without_minutes_and_shown_back(stack: Stack) -> None:
    response = stack.post(_body(stack, new_work=True, message_id=stack.alice_message))
    assert response.status_code == 200, response.text
    answer = response.json()["confirmation"]
    assert (answer["new_work"], answer["did_not_help"], answer["confirmed_minutes"]) == (True, False, None)
    (row,) = confirmation_rows(stack.engine)
    assert (row["new_work"], row["did_not_help"], row["confirmed_minutes"]) == (True, False, None)
    # changing one's mind to minutes clears it
    assert stack.post(_body(stack, minutes=45)).json()["confirmation"]["new_work"] is False


def test_answers_per_person_and_day_are_limited_with_429_and_nothing_stored(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime

    monkeypatch.setenv("ANALYTICS_FEEDBACK_DAILY_LIMIT", "2")
    reset_settings_cache()
    settings = get_settings()
    clock = datetime(2026, 6, 10, 23, 59, 30, tzinfo=settings.zone)
    app = create_app(services=ApiServices(settings, clock=lambda: clock))
    with serve_wsgi(app) as base:
        limited = Stack(base, stack.engine, stack.alice_chat, stack.alice_message, stack.bob_chat, [])
        assert limited.post(_body(limited, minutes=30)).status_code == 200
        assert limited.post(_body(limited, minutes=40)).status_code == 200
        before = confirmation_rows(stack.engine)
        refused = limited.post(_body(limited, minutes=2400))
        assert refused.status_code == 429, refused.text
        assert refused.headers["Retry-After"] == "30"  # the next local midnight
        assert refused.json()["error"] == "rate_limited" and "2 answers per person and day" in refused.text
        assert confirmation_rows(stack.engine) == before  # nothing stored, answer_count unchanged
        assert before[0]["confirmed_minutes"] == 40 and before[0]["answer_count"] == 2
        # another person has their own allowance
        bob = limited.post({"chat_id": stack.bob_chat, "user_id": BOB, "minutes": 30})
        assert bob.status_code == 200, bob.text
    with stack.engine.connect() as connection:
        counted = connection.execute(
            sa.text("SELECT user_id_hash, answer_date, answers FROM feedback_answer_days ORDER BY answers")
        ).all()
    alice = pseudonymise_with_settings(ALICE, settings)
    assert [(row.user_id_hash == alice, str(row.answer_date), row.answers) for row in counted] == [
        (False, "2026-06-10", 1),
        (True, "2026-06-10", 2),
    ]
    assert all(ALICE not in row.user_id_hash and BOB not in row.user_id_hash for row in counted)
