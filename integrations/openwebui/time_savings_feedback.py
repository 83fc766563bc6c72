"""
title: Time saved? (Time Savings Analytics)
description: Asks "How long would this have taken you without AI?" under an answer and sends the reply to Time Savings Analytics, which compares it with its own estimate.
version: 1.0.0
required_open_webui_version: 0.6.0
license: MIT
"""

# An Open WebUI *Action* function: import this file in Open WebUI › Admin panel ›
# Functions (the "+" button, or "Import"), enable it, and set its two Valves:
#   api_url         the api function's base URL (e.g. https://analytics.example.com)
#   feedback_token  the value of ANALYTICS_FEEDBACK_TOKEN of that deployment
# The token opens the feedback endpoint and nothing else; never put the dashboard
# password here. Open WebUI already ships aiohttp and pydantic; nothing to install.

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from pydantic import BaseModel, Field

FEEDBACK_PATH = "/api/v1/analytics/feedback"
QUESTION = "How long would this have taken you without AI?"
MAX_MINUTES = 2400  # the api refuses more (40 hours)
PRESETS = (
    # (what the person may type, the preset id the api knows, its label)
    (("<15", "< 15", "<15 min", "< 15 min", "under 15", "under 15 min"), "under_15", "< 15 min"),
    (("15-60", "15–60", "15-60 min", "15–60 min"), "15_60", "15–60 min"),
    (("1-4h", "1–4h", "1-4 h", "1–4 h", "1-4 hours", "1–4 hours"), "1_4h", "1–4 h"),
    (("more", "more than 4 h", "> 4 h", ">4h"), "more", "more"),
)
DID_NOT_HELP = ("ai did not help", "did not help", "no help", "not helpful", "didn't help", "none")
NEW_WORK_LABEL = "I would not have done this without AI"
NEW_WORK = (NEW_WORK_LABEL.lower(), "would not have done this", "wouldn't have done this", "new work", "new")
_BARE_NUMBER = re.compile(r"^\d+(?:[.,]\d+)?$")
_AMOUNT = re.compile(
    r"^(?P<number>\d+(?:[.,]\d+)?)\s*(?P<unit>m|min|mins|minutes?|h|hr|hrs|hours?)?$", re.IGNORECASE
)

Emitter = Callable[[dict[str, Any]], Awaitable[None]]
Caller = Callable[[dict[str, Any]], Awaitable[Any]]


def parse_answer(text: str) -> dict[str, Any]:
    """The api's answer fields for what the person typed; ValueError when it cannot be read.

    `{"did_not_help": True}`, `{"new_work": True}` (new work, not time saved), `{"preset": ...}`, `{"preset": "more"}` (minutes still to ask),
    or `{"minutes": n}`. A bare number is minutes; `2 h` / `1.5h` are hours.
    """
    cleaned = " ".join(text.strip().lower().split())
    if cleaned in DID_NOT_HELP:
        return {"did_not_help": True}
    if cleaned in NEW_WORK:
        return {"new_work": True}
    for spellings, preset, _label in PRESETS:
        if cleaned in spellings:
            return {"preset": preset}
    return {"minutes": parse_minutes(cleaned)}


def parse_minutes(text: str) -> int:
    """Minutes from `45`, `45 min`, `2 h`, `1,5 h`; ValueError outside 1–MAX_MINUTES."""
    match = _AMOUNT.match(" ".join(text.strip().lower().split()))
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
    labels = ", ".join(f'"{label}"' for _spellings, _preset, label in PRESETS)
    lines.append(
        f'Type minutes (e.g. 45), hours (e.g. 2 h), one of {labels}, "AI did not help", '
        f'or "{NEW_WORK_LABEL}" (or "new work").'
    )
    return "\n\n".join(lines)


class Action:
    class Valves(BaseModel):
        api_url: str = Field(
            default="",
            description="Base URL of the Time Savings Analytics api function (no trailing path).",
        )
        feedback_token: str = Field(
            default="",
            description="The deployment's ANALYTICS_FEEDBACK_TOKEN (not the dashboard password).",
        )
        timeout_seconds: float = Field(default=10.0, description="Seconds to wait for the api.")

    def __init__(self) -> None:
        self.valves = self.Valves()

    async def action(
        self,
        body: dict,
        __user__: dict | None = None,
        __event_emitter__: Emitter | None = None,
        __event_call__: Caller | None = None,
    ) -> dict | None:
        async def status(description: str, *, done: bool = True, error: bool = False) -> None:
            if __event_emitter__ is not None:
                await __event_emitter__(
                    {"type": "status", "data": {"description": description, "done": done, "hidden": False}}
                )
                if done:
                    kind = "error" if error else "success"
                    await __event_emitter__(
                        {"type": "notification", "data": {"type": kind, "content": description}}
                    )

        chat_id = (body or {}).get("chat_id")
        user_id = (__user__ or {}).get("id")
        if not self.valves.api_url or not self.valves.feedback_token:
            await status(
                "Time saved: the function's Valves (api_url, feedback_token) are not set.", error=True
            )
            return None
        if not chat_id or not user_id or str(chat_id).startswith("local:") or __event_call__ is None:
            await status("Time saved: this chat is not saved, so it cannot be rated.", error=True)
            return None
        identity = {"chat_id": str(chat_id), "user_id": str(user_id)}
        url = self.valves.api_url.rstrip("/") + FEEDBACK_PATH
        headers = {"Authorization": f"Bearer {self.valves.feedback_token}"}
        timeout = aiohttp.ClientTimeout(total=self.valves.timeout_seconds)
        try:
            async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
                # the ids go in the body, never the URL: request URLs end up in logs
                async with session.post(url + "/state", json=identity) as response:
                    state = await _json(response)
                    if response.status != 200:
                        await status(f"Time saved: {_problem(response.status, state)}", error=True)
                        return None
                answer = await self._ask(__event_call__, describe_estimate(state))
                if answer is None:
                    await status("Time saved: no answer recorded.")
                    return None
                payload = {**identity, **answer}
                if body.get("id"):
                    payload["message_id"] = str(body["id"])
                async with session.post(url, json=payload) as response:
                    receipt = await _json(response)
                    if response.status != 200:
                        await status(
                            f"Time saved: not recorded: {_problem(response.status, receipt)}", error=True
                        )
                        return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            await status(
                f"Time saved: the analytics service could not be reached ({type(exc).__name__}).", error=True
            )
            return None
        except ValueError as exc:
            await status(f"Time saved: {exc}", error=True)
            return None
        confirmation = receipt.get("confirmation") or {}
        if confirmation.get("did_not_help"):
            await status("Thanks: recorded that AI did not help with this.")
        elif confirmation.get("new_work"):
            await status("Thanks: recorded as new work you would not have done without AI.")
        else:
            await status(f"Thanks: recorded {confirmation.get('confirmed_minutes')} min by hand.")
        return None

    async def _ask(self, event_call: Caller, message: str) -> dict[str, Any] | None:
        """The answer fields, or None when the person cancelled (ValueError when unreadable)."""
        reply = await event_call(
            {
                "type": "input",
                "data": {"title": QUESTION, "message": message, "placeholder": "e.g. 45, 2 h, 15–60 min"},
            }
        )
        if not isinstance(reply, str) or not reply.strip():
            return None  # cancel answers False; an empty confirm answers True
        answer = parse_answer(reply)
        if answer.get("preset") == "more":
            hours = await event_call(
                {
                    "type": "input",
                    "data": {
                        "title": QUESTION,
                        "message": "More than 4 hours: about how many hours? (e.g. 6, or 400 min)",
                        "placeholder": "e.g. 6 h",
                    },
                }
            )
            if not isinstance(hours, str) or not hours.strip():
                return None
            text = hours.strip()
            # a bare number is hours here, with a decimal point or comma (`6`, `4.5`, `4,5`)
            answer["minutes"] = parse_minutes(f"{text} h" if _BARE_NUMBER.match(text) else text)
            if answer["minutes"] <= 240:
                raise ValueError("'more' means more than 4 hours")
        return answer


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        data = await response.json(content_type=None)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _problem(status: int, data: dict[str, Any]) -> str:
    message = data.get("message") or data.get("error") or "unexpected answer"
    return f"{message} (HTTP {status})"
