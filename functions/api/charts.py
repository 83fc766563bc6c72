"""Charts rendered on the server by pygal as standalone SVG documents (no JavaScript).

The dashboard embeds them with `<img src>`, so the page's Content-Security-Policy
needs no inline styles or scripts; pygal's own `<style>` lives inside the SVG
document, which is served with its own narrow policy. Hours, not minutes, on axes.

Labels are data anyone can write (a model id, a group name, a tag): any length, any
characters. pygal 3.1 loops forever, growing a list without bound, when the labels
on the left of a horizontal bar chart are so wide that no room is left for the axis
title (`pygal.util.split_title` with a width of zero: about 61 characters at our
width); the line chart's labels are our own dates. So every label is cleaned of
control and bidi-override characters and shortened to `MAX_LABEL_CHARS` with an
ellipsis in the middle (the head and the distinguishing tail of a model id survive);
the full label is in the table under each chart (an SVG shown through `<img>` gets
no pointer events, so a `<title>` tooltip would never show). And every render runs
in a forked child process with a time budget and a memory cap: whatever a future
label or library version does, the worker answers an error image (`ChartRenderFailed`)
after `RENDER_BUDGET_SECONDS` instead of hanging.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import re
import resource
import unicodedata
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import flask

from functions.read.schemas import DailyPoint, Figures, WithheldPoint
from shared.config import Settings
from shared.errors import AnalyticsError

__all__ = [
    "ERROR_SVG",
    "MAX_LABEL_CHARS",
    "NARROW_BREAKDOWN",
    "NARROW_TREND",
    "RENDER_BUDGET_SECONDS",
    "ChartRenderFailed",
    "breakdown_chart",
    "calibration_chart",
    "chart_label",
    "render_bounded",
    "trend_chart",
]

MAX_LABEL_CHARS = 32
"""Longest label drawn in a chart; pygal's layout breaks at about 61 (see above)."""
RENDER_BUDGET_SECONDS: float = Settings.model_fields["chart_render_seconds"].default
"""Default wall-clock limit of one chart render (`ANALYTICS_CHART_RENDER_SECONDS`; a normal one
takes a few milliseconds, plus about 20 ms to fork)."""
_RENDER_MEMORY_BYTES = 512 * 1024 * 1024  # address space a render may add to the worker's
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})  # controls, bidi overrides, zero-width


class ChartRenderFailed(AnalyticsError):
    """A chart did not render within its time or memory budget."""


ERROR_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="480" height="80" viewBox="0 0 480 80">'
    b'<rect width="480" height="80" fill="#fef2f2"/>'
    b'<text x="16" y="45" font-family="system-ui, sans-serif" font-size="14" fill="#991b1b">'
    b"This chart could not be drawn; the table shows its figures.</text></svg>"
)
"""What a chart answers when it could not be drawn in time."""


def _visible(text: str) -> str:
    """`text` without control, format (bidi, zero-width) and private characters; runs of space as one."""
    kept = "".join(
        " " if character.isspace() else character
        for character in text
        if character.isspace() or unicodedata.category(character) not in _INVISIBLE
    )
    return " ".join(kept.split())


def chart_label(label: str) -> str:
    """`label` as a chart draws it: visible characters only, at most `MAX_LABEL_CHARS`.

    A long label keeps its head and its tail around an ellipsis (the tail is what tells
    `...-20240620-v1:0` from `...-20241022-v2:0`). Only a bounded slice of each end is
    read, so a label of any length costs the same.
    """
    window = MAX_LABEL_CHARS * 8
    if len(label) <= 2 * window:
        cleaned = _visible(label) or "–"
        if len(cleaned) <= MAX_LABEL_CHARS:
            return cleaned
        head, end = cleaned, cleaned
    else:
        head, end = _visible(label[:window]), _visible(label[-window:])
    tail = (MAX_LABEL_CHARS - 1) * 2 // 5
    return head[: MAX_LABEL_CHARS - 1 - tail] + "…" + end[-tail:]


def _render_child(render: Callable[[], bytes], sender: Connection) -> None:
    """In the forked child: cap the address space, render, send the result (or the error)."""
    try:
        pages = Path("/proc/self/statm").read_text(encoding="ascii").split()[0]
        current = int(pages) * os.sysconf("SC_PAGE_SIZE")
        limit = current + _RENDER_MEMORY_BYTES
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        sender.send((True, render()))
    except BaseException as exc:  # reported to the parent, which raises ChartRenderFailed
        sender.send((False, f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()


def render_bounded(render: Callable[[], bytes], budget_seconds: float = RENDER_BUDGET_SECONDS) -> bytes:
    """`render()` run in a forked child; `ChartRenderFailed` when it is late, fails or dies.

    A late child is killed, so a render that loops takes nothing with it but its budget.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_render_child, args=(render, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(budget_seconds):
            raise ChartRenderFailed(f"the chart took longer than {budget_seconds:g} s to draw")
        try:
            ok, payload = receiver.recv()
        except EOFError as exc:
            raise ChartRenderFailed("the chart renderer died (out of memory?)") from exc
        if not ok:
            raise ChartRenderFailed(f"the chart could not be drawn: {payload}")
        return bytes(payload)
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5)


_BAND = "#c7dcf7"
_LINE = "#1d4ed8"
_BACKGROUND = "#ffffff"

_STYLE_OPTIONS: dict[str, object] = dict(
    background=_BACKGROUND,
    plot_background=_BACKGROUND,
    foreground="#4b5563",
    foreground_strong="#111827",
    foreground_subtle="#e5e7eb",
    colors=(_BAND, _BACKGROUND, _LINE),
    opacity="1",
    opacity_hover="1",
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    value_font_size=11,
    title_font_size=14,
    no_data_font_size=16,
    guide_stroke_color="#e5e7eb",
    major_guide_stroke_color="#e5e7eb",
    guide_stroke_dasharray="0",
    major_guide_stroke_dasharray="0",
)
_STYLE_VARIANTS: dict[str, dict[str, object]] = {
    "chart": {},
    "bar": {"colors": ("#2563eb",), "ci_colors": ("#111827",)},
    "scatter": {"colors": ("#9ca3af", "#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2")},
}


@functools.cache
def _pygal() -> Any:
    """pygal, imported on the first chart: most requests draw none (about 30 ms of a cold start)."""
    import pygal

    return pygal


@functools.cache
def _style(variant: str) -> Any:
    from pygal.style import Style

    return Style(**{**_STYLE_OPTIONS, **_STYLE_VARIANTS[variant]})


_COMMON = {
    "js": [],  # pygal links a tooltip script from a CDN by default: never
    "show_legend": False,
    "no_data_text": "No analysed conversations in this range",
    "truncate_label": -1,
    "margin": 12,
    "print_values": False,
}


# Phones (the page's `<picture>` asks for `size=narrow` below 640 px): drawn about as wide as
# they are shown, so 12 px text stays 12 px instead of shrinking with a 960 px drawing.
NARROW_TREND: dict[str, int] = {"width": 380, "height": 280, "date_labels": 4}
NARROW_BREAKDOWN: dict[str, int] = {"width": 360, "label_chars": 16, "value_labels": 5}

_SCRIPT = re.compile(rb"<script\b.*?</script>", re.DOTALL)


def _render(chart: Any, budget_seconds: float) -> bytes:
    """The SVG, drawn within the budget, without pygal's inline config script (nothing runs in our charts)."""
    return _SCRIPT.sub(b"", render_bounded(chart.render, budget_seconds))


def _hours(minutes: float | None) -> float:
    return round((minutes or 0) / 60, 2)  # null (nothing published): no bar


def _point_hours(point: DailyPoint | WithheldPoint, field: str) -> float | None:
    minutes = getattr(point, field, None)
    return None if minutes is None else _hours(minutes)


def _label_step(count: int, labels: int = 8) -> int:
    """Every how many days a date label is printed, so about `labels` fit."""
    return max(1, round(count / labels))


def trend_chart(
    points: Sequence[DailyPoint | WithheldPoint],
    *,
    width: int = 960,
    height: int = 320,
    budget_seconds: float = RENDER_BUDGET_SECONDS,
    date_labels: int = 8,
) -> bytes:
    """Hours saved per day: the most likely line inside the low–high band."""
    chart = _pygal().Line(
        **_COMMON,
        style=_style("chart"),
        width=width,
        height=height,
        show_dots=len(points) <= 1,
        dots_size=3,
        include_x_axis=True,
        show_minor_x_labels=False,
        x_labels_major_every=_label_step(len(points), date_labels),
        # a viewer's points are published periods (PeriodPoint: a week or a month each)
        y_title="Hours saved per period"
        if any(hasattr(p, "period") for p in points)
        else "Hours saved per day",
        x_label_rotation=0,
    )
    chart.x_labels = [point.analysis_date.strftime("%d %b") for point in points]
    if not any(getattr(point, "conversation_count", None) for point in points):
        return _render(chart, budget_seconds)  # pygal prints no_data_text for an empty chart
    # The band: the high series filled in the band colour, then the low series filled
    # in the background colour over it, leaving the low–high area shaded.
    # a withheld date (the viewer role's disclosure control) is a gap in every line
    chart.add("High estimate", [_point_hours(p, "total_time_saved_high") for p in points], fill=True)
    chart.add("Low estimate", [_point_hours(p, "total_time_saved_low") for p in points], fill=True)
    chart.add(
        "Most likely", [_point_hours(p, "total_time_saved") for p in points], stroke_style={"width": 2.5}
    )
    return _render(chart, budget_seconds)


def breakdown_chart(
    labels: Sequence[str],
    rows: Sequence[Figures],
    *,
    width: int = 480,
    height: int | None = None,
    budget_seconds: float = RENDER_BUDGET_SECONDS,
    label_chars: int | None = None,
    value_labels: int | None = None,
) -> bytes:
    """Horizontal bars of hours saved (most likely) with low–high whiskers, largest on top.

    `label_chars`: labels longer than this end in "…" (a narrow chart has little room for them)."""
    labels = [chart_label(label) for label in labels]  # cleaned and bounded before anything measures them
    if label_chars:
        labels = [label if len(label) <= label_chars else label[: label_chars - 1] + "…" for label in labels]
    top = max((_hours(row.total_time_saved_high) for row in rows), default=0.0)
    chart = _pygal().HorizontalBar(
        **{**_COMMON, "style": _style("bar")},
        width=width,
        height=height or max(160, 48 + 34 * len(rows)),
        x_title="Hours saved",
        include_x_axis=True,
        range=(0, top * 1.05 or 1),  # room for the high whisker, which pygal does not count
        **({"y_labels_major_count": value_labels, "show_minor_x_labels": False} if value_labels else {}),
    )
    # pygal draws the first label at the bottom: reverse so the largest is on top
    chart.x_labels = list(reversed(labels))
    if rows:
        chart.add(
            "Hours saved",
            [
                {
                    "value": _hours(row.total_time_saved),
                    "ci": {
                        "low": _hours(row.total_time_saved_low),
                        "high": _hours(row.total_time_saved_high),
                    },
                }
                for row in reversed(rows)
            ],
        )
    return _render(chart, budget_seconds)


_MAX_SERIES = 6


def calibration_chart(
    points: Sequence[tuple[str, float, float]],
    *,
    width: int = 640,
    height: int = 420,
    budget_seconds: float = RENDER_BUDGET_SECONDS,
) -> bytes:
    """Log–log scatter of confirmed against most-likely minutes, one colour per estimator.

    The grey diagonal is "confirmed = estimated"; points above it are tasks people say
    took longer by hand than estimated. Minutes below 1 are drawn at 1 (a log axis has
    no 0). Estimator labels go through `chart_label`; after six estimators the rest are "other".
    """
    chart = _pygal().XY(
        **{**_COMMON, "style": _style("scatter"), "show_legend": bool(points)},
        width=width,
        height=height,
        logarithmic=True,
        stroke=False,
        dots_size=3,
        legend_at_bottom=True,
        x_title="Estimated minutes by hand (most likely)",
        y_title="Confirmed minutes by hand",
    )
    chart.no_data_text = "No confirmations yet"
    if not points:
        return _render(chart, budget_seconds)
    series: dict[str, list[tuple[float, float]]] = {}
    for label, estimated, confirmed in points:
        name = chart_label(label or "unknown")
        if name not in series and len(series) >= _MAX_SERIES:
            name = "other"
        series.setdefault(name, []).append((max(1.0, estimated), max(1.0, confirmed)))
    values = [value for pairs in series.values() for pair in pairs for value in pair]
    low, high = min(values), max(values)
    chart.add("confirmed = estimated", [(low, low), (high, high)], stroke=True, show_dots=False)
    for name, pairs in series.items():
        chart.add(name, pairs)
    return _render(chart, budget_seconds)


_SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def svg_response(body: bytes, status: int = 200) -> flask.Response:
    """A chart as an SVG response, under a policy that lets the SVG run nothing."""
    response = flask.Response(body, status=status, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = _SVG_CSP
    return response
