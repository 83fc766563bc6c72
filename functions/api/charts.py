"""Charts rendered on the server by pygal as standalone SVG documents (no JavaScript).

The dashboard embeds them with `<img src>`, so the page's Content-Security-Policy
needs no inline styles or scripts; pygal's own `<style>` lives inside the SVG
document, which is served with its own narrow policy. Hours, not minutes, on axes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pygal
from pygal.style import Style

from functions.api.schemas import DailyPoint, Figures

__all__ = ["CHART_STYLE", "NARROW_BREAKDOWN", "NARROW_TREND", "breakdown_chart", "trend_chart"]

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
CHART_STYLE = Style(**_STYLE_OPTIONS)
_BAR_STYLE = Style(**{**_STYLE_OPTIONS, "colors": ("#2563eb",), "ci_colors": ("#111827",)})

_COMMON = {
    "js": [],  # pygal links a tooltip script from a CDN by default: never
    "style": CHART_STYLE,
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


def _render(chart: pygal.graph.graph.Graph) -> bytes:
    """The SVG without pygal's inline config script (nothing runs in our charts)."""
    return _SCRIPT.sub(b"", chart.render())


def _hours(minutes: float) -> float:
    return round(minutes / 60, 2)


def _label_step(count: int, labels: int = 8) -> int:
    """Every how many days a date label is printed, so about `labels` fit."""
    return max(1, round(count / labels))


def trend_chart(
    points: Sequence[DailyPoint], *, width: int = 960, height: int = 320, date_labels: int = 8
) -> bytes:
    """Hours saved per day: the most likely line inside the low–high band."""
    chart = pygal.Line(
        **_COMMON,
        width=width,
        height=height,
        show_dots=len(points) <= 1,
        dots_size=3,
        include_x_axis=True,
        show_minor_x_labels=False,
        x_labels_major_every=_label_step(len(points), date_labels),
        y_title="Hours saved per day",
        x_label_rotation=0,
    )
    chart.x_labels = [point.analysis_date.strftime("%d %b") for point in points]
    if not any(point.conversation_count for point in points):
        return _render(chart)  # pygal prints no_data_text for an empty chart
    # The band: the high series filled in the band colour, then the low series filled
    # in the background colour over it, leaving the low–high area shaded.
    chart.add("High estimate", [_hours(p.total_time_saved_high) for p in points], fill=True)
    chart.add("Low estimate", [_hours(p.total_time_saved_low) for p in points], fill=True)
    chart.add("Most likely", [_hours(p.total_time_saved) for p in points], stroke_style={"width": 2.5})
    return _render(chart)


def breakdown_chart(
    labels: Sequence[str],
    rows: Sequence[Figures],
    *,
    width: int = 480,
    height: int | None = None,
    label_chars: int | None = None,
    value_labels: int | None = None,
) -> bytes:
    """Horizontal bars of hours saved (most likely) with low–high whiskers, largest on top.

    `label_chars`: labels longer than this end in "…" (a narrow chart has little room for them)."""
    if label_chars:
        labels = [label if len(label) <= label_chars else label[: label_chars - 1] + "…" for label in labels]
    top = max((_hours(row.total_time_saved_high) for row in rows), default=0.0)
    chart = pygal.HorizontalBar(
        **{**_COMMON, "style": _BAR_STYLE},
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
    return _render(chart)
