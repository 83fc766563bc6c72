"""Breakdown dimensions: declared once, here.

A dimension splits the analysed conversations of a day by a property (the model that
answered, the task category, the Open WebUI tags, the groups of the person). Each
entry says how a `conversation_analysis` row maps to its values (SQL giving a text
array: one value for a partition, zero or more for an overlapping dimension), how it
is labelled, and who may see it (`disclosure`). What follows from the entry:

* the aggregator's rebuild SQL: one `daily_breakdowns` row per (date, scope,
  dimension, value), for everyone (`group_id ''`) and within every group;
* the API: a route `/<name>-breakdown` answering `BreakdownResponse`, and a filter
  parameter `<name>=` on `summary` and `daily-trend` that reads the rows of that
  value the way the `group` filter reads a group's `total` rows;
* the dashboard: a panel with a chart `/charts/<name>.svg` and a table;
* the CSV export: the column `csv_column` (and the same filter).

Groups are special: they are the scope of `daily_breakdowns` (`group_id`) rather
than rows of their own (`stored=False`), and their breakdown hides small groups.

A new dimension is one entry here and, when its values come from a new
`conversation_analysis` column, one migration adding that column (the
`daily_breakdowns.dimension` check accepts any registered-looking name; see 004).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CATEGORY",
    "DIMENSIONS",
    "FILTER_DIMENSIONS",
    "GROUP",
    "MODEL",
    "STORED_DIMENSIONS",
    "TAG",
    "TOTAL",
    "Dimension",
    "Disclosure",
    "dimension",
]

TOTAL = "total"  # the `dimension` of a group's own totals in `daily_breakdowns` (value '')

Disclosure = Literal["partition", "overlapping"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,15}$")  # fits daily_breakdowns.dimension VARCHAR(16)


@dataclass(frozen=True, slots=True)
class Dimension:
    """One breakdown dimension.

    `disclosure` says how a dimension's values relate to the total (a viewer gets no
    dimension breakdown at all: releases carry the summary and groups, see
    `functions/read/releases.py`):

    * ``"partition"``: every analysed conversation has exactly one value, taken from
      a set the operator controls (the deployed models, the fixed task categories).
      The rows of a day add up to the day's total, so a row reveals only how the
      total divides; it names no person and no text a person wrote.
    * ``"overlapping"``: a conversation has zero or more values and the rows do not
      add up to the total (a chat with two tags counts under both). The values are
      chosen by people (tags typed into Open WebUI) or are memberships (groups), so
      a value can be rare enough to single out one person or carry words a person
      wrote: show it to a viewer only when enough people stand behind it (the
      minimum group size), or not at all.
    """

    name: str  # `daily_breakdowns.dimension`, the filter parameter, the chart name
    values_sql: str  # SQL over one `conversation_analysis` row: a text[] of its values
    label: str  # a value's heading in tables: "Model"
    noun: str  # in running text: "task category" (panel "By task category", "Time saved per ...")
    description: str  # the breakdown route's description in the OpenAPI document
    disclosure: Disclosure
    csv_column: str | None = None  # the CSV column carrying the values (None: not exported)
    csv_sql: str | None = None  # SQL rendering the values as one CSV text cell
    empty_text: str = "No analysed conversations in this range."
    capitalize: bool = False  # values are lower-case words shown capitalised (categories)
    stored: bool = True  # rows in daily_breakdowns under `name`; False for the group scope

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name == TOTAL:
            raise ValueError(f"dimension name {self.name!r} must be a short lower-case identifier")
        if (self.csv_column is None) != (self.csv_sql is None):
            raise ValueError(f"dimension {self.name!r}: give both csv_column and csv_sql, or neither")

    @property
    def title(self) -> str:
        """The breakdown's title: the route's summary."""
        return f"Time saved per {self.noun}"

    @property
    def heading(self) -> str:
        """The dashboard panel's heading."""
        return f"By {self.noun}"

    @property
    def route(self) -> str:
        """The breakdown route, below the API prefix."""
        return f"/{self.name}-breakdown"

    @property
    def endpoint(self) -> str:
        return f"{self.name}-breakdown"

    @property
    def chart(self) -> str:
        """The chart's name: `/charts/<chart>.svg`."""
        return self.name

    @property
    def filter_parameter(self) -> str:
        return self.name

    def contains_sql(self, parameter: str) -> str:
        """SQL true for a `conversation_analysis` row that has the value bound to `:parameter`."""
        return f":{parameter} = ANY({self.values_sql})"


MODEL = Dimension(
    name="model",
    values_sql="ARRAY[coalesce(primary_model, 'unknown')]",
    label="Model",
    noun="model",
    description="Per primary model of the conversations (the model that answered most).",
    disclosure="partition",
    csv_column="primary_model",
    csv_sql="primary_model",
)
CATEGORY = Dimension(
    name="category",
    values_sql="ARRAY[task_category]",
    label="Category",
    noun="task category",
    description="Per task category (coding, writing, analysis, research, translation, learning, other).",
    disclosure="partition",
    csv_column="task_category",
    csv_sql="task_category",
    capitalize=True,
)
TAG = Dimension(
    name="tag",
    values_sql="tags",
    label="Tag",
    noun="tag",
    description="Per Open WebUI chat tag (the tags people put on their chats). A chat with several "
    "tags counts under each, and a chat without tags under none, so the rows need not add up "
    "to the total.",
    disclosure="overlapping",
    csv_column="tags",
    csv_sql="array_to_string(tags, ';')",
    empty_text="No tagged conversations in this range.",
)
GROUP = Dimension(
    name="group",
    values_sql="group_ids",
    label="Group",
    noun="group",
    description="Groups with fewer members than the minimum group size are left out (and "
    "counted) so that no small team can be singled out. A person in several groups counts in each.",
    disclosure="overlapping",
    stored=False,
)

DIMENSIONS: tuple[Dimension, ...] = (MODEL, CATEGORY, TAG, GROUP)
STORED_DIMENSIONS: tuple[Dimension, ...] = tuple(d for d in DIMENSIONS if d.stored)
FILTER_DIMENSIONS: tuple[Dimension, ...] = STORED_DIMENSIONS  # `<name>=` filters on summary/trend

_BY_NAME = {d.name: d for d in DIMENSIONS}
assert len(_BY_NAME) == len(DIMENSIONS), "dimension names must be unique"


def dimension(name: str) -> Dimension:
    """The dimension called `name`; KeyError when there is none."""
    return _BY_NAME[name]
