"""The Open WebUI Action under the event-call answers of the oldest supported release and of 0.12.4.

Each `__event_call__` below returns or raises exactly what that release's code does, read in
its sources (the `open-webui` wheel of that version: backend `open_webui/...`, frontend
`src/lib/...` from the wheel's source maps). The api runs for real on loopback (the `stack`
fixture of tests/test_feedback.py); its request log shows which calls reached it.

The oldest supported release is the Action's `required_open_webui_version`, 0.8.9 (its
docstring says why).

- 0.8.9, backend `open_webui/socket/main.py:get_event_call`: `await sio.call("events", ...,
  timeout=WEBSOCKET_EVENT_CALLER_TIMEOUT)` and return what it returns. python-socketio 5.16.1
  (the version 0.8.9 pins) `AsyncServer.call` returns the browser callback's one argument (None
  for none), raises `socketio.exceptions.TimeoutError` when the timeout passes, and waits forever
  with `timeout=None` (`WEBSOCKET_EVENT_CALLER_TIMEOUT` unset, the default in `open_webui/env.py`).
  Frontend `lib/components/chat/Chat.svelte` (the `EventConfirmDialog` handlers): OK answers the
  typed text, or `true` when nothing was typed; Cancel answers `false`.
  `lib/components/common/ConfirmDialog.svelte:handleKeyDown`: Escape only hides the dialog (no
  answer), and so does a click beside it: the call then times out or waits forever.
- 0.12.4, backend `open_webui/socket/main.py:get_event_call`: a session that is gone or not the
  user's returns `{'error': 'Client session disconnected.'}`; a timeout returns `{'error': 'Event
  call timed out. The browser tab may be inactive or closed.'}`; else the browser's answer.
  Frontend `Chat.svelte`: for an input dialog OK answers `e.detail`, the typed text, `""` when
  nothing was typed; `ConfirmDialog.svelte:cancelHandler` (Cancel, Escape) answers `false`.
- Temporary chat ids: `'local'` (0.6.18 `Chat.svelte`), `` `local:${$socket?.id}` `` (0.8.9
  `Chat.svelte`), `temporary:<socket id>` (0.12.4 `lib/utils/chatId.ts:createTemporaryChatId`),
  and `channel:<id>` for channels (0.12.4 `open_webui/utils/chat_id.py:NON_SAVED_CHAT_ID_PREFIXES`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
import socketio.exceptions

from functions.api.feedback import NotTheOwner
from tests.ground_truth_support import confirmation_rows
from tests.test_feedback import ACTION_FILE, ALICE, BOB, TOKEN, Browser, Stack, load_action, run_action, stack

__all__ = ["stack"]  # the fixture, imported from tests/test_feedback.py

NOT_RECORDED = "your answer was not recorded"
MISCONFIGURED = "Time saved is misconfigured: tell your admin"
SOCKET_ID = "Kq3xv9-socket-id"


class ReleaseBrowser(Browser):
    """`__event_call__` as one release's backend hands over the browser's answer (or none)."""

    def __init__(self, *answers: Callable[[], Any]) -> None:
        super().__init__()
        self.answers = list(answers)

    async def event_call(self, event: dict[str, Any]) -> Any:
        self.calls.append(event)
        return await self.answers.pop(0)()

    def assert_toast_only(self) -> tuple[str, str]:
        """The one toast shown; no status event, which Open WebUI would store in the chat."""
        assert [event["type"] for event in self.events] == ["notification"], self.events
        [toast] = self.notifications
        return toast


def typed(text: str) -> Callable[[], Any]:
    async def answer() -> Any:
        return text  # both releases: OK answers the typed text

    return answer


def returns(value: Any) -> Callable[[], Any]:
    async def answer() -> Any:
        return value

    return answer


async def v0_8_9_socketio_timeout() -> Any:
    # python-socketio 5.16.1 AsyncServer.call: `raise exceptions.TimeoutError() from None`
    raise socketio.exceptions.TimeoutError()


async def v0_8_9_waits_forever() -> Any:
    # AsyncServer.call with timeout=None: `await asyncio.wait_for(callback_event.wait(), None)`
    await asyncio.Event().wait()


V0_8_9_UNANSWERED = {
    "empty OK (true)": returns(True),
    "Cancel (false)": returns(False),
    "a callback without arguments (None)": returns(None),
    "Escape with WEBSOCKET_EVENT_CALLER_TIMEOUT (socketio TimeoutError)": v0_8_9_socketio_timeout,
    "Escape without it (no answer ever)": v0_8_9_waits_forever,
}
V0_12_4_UNANSWERED = {
    "empty OK ('')": returns(""),
    "Cancel or Escape (false)": returns(False),
    "a lost browser session": returns({"error": "Client session disconnected."}),
    "a timeout": returns({"error": "Event call timed out. The browser tab may be inactive or closed."}),
}


def _run(stack: Stack, browser: Browser, *, user: str = ALICE, chat_id: str | None = None) -> None:
    action_valves = {"api_url": stack.base, "feedback_token": TOKEN, "answer_timeout_seconds": 0.5}
    run_action(stack, browser, user=user, chat_id=chat_id, valves=action_valves)


@pytest.mark.parametrize(
    "chat_id",
    ["local", f"local:{SOCKET_ID}", f"temporary:{SOCKET_ID}", "channel:3b0c7f1e"],
    ids=["0.6.18 local", "0.8.9 local:", "0.12.4 temporary:", "channel:"],
)
def test_a_temporary_chat_is_told_without_calling_the_api(stack: Stack, chat_id: str) -> None:
    browser = ReleaseBrowser(typed("45"))
    _run(stack, browser, chat_id=chat_id)
    assert browser.assert_toast_only() == (
        "warning",
        "Time saved: answers are kept for saved chats only, not for a temporary chat.",
    )
    assert browser.calls == [] and stack.requests == []  # no question, no request to the api
    assert confirmation_rows(stack.engine) == []


@pytest.mark.parametrize(
    "answer",
    [*V0_8_9_UNANSWERED.values(), *V0_12_4_UNANSWERED.values()],
    ids=[*(f"0.8.9 {key}" for key in V0_8_9_UNANSWERED), *(f"0.12.4 {key}" for key in V0_12_4_UNANSWERED)],
)
def test_an_unanswered_or_lost_dialog_is_an_error_toast(stack: Stack, answer: Callable[[], Any]) -> None:
    browser = ReleaseBrowser(answer)
    _run(stack, browser)
    kind, text = browser.assert_toast_only()
    assert kind == "error" and NOT_RECORDED in text, text
    assert "no answer recorded" not in text
    assert stack.requests == ["/api/v1/analytics/feedback/state"]  # asked, nothing posted
    assert confirmation_rows(stack.engine) == []


@pytest.mark.parametrize(
    "answer", [v0_8_9_socketio_timeout, returns({"error": "Client session disconnected."})]
)
def test_the_hours_dialog_after_more_is_lost_the_same_way(stack: Stack, answer: Callable[[], Any]) -> None:
    browser = ReleaseBrowser(typed("more"), answer)
    _run(stack, browser)
    kind, text = browser.assert_toast_only()
    assert kind == "error" and NOT_RECORDED in text
    assert len(browser.calls) == 2 and confirmation_rows(stack.engine) == []


def test_a_normal_answer_is_recorded(stack: Stack) -> None:
    # both releases hand over the typed text as it is
    browser = ReleaseBrowser(typed("2 h"))
    _run(stack, browser, chat_id=stack.alice_chat)
    assert browser.assert_toast_only() == ("success", "Thanks: recorded 120 min by hand.")
    assert browser.calls[0]["type"] == "input" and set(browser.calls[0]["data"]) == {
        "title",
        "message",
        "placeholder",
    }
    [row] = confirmation_rows(stack.engine)
    assert (row["conversation_id"], row["confirmed_minutes"]) == (stack.alice_chat, 120)
    assert stack.requests == ["/api/v1/analytics/feedback/state", "/api/v1/analytics/feedback"]


def test_someone_else_s_chat_is_a_toast_and_no_status_in_that_chat(stack: Stack) -> None:
    # 0.8.9 has no ownership check on /api/chat/actions: Bob's press reaches the Action
    browser = ReleaseBrowser(typed("45"))
    _run(stack, browser, user=BOB)
    kind, text = browser.assert_toast_only()
    assert kind == "error" and "only the owner of this chat can answer for it" in text
    assert browser.calls == [] and confirmation_rows(stack.engine) == []


def test_the_action_knows_the_api_s_owner_error_code(stack: Stack) -> None:
    module_text = ACTION_FILE.read_text(encoding="utf-8")
    assert re.search(rf'^NOT_CHAT_OWNER = "{NotTheOwner.error_code}"', module_text, re.MULTILINE)


@pytest.mark.parametrize(
    ("valves", "detail"),
    [
        ({"feedback_token": "not-the-token"}, "HTTP 401"),
        ({"api_url": "http://127.0.0.1:9", "timeout_seconds": 2}, "could not be reached"),
        ({"api_url": ""}, "Valves"),
    ],
    ids=["wrong token", "api down", "valves unset"],
)
def test_a_misconfiguration_tells_the_person_to_tell_the_admin(
    stack: Stack, valves: dict[str, Any], detail: str
) -> None:
    browser = ReleaseBrowser(typed("45"))
    run_action(stack, browser, valves={"api_url": stack.base, "feedback_token": TOKEN, **valves})
    kind, text = browser.assert_toast_only()
    assert kind == "error" and text.startswith(MISCONFIGURED) and detail in text, text
    assert browser.calls == [] and confirmation_rows(stack.engine) == []


def test_the_token_valve_is_masked_in_the_admin_panel() -> None:
    # Open WebUI 0.8.9+ `lib/components/common/Valves.svelte` shows a property whose schema has
    # `input.type == "password"` as a SensitiveInput; the schema is the Valves' JSON schema
    action = load_action({})
    properties = action.Valves.model_json_schema()["properties"]
    assert properties["feedback_token"]["input"] == {"type": "password"}
    assert "input" not in properties["api_url"]


def test_a_credential_of_another_role_is_a_misconfiguration_but_the_owner_check_is_not() -> None:
    refusal = _action_globals()["_refusal"]
    viewer = {"error": "forbidden", "message": "the viewer role may not call this route"}
    assert refusal(403, viewer).startswith(MISCONFIGURED)
    assert not refusal(403, {"error": NotTheOwner.error_code}).startswith(MISCONFIGURED)
    assert "try again later or tell your admin" in refusal(503, {})


def test_the_frontmatter_open_webui_reads_claims_0_8_9_and_says_how_to_install() -> None:
    # open_webui/utils/plugin.py:extract_frontmatter (0.8.9 and 0.12.4 alike): `key: value`
    # lines from the first line `"""` up to the next line holding `"""`
    pattern = re.compile(r"^\s*([a-z_]+):\s*(.*)\s*$", re.IGNORECASE)
    lines = ACTION_FILE.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '"""'
    block = lines[1 : next(i for i, line in enumerate(lines[1:], 1) if '"""' in line)]
    frontmatter = dict(match.groups() for line in block if (match := pattern.match(line)))
    assert set(frontmatter) == {"title", "description", "version", "required_open_webui_version", "license"}
    assert frontmatter["required_open_webui_version"] == "0.8.9"
    notes = " ".join(" ".join(block).split())
    assert "type time_savings_feedback as the Function ID" in notes
    assert "Import From Link" in notes and "Import from URL" in notes


def _action_globals() -> dict[str, Any]:
    """The namespace of the Action's module, loaded as Open WebUI loads it."""
    action = load_action({})
    return type(action).__init__.__globals__


def test_the_dialog_lists_and_reads_every_answer_of_the_one_list() -> None:
    namespace = _action_globals()
    message = namespace["describe_estimate"]({})
    for label, fields, spellings in namespace["ANSWERS"]:
        assert f'"{label}"' in message
        for typed_text in (label, label.upper(), *spellings):
            assert namespace["parse_answer"](typed_text) == fields
