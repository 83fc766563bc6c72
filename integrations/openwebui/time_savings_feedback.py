"""
title: Time saved? (Time Savings Analytics)
description: Asks "How long would this have taken you without AI?" under an answer and sends the reply to Time Savings Analytics, which compares it with its own estimate.
version: 1.1.0
required_open_webui_version: 0.8.9
license: MIT

Why 0.8.9, read in Open WebUI's own sources of the releases 0.6.18, 0.8.9, 0.9.3, 0.10.2,
0.11.0 and 0.12.4 (releases between them were not read). From 0.8.9 every piece this Action
relies on is there and behaves as handled below; 0.6.18 lacks one that matters.
- The feedback token Valve is masked in the admin panel only where the Valves form shows a
  field whose schema has input type password as a hidden input (common/Valves.svelte and
  SensitiveInput in 0.8.9 and later; 0.6.18 shows it in clear text).
- The question is an input event of the chat page; its answer is the typed text, true for
  an empty OK (0.8.9), the empty string for an empty OK (0.10.2 and later), false for Cancel.
- A dialog nobody answers (Escape or a click beside it before 0.10.2, a closed tab) makes
  the event call raise the timeout of python-socketio (0.8.9 to 0.11 with
  WEBSOCKET_EVENT_CALLER_TIMEOUT set), wait forever (the same releases without it), or
  answer a dict with an error key (a lost browser session from 0.9.3, and a timeout in 0.12).
  Each of these ends in an error toast, never a crash: the wait has its own limit here.
- Temporary chats carry no saved id: local (0.6.18), local and a colon (0.8.9 to 0.10.2,
  still known later), temporary and a colon (0.11.0 and later); channel and a colon are channels (seen from
  0.10.2). None of them reaches the analytics service.
- Every message goes to the person as a toast (a notification event), never as a status:
  Open WebUI writes a status into the chat's stored message, and before 0.11.0 it did not
  check that the chat was the caller's own.

Install, Open WebUI 0.8.9 to 0.11: Admin panel, Functions, the plus button, then either
New Function (paste this file) or Import From Link (the raw URL of this file). The
Import button (Import JSON in 0.11) reads only JSON exports of Open WebUI, not this file.
Install, Open WebUI 0.12: Admin panel, Functions, Create (paste this file) or Import from
URL; Import JSON again is for exports only.
Either way type time_savings_feedback as the Function ID (Open WebUI refuses an id that is
not a Python identifier, which the title would give in 0.8.9), save, enable the function,
and set its Valves with the gear button (see the comment below). Then enable it for
models (Workspace, Models, a model, Actions) or make it global.
"""

# The Valves:
#   api_url           the api function's base URL (e.g. https://analytics.example.com)
#   feedback_token    the value of ANALYTICS_FEEDBACK_TOKEN of that deployment (masked)
#   timeout_seconds   how long to wait for the analytics service
#   answer_timeout_seconds  how long the question waits for the person
# The token opens the feedback endpoint and nothing else; never put the dashboard
# password here. Open WebUI already ships aiohttp and pydantic; nothing to install.

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from pydantic import BaseModel, Field

FEEDBACK_PATH = "/api/v1/analytics/feedback"
QUESTION = "How long would this have taken you without AI?"
MAX_MINUTES = 2400  # the api refuses more (40 hours)
NOT_CHAT_OWNER = "not_chat_owner"  # the api's error code for someone else's chat
NOT_SAVED_CHAT_IDS = ("local",)  # a temporary chat in Open WebUI 0.6.18
NOT_SAVED_CHAT_PREFIXES = ("local:", "temporary:", "channel:")  # 0.6.33+, 0.11.0+, channels
ANSWERS: tuple[tuple[str, dict[str, Any], tuple[str, ...]], ...] = (
    # (the label the dialog shows, the api's answer fields, what else the person may type)
    ("< 15 min", {"preset": "under_15"}, ("<15", "<15 min", "under 15", "under 15 min")),
    ("15–60 min", {"preset": "15_60"}, ("15-60", "15–60", "15-60 min")),
    ("1–4 h", {"preset": "1_4h"}, ("1-4h", "1–4h", "1-4 h", "1-4 hours", "1–4 hours")),
    ("more", {"preset": "more"}, ("more than 4 h", "> 4 h", ">4h")),  # the hours are asked next
    (
        "AI did not help",
        {"did_not_help": True},
        ("did not help", "no help", "not helpful", "didn't help", "none"),
    ),
    (  # new work, not time saved: counted apart, never as hours saved
        "I would not have done this without AI",
        {"new_work": True},
        ("would not have done this", "wouldn't have done this", "new work", "new"),
    ),
)
"""The dialog's answers besides a typed time, in the order it lists them: one line each."""
_BARE_NUMBER = re.compile(r"^\d+(?:[.,]\d+)?$")
_AMOUNT = re.compile(
    r"^(?P<number>\d+(?:[.,]\d+)?)\s*(?P<unit>m|min|mins|minutes?|h|hr|hrs|hours?)?$", re.IGNORECASE
)

Emitter = Callable[[dict[str, Any]], Awaitable[None]]
Caller = Callable[[dict[str, Any]], Awaitable[Any]]

MISCONFIGURED = "Time saved is misconfigured: tell your admin"
NOT_RECORDED = "your answer was not recorded"


class NotRecorded(Exception):
    """The person's answer did not reach the api; the message says why and what to do."""


def _clean(text: str) -> str:
    return " ".join(text.strip().lower().split())


def parse_answer(text: str) -> dict[str, Any]:
    """The api's answer fields for what the person typed; ValueError when it cannot be read.

    One of `ANSWERS` (by its label or another spelling) or `{"minutes": n}`: a bare number
    is minutes; `2 h` / `1.5h` are hours. `{"preset": "more"}` still needs its minutes.
    """
    cleaned = _clean(text)
    for label, fields, spellings in ANSWERS:
        if cleaned == _clean(label) or cleaned in spellings:
            return dict(fields)
    return {"minutes": parse_minutes(cleaned)}


def parse_minutes(text: str) -> int:
    """Minutes from `45`, `45 min`, `2 h`, `1,5 h`; ValueError outside 1–MAX_MINUTES."""
    match = _AMOUNT.match(_clean(text))
    if not match:
        raise ValueError(f"could not read {text!r} as a time: type minutes (45), hours (2 h) or a preset")
    number = float(match.group("number").replace(",", "."))
    unit = (match.group("unit") or "min").lower()
    minutes = number * 60 if unit.startswith("h") else number
    if not math.isfinite(minutes) or round(minutes) < 1 or round(minutes) > MAX_MINUTES:
        raise ValueError(f"give a time between 1 minute and {MAX_MINUTES // 60} hours")
    return round(minutes)


def describe_estimate(state: dict[str, Any]) -> str:
    """The lines above the question: the current estimate and the person's previous answer."""
    lines = []
    estimate = state.get("estimate")
    if estimate:
        lines.append(
            f"Current estimate for this conversation: about {estimate['most_likely']} min by hand "
            f"({estimate['low']}–{estimate['high']} min)."
        )
    else:
        lines.append("This conversation has not been estimated yet; your answer is kept until it is.")
    previous = state.get("confirmation")
    if previous:
        before = (
            "that AI did not help"
            if previous.get("did_not_help")
            else "new work"
            if previous.get("new_work")
            else f"{previous.get('confirmed_minutes')} min"
        )
        lines.append(f"You answered {before} before; a new answer replaces it.")
    labels = ", ".join(f'"{label}"' for label, _fields, _spellings in ANSWERS)
    lines.append(f"Type minutes (e.g. 45), hours (e.g. 2 h), or one of {labels}.")
    return "\n\n".join(lines)


def is_saved_chat(chat_id: Any) -> bool:
    """Whether Open WebUI keeps this chat (temporary chats and channels have no saved id)."""
    text = str(chat_id or "")
    return bool(text) and text not in NOT_SAVED_CHAT_IDS and not text.startswith(NOT_SAVED_CHAT_PREFIXES)


def _is_timeout(exc: Exception) -> bool:
    """Python's or python-socketio's TimeoutError (matched by name: socketio may be missing)."""
    return isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutError"


class Action:
    class Valves(BaseModel):
        api_url: str = Field(
            default="",
            description="Base URL of the Time Savings Analytics api function (no trailing path).",
        )
        feedback_token: str = Field(
            default="",
            description="The deployment's ANALYTICS_FEEDBACK_TOKEN (not the dashboard password).",
            json_schema_extra={"input": {"type": "password"}},  # Open WebUI 0.8.9+ masks it
        )
        timeout_seconds: float = Field(default=10.0, description="Seconds to wait for the analytics service.")
        answer_timeout_seconds: float = Field(
            default=300.0, description="Seconds the question waits for the person before it gives up."
        )

    def __init__(self) -> None:
        self.valves = self.Valves()

    async def action(
        self,
        body: dict,
        __user__: dict | None = None,
        __event_emitter__: Emitter | None = None,
        __event_call__: Caller | None = None,
    ) -> dict | None:
        async def toast(kind: str, content: str) -> None:
            # a notification is shown to the person only; a status would be stored in the chat
            if __event_emitter__ is not None:
                await __event_emitter__({"type": "notification", "data": {"type": kind, "content": content}})

        chat_id = (body or {}).get("chat_id")
        user_id = (__user__ or {}).get("id")
        if not self.valves.api_url or not self.valves.feedback_token:
            await toast(
                "error", f"{MISCONFIGURED} (the function's Valves api_url and feedback_token are not set)."
            )
            return None
        if not is_saved_chat(chat_id):
            await toast(
                "warning", "Time saved: answers are kept for saved chats only, not for a temporary chat."
            )
            return None
        if not user_id:
            await toast("error", f"{MISCONFIGURED} (Open WebUI did not say who pressed the button).")
            return None
        if __event_call__ is None:
            await toast("error", f"Time saved: Open WebUI could not open the question here; {NOT_RECORDED}.")
            return None
        try:
            confirmation = await self._record(body, str(chat_id), str(user_id), __event_call__)
        except NotRecorded as exc:
            text = str(exc)  # a misconfiguration names "Time saved" itself
            await toast("error", text if text.startswith("Time saved") else f"Time saved: {text}")
            return None
        if confirmation.get("did_not_help"):
            await toast("success", "Thanks: recorded that AI did not help with this.")
        elif confirmation.get("new_work"):
            await toast("success", "Thanks: recorded as new work you would not have done without AI.")
        else:
            await toast("success", f"Thanks: recorded {confirmation.get('confirmed_minutes')} min by hand.")
        return None

    async def _record(self, body: dict, chat_id: str, user_id: str, event_call: Caller) -> dict[str, Any]:
        """Ask the person and store the answer; the stored confirmation, or NotRecorded."""
        identity = {"chat_id": chat_id, "user_id": user_id}
        url = self.valves.api_url.rstrip("/") + FEEDBACK_PATH
        headers = {"Authorization": f"Bearer {self.valves.feedback_token}"}
        timeout = aiohttp.ClientTimeout(total=self.valves.timeout_seconds)
        try:
            async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
                # the ids go in the body, never the URL: request URLs end up in logs
                state = await _post(session, url + "/state", identity)
                try:
                    answer = await self._ask(event_call, describe_estimate(state))
                except ValueError as exc:
                    raise NotRecorded(f"{exc}; {NOT_RECORDED}. Press the button to try again.") from None
                payload = {**identity, **answer}
                if body.get("id"):
                    payload["message_id"] = str(body["id"])
                receipt = await _post(session, url, payload)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NotRecorded(
                f"{MISCONFIGURED} (the analytics service at the api_url Valve could not be reached: "
                f"{type(exc).__name__}); {NOT_RECORDED}."
            ) from None
        confirmation = receipt.get("confirmation")
        return confirmation if isinstance(confirmation, dict) else {}

    async def _ask(self, event_call: Caller, message: str) -> dict[str, Any]:
        """The answer fields; NotRecorded when no answer came back, ValueError when unreadable."""
        reply = await self._dialog(event_call, message, "e.g. 45, 2 h, 15–60 min")
        answer = parse_answer(reply)
        if answer.get("preset") == "more":
            text = await self._dialog(
                event_call, "More than 4 hours: about how many hours? (e.g. 6, or 400 min)", "e.g. 6 h"
            )
            # a bare number is hours here, with a decimal point or comma (`6`, `4.5`, `4,5`)
            answer["minutes"] = parse_minutes(f"{text} h" if _BARE_NUMBER.match(text) else text)
            if answer["minutes"] <= 240:
                raise ValueError("'more' means more than 4 hours")
        return answer

    async def _dialog(self, event_call: Caller, message: str, placeholder: str) -> str:
        """The text typed into one input dialog; NotRecorded for anything else Open WebUI answers."""
        event = {"type": "input", "data": {"title": QUESTION, "message": message, "placeholder": placeholder}}
        try:
            reply = await asyncio.wait_for(event_call(event), timeout=self.valves.answer_timeout_seconds)
        except Exception as exc:  # whatever the call raises (a socketio timeout too), the answer is lost
            if _is_timeout(exc):
                raise NotRecorded(
                    f"the question was closed or not answered in time; {NOT_RECORDED}."
                ) from None
            raise NotRecorded(
                f"the question could not be asked ({type(exc).__name__}); {NOT_RECORDED}."
            ) from None
        if isinstance(reply, dict) and "error" in reply:  # a lost browser session (0.9.3+), a timeout (0.12)
            raise NotRecorded(
                f"the question was lost ({reply['error']}); {NOT_RECORDED}. Press the button again."
            )
        if reply is False:
            raise NotRecorded(f"cancelled; {NOT_RECORDED}.")
        if not isinstance(reply, str) or not reply.strip():  # True / "" for an empty OK, None
            raise NotRecorded(f"no time was typed; {NOT_RECORDED}.")
        return reply.strip()


async def _post(session: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The api's JSON answer; NotRecorded with what the person should do on a refusal."""
    async with session.post(url, json=payload) as response:
        data = await _json(response)
        if response.status == 200:
            return data
    raise NotRecorded(f"{_refusal(response.status, data)}; {NOT_RECORDED}.")


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        data = await response.json(content_type=None)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _refusal(status: int, data: dict[str, Any]) -> str:
    """What a refusal of the api means to the person pressing the button."""
    if data.get("error") == NOT_CHAT_OWNER:
        return "only the owner of this chat can answer for it"
    if status in (401, 403):
        return f"{MISCONFIGURED} (the analytics service refused the feedback token, HTTP {status})"
    if status == 404:
        return "the analytics service does not find this chat in Open WebUI (HTTP 404); if it stays so, tell your admin"
    if status == 429:
        return "too many answers in a short time; try again in a minute"
    if status >= 500:
        return f"the analytics service failed (HTTP {status}); try again later or tell your admin"
    message = data.get("message") or data.get("error") or "unexpected answer"
    return f"the analytics service refused the answer: {message} (HTTP {status})"
