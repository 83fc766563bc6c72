"""Disclosure control for the viewer role, attacked: no answer, nor any difference of answers, singles out < k people.

The dataset has what the attacks need: a 3-person group (hidden), a model used by one
person, a day with one active person and one with three, nested groups that differ by one
person, a group that overlaps two others, and a day where one person outside every group
was active. The test asks the viewer's endpoints over many ranges, reconstructs which
analysed conversations every figure sums (from the single-day answers only), checks every
multi-day figure against those conversations (so the reconstruction is what the API does),
and then checks that no figure and no combination of figures (differences of any two in
the same family, everyone minus the group rows, the total minus the shown rows) involves
between 1 and k − 1 people.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions.api.app import API_PREFIX, create_app
from functions.api.services import ApiServices
from functions.read.disclosure import BREAKDOWNS_OF_EVERYONE, EVERYONE_ELSE, _People, _released_groups
from shared.config import get_settings, reset_settings_cache
from tests.api_dataset import ZONE, analysis_row, insert, pseudonym, sums

K = 5  # ANALYTICS_MIN_GROUP_SIZE's default
VIEWER = "viewer-password-for-tests"
ADMIN = "local-dev-password"
TODAY = date(2026, 6, 15)
NOW = datetime.combine(TODAY, time(9), ZONE)
END = TODAY - timedelta(days=1)
WINDOW = 36
START = END - timedelta(days=WINDOW - 1)

PEOPLE = [pseudonym(f"person-{n}") for n in range(34)]
GROUPS = {
    "grp-eng": ("Engineering", PEOPLE[0:15]),
    "grp-platform": ("Platform", PEOPLE[0:14]),  # nested in Engineering, one person fewer
    "grp-sales": ("Sales", PEOPLE[15:25]),
    "grp-bridge": ("Bridge", [PEOPLE[14], PEOPLE[15], *PEOPLE[30:34]]),  # overlaps Engineering and Sales
    "grp-board": ("Board", PEOPLE[25:28]),  # 3 members: hidden
}
LISTED = ("grp-eng", "grp-platform", "grp-sales", "grp-bridge")
NO_GROUP = PEOPLE[28:30]
SOLO_MODEL = "solo-model"  # only PEOPLE[3] uses it
ONE_PERSON_DAY = END - timedelta(days=10)
THREE_PEOPLE_DAY = END - timedelta(days=20)
REMAINDER_DAY = END - timedelta(days=5)  # one person outside every group among many inside
NESTED_DAY = END - timedelta(days=3)  # Engineering and Platform differ by one active person
TWICE_DAY = END - timedelta(days=7)  # only two active people are in two shown groups
SPECIAL = (ONE_PERSON_DAY, THREE_PEOPLE_DAY, REMAINDER_DAY, NESTED_DAY, TWICE_DAY)
FIELDS = (
    "conversation_count",
    "message_count",
    "total_active_time",
    "total_time_saved",
    "total_time_saved_low",
    "total_time_saved_high",
    "total_manual_time_estimated",
)


def _active(day: date, rng: random.Random) -> list[str]:
    if day == ONE_PERSON_DAY:
        return [PEOPLE[27]]
    if day == THREE_PEOPLE_DAY:
        return PEOPLE[25:28]
    if day == REMAINDER_DAY:
        return [*PEOPLE[0:5], *PEOPLE[15:21], NO_GROUP[0]]
    if day == TWICE_DAY:
        return [*PEOPLE[0:15], *PEOPLE[15:21], *PEOPLE[30:33]]
    if day == NESTED_DAY:
        return [*PEOPLE[0:6], PEOPLE[14], *PEOPLE[18:24]]
    return rng.sample(PEOPLE, rng.randint(6, 18))


def build() -> list[dict[str, Any]]:
    rng = random.Random(1212)
    rows: list[dict[str, Any]] = []
    for offset in range(WINDOW + 5):
        day = END - timedelta(days=offset)
        for person in _active(day, rng):
            for _ in range(rng.randint(1, 3)):
                row = analysis_row(rng, len(rows), day, person, "analyzed", GROUPS)
                if person == PEOPLE[3] and rng.random() < 0.5:
                    row["primary_model"], row["models_used"] = SOLO_MODEL, [SOLO_MODEL]
                rows.append(row)
    return rows


ANALYSES = build()


@pytest.fixture
def clients(analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> tuple[FlaskClient, FlaskClient]:
    insert(analytics_engine, ANALYSES, GROUPS)
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", VIEWER)
    reset_settings_cache()
    app = create_app(services=ApiServices(get_settings(), clock=lambda: NOW))
    return _Client(app.test_client(), VIEWER), _Client(app.test_client(), ADMIN)  # type: ignore[return-value]


class _Client:
    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.token = client, token

    def open(self, path: str, **params: Any) -> Any:
        return self.client.get(
            API_PREFIX + path, query_string=params, headers={"Authorization": f"Bearer {self.token}"}
        )

    def get(self, path: str, **params: Any) -> Any:
        response = self.open(path, **params)
        assert response.status_code == 200, (path, params, response.get_data(as_text=True))
        return response.get_json()


def _range(start: date, end: date) -> dict[str, str]:
    return {"start_date": start.isoformat(), "end_date": end.isoformat()}


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


# --- what each figure sums, reconstructed from the single-day answers --------------------------

OWNER = [row["user_id_hash"] for row in ANALYSES]
OWNER_MASKS = [sum(1 << index for index, owner in enumerate(OWNER) if owner == person) for person in PEOPLE]


def _mask(indices: Iterable[int]) -> int:
    return sum(1 << index for index in indices)


def people(mask: int) -> int:
    """Distinct people behind the conversations of a mask."""
    return sum(1 for owned in OWNER_MASKS if owned & mask)


def _model(row: dict[str, Any]) -> str:
    return row["primary_model"] or "unknown"


VALUE_OF = {"model": _model, "category": lambda row: row["task_category"]}


class Oracle:
    """Which conversations the viewer's figures sum, from single-day answers."""

    def __init__(self, viewer: _Client) -> None:
        self.released: set[date] = set()
        self.group_released: dict[str, set[date]] = {group_id: set() for group_id in LISTED}
        self.shown: dict[str, dict[date, set[str]]] = {"model": {}, "category": {}}
        for day in _days(START - timedelta(days=WINDOW), END):
            point = viewer.get("/daily-trend", **_range(day, day))["rows"][0]
            if not point.get("withheld"):
                self.released.add(day)
            for group_id in LISTED:
                point = viewer.get("/daily-trend", group=group_id, **_range(day, day))["rows"][0]
                if not point.get("withheld"):
                    self.group_released[group_id].add(day)
            if day >= START:
                for name in self.shown:
                    rows = viewer.get(f"/{name}-breakdown", **_range(day, day))["rows"]
                    self.shown[name][day] = {row["value"] for row in rows if not row.get("merged")}

    def _select(self, start: date, end: date, keep: Any) -> int:
        return _mask(
            index
            for index, row in enumerate(ANALYSES)
            if start <= row["analysis_date"] <= end and keep(row, row["analysis_date"])
        )

    def total(self, start: date, end: date) -> int:
        return self._select(start, end, lambda row, day: day in self.released)

    def group(self, group_id: str, start: date, end: date) -> int:
        released = self.group_released[group_id]
        return self._select(start, end, lambda row, day: day in released and group_id in row["group_ids"])

    def outside_groups(self, start: date, end: date) -> int:
        def keep(row: dict[str, Any], day: date) -> bool:
            shown = {g for g in LISTED if day in self.group_released[g]}
            return day in self.released and not shown & set(row["group_ids"])

        return self._select(start, end, keep)

    def value(self, name: str, value: str | None, start: date, end: date) -> int:
        of, shown = VALUE_OF[name], self.shown[name]

        def keep(row: dict[str, Any], day: date) -> bool:
            if day not in self.released:
                return False
            if value is None:
                return of(row) not in shown[day]
            return of(row) == value and value in shown[day]

        return self._select(start, end, keep)


def _check(figures: dict[str, Any], mask: int, what: Any) -> None:
    expected = sums(ANALYSES[index] for index in range(len(ANALYSES)) if mask >> index & 1)
    got = {field: figures[field] for field in FIELDS}
    assert got == {field: expected[field] for field in FIELDS}, what


def _ranges() -> list[tuple[date, date]]:
    ranges = {(day, day) for day in _days(START, END)}
    ranges |= {(START, day) for day in _days(START, END)}
    ranges |= {(day, END) for day in _days(START, END)}
    for day in SPECIAL:
        ranges |= {(day - timedelta(days=2), day + timedelta(days=2)), (day - timedelta(days=1), day)}
        ranges |= {(day, day + timedelta(days=1)), (day - timedelta(days=1), day - timedelta(days=1))}
    return sorted(ranges)


def _isolating(mask: int) -> bool:
    return 0 < people(mask) < K


def _combination(terms: Iterable[tuple[int, int]]) -> int:
    """The conversations with a non-zero coefficient in Σ coefficient × figure."""
    coefficients: Counter[int] = Counter()
    for coefficient, mask in terms:
        index = 0
        while mask:
            if mask & 1:
                coefficients[index] += coefficient
            mask >>= 1
            index += 1
    return _mask(index for index, total in coefficients.items() if total)


def test_no_answer_nor_difference_of_answers_singles_out_fewer_than_k_people(
    clients: tuple[_Client, _Client],
) -> None:
    viewer, _ = clients
    oracle = Oracle(viewer)
    # the dataset holds what the attacks need, and the raw data would give them away
    assert ONE_PERSON_DAY not in oracle.released and THREE_PEOPLE_DAY not in oracle.released
    assert NESTED_DAY not in oracle.group_released["grp-platform"]
    assert NESTED_DAY in oracle.group_released["grp-eng"]
    assert TWICE_DAY not in oracle.group_released["grp-bridge"]
    assert all(SOLO_MODEL not in values for values in oracle.shown["model"].values())
    assert any(row["primary_model"] == SOLO_MODEL for row in ANALYSES)

    families: dict[str, set[int]] = {"model": set(), "category": set(), "groups": set()}
    combinations: list[tuple[str, int]] = []
    for start, end in _ranges():
        span = _range(start, end)
        summary = viewer.get("/summary", **span)
        total = oracle.total(start, end)
        _check(summary, total, ("summary", start, end))
        assert summary["disclosure"]["floor"] == K
        before = summary["previous_period"]["range"]
        _check(
            summary["previous_period"]["figures"],
            oracle.total(date.fromisoformat(before["start_date"]), date.fromisoformat(before["end_date"])),
            ("previous period", start, end),
        )
        # every date of the window has activity, so every date not released was withheld
        assert summary["disclosure"]["withheld_days"] == sum(
            1 for day in _days(start, end) if day not in oracle.released
        )
        for point in summary["daily_trend"]:
            day = date.fromisoformat(point["analysis_date"])
            if point.get("withheld"):
                assert point["total_time_saved"] is None and day not in oracle.released
            else:
                _check(point, oracle.total(day, day), ("trend", day))
                families["model"].add(oracle.total(day, day))
        for family in families.values():
            family.add(total)

        groups = viewer.get("/group-breakdown", **span)
        group_masks = []
        assert {row["group_id"] for row in groups["rows"]} == {*LISTED, None}
        for row in groups["rows"]:
            if row["group_id"] is None:
                assert row["name"] == EVERYONE_ELSE and row["merged"] is True
                mask = oracle.outside_groups(start, end)
                outside = mask
            else:
                mask = oracle.group(row["group_id"], start, end)
                group_masks.append(mask)
                filtered = viewer.get("/summary", group=row["group_id"], **span)
                _check(filtered, mask, ("group summary", row["group_id"], start, end))
            _check(row, mask, ("group row", row["group_id"], start, end))
            families["groups"].add(mask)
        combinations.append(
            ("everyone − Σ groups", _combination([(1, total)] + [(-1, m) for m in group_masks]))
        )
        combinations.append(
            (
                "everyone − Σ groups − everyone else",
                _combination([(1, total), (-1, outside)] + [(-1, m) for m in group_masks]),
            )
        )

        for name in ("model", "category"):
            answer = viewer.get(f"/{name}-breakdown", **span)
            shown = []
            for row in answer["rows"]:
                mask = oracle.value(name, row["value"], start, end)
                _check(row, mask, (name, row["value"], start, end))
                families[name].add(mask)
                if not row.get("merged"):
                    shown.append(mask)
                else:
                    assert row["value"] is None and row["merged_values"] >= 1
            # the viewer's rows add up to the viewer's total
            assert sum(row["total_time_saved"] for row in answer["rows"]) == summary["total_time_saved"]
            assert sum(row["conversation_count"] for row in answer["rows"]) == summary["conversation_count"]
            combinations.append(
                (f"total − Σ shown {name} rows", _combination([(1, total)] + [(-1, m) for m in shown]))
            )

    for name, family in families.items():
        masks = sorted(family)
        for mask in masks:
            assert not _isolating(mask), (name, people(mask))
        for index, first in enumerate(masks):
            for second in masks[index + 1 :]:
                difference = first ^ second  # 0/1 figures: the difference involves exactly these
                assert not _isolating(difference), (name, "difference", people(difference))
    for name, mask in combinations:
        assert not _isolating(mask), (name, people(mask))
    # the attacks had something to attack: admins see what the viewer does not
    assert len(families["groups"]) > 50 and len(combinations) > 300


def test_the_raw_figures_would_have_singled_people_out(clients: tuple[_Client, _Client]) -> None:
    """The same attacks against the admin's (raw) answers do find one person: the test can fail."""
    _, admin = clients
    one_day = admin.get("/summary", **_range(ONE_PERSON_DAY, ONE_PERSON_DAY))
    assert one_day["conversation_count"] > 0 and "disclosure" not in one_day
    models = admin.get("/model-breakdown", **_range(START, END))["rows"]
    solo = [row for row in models if row["value"] == SOLO_MODEL]
    assert solo and "merged" not in solo[0]
    rows = [row for row in ANALYSES if row["primary_model"] == SOLO_MODEL and row["analysis_date"] >= START]
    assert people(_mask(ANALYSES.index(row) for row in rows)) == 1
    _check(solo[0], _mask(ANALYSES.index(row) for row in rows), "admin solo row")


def test_admin_answers_carry_no_disclosure_fields(clients: tuple[_Client, _Client]) -> None:
    _, admin = clients
    span = _range(START, END)
    for path in ("/summary", "/daily-trend", "/model-breakdown", "/category-breakdown", "/group-breakdown"):
        body = admin.open(path, **span).get_data(as_text=True)
        assert not re.search(r'"(disclosure|withheld|merged|merged_values)"', body), path
    everyone = admin.get("/summary", **span)
    raw = [index for index, row in enumerate(ANALYSES) if START <= row["analysis_date"] <= END]
    _check(everyone, _mask(raw), "admin summary")
    groups = admin.get("/group-breakdown", **span)["rows"]
    assert {row["group_id"] for row in groups} == set(LISTED)  # no Everyone else row for admins


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/summary", {"model": "gpt-4o-mini"}),
        ("/summary", {"category": "coding"}),
        ("/summary", {"tag": "q4_report"}),
        ("/daily-trend", {"model": "gpt-4o-mini"}),
        ("/daily-trend", {"group": "grp-eng", "category": "coding"}),
        ("/model-breakdown", {"group": "grp-eng"}),
        ("/category-breakdown", {"group": "grp-sales"}),
    ],
)
def test_intersections_are_refused_for_viewers(
    clients: tuple[_Client, _Client], path: str, params: dict[str, str]
) -> None:
    viewer, admin = clients
    response = viewer.open(path, **params)
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    assert BREAKDOWNS_OF_EVERYONE in response.get_json()["message"]
    assert admin.open(path, **params).status_code == 200


@pytest.mark.parametrize("path", ["/summary", "/daily-trend"])
def test_a_person_is_refused_for_viewers(clients: tuple[_Client, _Client], path: str) -> None:
    viewer, _ = clients
    response = viewer.open(path, user_id_hash=PEOPLE[0])
    assert response.status_code == 403
    assert "one person" in response.get_json()["message"]


def test_the_hidden_group_stays_refused(clients: tuple[_Client, _Client]) -> None:
    viewer, _ = clients
    assert viewer.open("/summary", group="grp-board").status_code == 422


def test_the_viewer_dashboard_says_what_was_withheld(clients: tuple[_Client, _Client]) -> None:
    viewer, admin = clients
    query = _range(START, END)
    page = viewer.client.get("/", query_string=query, headers={"Authorization": f"Bearer {VIEWER}"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="disclosure-note"' in text and "For privacy" in text
    assert EVERYONE_ELSE in text and SOLO_MODEL not in text
    admin_page = admin.client.get("/", query_string=query, headers={"Authorization": f"Bearer {ADMIN}"})
    assert 'id="disclosure-note"' not in admin_page.get_data(as_text=True)
    assert SOLO_MODEL in admin_page.get_data(as_text=True)
    for chart in ("daily-trend", "model", "category", "group"):
        response = viewer.client.get(
            f"/charts/{chart}.svg", query_string=query, headers={"Authorization": f"Bearer {VIEWER}"}
        )
        assert response.status_code == 200, chart
        assert SOLO_MODEL not in response.get_data(as_text=True)
    refused = viewer.client.get(
        "/charts/model.svg",
        query_string={**query, "group": "grp-eng"},
        headers={"Authorization": f"Bearer {VIEWER}"},
    )
    assert refused.status_code == 403


def test_a_group_whose_complement_is_too_small_is_withheld() -> None:
    """Rule 3b: everyone minus the group would be one person (the other rules all hold)."""
    a = [f"a{n}" for n in range(10)]
    entries = [(person, frozenset({"A", "B"} if n < 5 else {"A"})) for n, person in enumerate(a)]
    entries.append(("outsider", frozenset({"B"})))
    released = _released_groups(_People(entries), ["A", "B"], K)
    assert released == {"B"}  # A would leave `outsider` alone as everyone − A
    entries += [(f"outsider {n}", frozenset({"B"})) for n in range(K - 1)]
    assert _released_groups(_People(entries), ["A", "B"], K) == {"A", "B"}  # now K people outside A
