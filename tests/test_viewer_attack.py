"""The review's attack, replayed end to end against everything a viewer can read.

Every conversation saves a unique power of two minutes (and nothing else varies with it),
so every minutes figure a viewer gets says exactly which conversations it adds up. The
test asks every viewer route that answers figures (summary, daily trend, group
breakdown) with every parameter each accepts (ranges by `days`, by dates of every week,
month and the whole span, each listed group), decodes every figure into the conversations
behind it, and checks the linear span of all of them, with rational arithmetic of its own
(not the product's auditor): for every set of fewer than k people, no combination of the
figures is a nonzero total over only their conversations. The same attack against
releases published without the auditor finds the leak (two nested groups that differ by
one person): the check can fail.

The dashboard page and its charts show the same read side's figures rounded to hours;
they add nothing exact beyond the API's answers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions.api.app import API_PREFIX, create_app
from functions.api.services import ApiServices
from shared.config import get_settings, reset_settings_cache
from tests.api_dataset import ZONE, analysis_row, insert, pseudonym
from tests.release_support import complete_runs, publish

K = 3
VIEWER = "viewer-password-for-tests"
NOW = datetime.combine(date(2026, 7, 6), time(9), ZONE)  # June and its weeks are published
PEOPLE = [pseudonym(f"attacked-{n}") for n in range(8)]
GROUPS = {
    "grp-a": ("A", PEOPLE[0:5]),
    "grp-b": ("B", PEOPLE[0:4]),  # nested in A: A − B is PEOPLE[4] alone
    "grp-c": ("C", PEOPLE[4:8]),  # overlaps A in PEOPLE[4]
}
WEEKS = [date(2026, 6, 1), date(2026, 6, 8), date(2026, 6, 15)]
ACTIVE = [PEOPLE[0:6], [*PEOPLE[0:5], PEOPLE[6], PEOPLE[7]], [*PEOPLE[1:5], *PEOPLE[5:8]]]


def build() -> list[dict[str, Any]]:
    import random

    rng = random.Random(99)
    rows: list[dict[str, Any]] = []
    for week, people in zip(WEEKS, ACTIVE, strict=True):
        for offset, person in enumerate(people):
            row = analysis_row(
                rng, len(rows) + 1, week + timedelta(days=offset % 5), person, "analyzed", GROUPS
            )
            minutes = 1 << len(rows)  # unique per conversation: the figures decode
            row.update(
                active_duration_minutes=0,
                idle_time_minutes=0,
                total_duration_minutes=0,
                manual_time_low=minutes,
                manual_time_most_likely=minutes,
                manual_time_high=minutes,
                time_saved_minutes=minutes,
                rated_down=False,
                confirmed_no_help=False,
                estimator="llm",
            )
            row["last_message_at"] = row["first_message_at"]
            rows.append(row)
    return rows


ANALYSES = build()
OWNER = [row["user_id_hash"] for row in ANALYSES]
DECODED = ("total_time_saved", "total_time_saved_low", "total_time_saved_high", "total_time_saved_successful")


def _viewer(engine: Engine, monkeypatch: pytest.MonkeyPatch, *, audited: bool) -> FlaskClient:
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", VIEWER)
    monkeypatch.setenv("ANALYTICS_MIN_GROUP_SIZE", str(K))
    reset_settings_cache()
    insert(engine, ANALYSES, GROUPS)
    complete_runs(engine, date(2026, 6, 1), date(2026, 7, 2), NOW)
    publish(engine, get_settings(), NOW, audited=audited)
    return create_app(services=ApiServices(get_settings(), clock=lambda: NOW)).test_client()


def _parameters() -> list[dict[str, str]]:
    """Every range a viewer can name that matters here, with and without each listed group."""
    ranges: list[dict[str, str]] = [{"days": str(days)} for days in (1, 7, 14, 21, 28, 30, 35, 60, 90, 365)]
    spans = [(start, start + timedelta(days=6)) for start in [*WEEKS, date(2026, 6, 22)]]
    spans += [(date(2026, 6, 1), date(2026, 6, 30)), (date(2026, 5, 25), date(2026, 7, 5))]
    spans += [(a[0], b[1]) for a, b in itertools.combinations(spans[:4], 2)]
    ranges += [{"start_date": s.isoformat(), "end_date": e.isoformat()} for s, e in spans]
    return ranges


def _figures(body: Any) -> Iterable[dict[str, Any]]:
    """Every object in an answer that carries a decodable minutes figure."""
    if isinstance(body, dict):
        if any(isinstance(body.get(name), int) for name in DECODED):
            yield body
        for value in body.values():
            yield from _figures(value)
    elif isinstance(body, list):
        for value in body:
            yield from _figures(value)


def _decode(value: int) -> frozenset[int]:
    assert 0 <= value < 1 << len(ANALYSES), value  # nothing but sums of the conversations' minutes
    return frozenset(index for index in range(len(ANALYSES)) if value >> index & 1)


def collect(client: FlaskClient) -> set[frozenset[int]]:
    """The conversations behind every minutes figure of every viewer answer."""
    headers = {"Authorization": f"Bearer {VIEWER}"}
    found: set[frozenset[int]] = set()
    for params in _parameters():
        requests = [("/group-breakdown", params)]
        for group in (None, *GROUPS):
            scoped = {**params, **({"group": group} if group else {})}
            requests += [("/summary", scoped), ("/daily-trend", scoped)]
        for path, query in requests:
            response = client.get(API_PREFIX + path, query_string=query, headers=headers)
            if response.status_code == 422:  # e.g. a range before the first date allowed
                continue
            assert response.status_code == 200, (path, query, response.get_data(as_text=True))
            for figure in _figures(response.get_json()):
                for name in DECODED:
                    if isinstance(figure.get(name), int):
                        found.add(_decode(figure[name]))
    return found


def _rank(rows: Sequence[Sequence[Fraction]]) -> int:
    """Rank by Gaussian elimination over the rationals."""
    matrix = [list(row) for row in rows]
    rank, columns = 0, len(matrix[0]) if matrix else 0
    for column in range(columns):
        pivot = next((i for i in range(rank, len(matrix)) if matrix[i][column] != 0), None)
        if pivot is None:
            continue
        matrix[rank], matrix[pivot] = matrix[pivot], matrix[rank]
        for i in range(len(matrix)):
            if i != rank and matrix[i][column] != 0:
                factor = matrix[i][column] / matrix[rank][column]
                matrix[i] = [a - factor * b for a, b in zip(matrix[i], matrix[rank], strict=True)]
        rank += 1
    return rank


def small_sets_isolated(figures: set[frozenset[int]], k: int) -> list[tuple[str, ...]]:
    """Sets of fewer than k people whose conversations carry a nonzero combination of the figures.

    The row space holds a nonzero vector supported on columns C exactly when deleting C
    lowers the rank; so a set of people is isolated when rank(all) > rank(without theirs)."""
    rows = [
        [Fraction(int(index in figure)) for index in range(len(ANALYSES))] for figure in figures if figure
    ]
    full = _rank(rows)
    people = sorted(set(OWNER))
    isolated = []
    for size in range(1, k):
        for chosen in itertools.combinations(people, size):
            keep = [index for index, owner in enumerate(OWNER) if owner not in chosen]
            if _rank([[row[index] for index in keep] for row in rows]) < full:
                isolated.append(chosen)
    return isolated


def test_nothing_a_viewer_can_read_isolates_fewer_than_k_people(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _viewer(analytics_engine, monkeypatch, audited=True)
    figures = collect(client)
    nonzero = {figure for figure in figures if figure}
    assert len(nonzero) > 4  # more than everyone's 3 weeks and month: group rows are released too
    assert frozenset(range(len(ANALYSES))) in figures  # everyone's month: every conversation
    assert small_sets_isolated(figures, K) == []


def test_the_same_attack_finds_the_leak_of_unaudited_releases(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _viewer(analytics_engine, monkeypatch, audited=False)
    isolated = small_sets_isolated(collect(client), K)
    assert (PEOPLE[4],) in isolated  # group A − nested group B: one person's minutes


# --- columns of one cell against each other: per-conversation identities ---------------------
#
# Every conversation of the first two weeks owns two bits of its own: 2^(2i) (a), 2^(2i+1) (c), so
# the minutes stay within a column's integer. A usual conversation works a minutes and would take
# a + c by hand (saves c); one that took longer than by hand works c and would take a (saves 0,
# clipped); a new-work one works a and would take a + c (its minutes are in no time-saved figure). Every released minutes column of a cell then decodes into
# the bits behind it, and any identity between columns (manual - active - saved) shows as bits of
# the few conversations where it does not cancel.

COLUMNS = (
    "total_active_time",
    "total_time_saved",
    "total_time_saved_low",
    "total_time_saved_high",
    "total_time_saved_successful",
    "total_manual_time_estimated",
    "total_manual_time_low",
    "total_manual_time_high",
    "time_saved_calibrated_minutes",
    "time_saved_calibrated_low_minutes",
    "time_saved_calibrated_high_minutes",
    "manual_time_calibrated_minutes",
)
CLIPPED = {3, 9}  # took longer than by hand: one of PEOPLE[3], one of PEOPLE[1]
NEW_WORK = {5}  # "I would not have done this without AI": one of PEOPLE[5]


def build_columns() -> list[dict[str, Any]]:
    import random

    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    for week, people in zip(WEEKS[:2], ACTIVE[:2], strict=True):
        for offset, person in enumerate(people):
            index = len(rows)
            a, c = (1 << (2 * index + bit) for bit in range(2))
            active, manual = (c, a) if index in CLIPPED else (a, a + c)
            row = analysis_row(rng, index + 1, week + timedelta(days=offset % 5), person, "analyzed", GROUPS)
            row.update(
                active_duration_minutes=active,
                idle_time_minutes=0,
                total_duration_minutes=active,
                manual_time_low=manual,
                manual_time_most_likely=manual,
                manual_time_high=manual,
                time_saved_minutes=max(0, manual - active),
                rated_down=False,
                confirmed_no_help=False,
                confirmed_new_work=index in NEW_WORK,
                estimator="llm",
            )
            row["last_message_at"] = row["first_message_at"]
            rows.append(row)
    return rows


COLUMN_ANALYSES = build_columns()
BIT_OWNER = [row["user_id_hash"] for row in COLUMN_ANALYSES for _ in range(2)]


def _bits(value: int) -> dict[int, int]:
    assert 0 <= value < 1 << len(BIT_OWNER), value  # nothing but sums of the conversations' minutes
    return {bit: 1 for bit in range(len(BIT_OWNER)) if value >> bit & 1}


def _cells(client: FlaskClient, token: str) -> list[list[dict[int, int]]]:
    """Every answer's released minutes columns, per cell, decoded into bits (distinct cells only)."""
    headers = {"Authorization": f"Bearer {token}"}
    cells: dict[tuple[tuple[tuple[int, ...], ...], ...], list[dict[int, int]]] = {}
    for params in _parameters():
        for group in (None, *GROUPS):
            scoped = {**params, **({"group": group} if group else {})}
            response = client.get(API_PREFIX + "/summary", query_string=scoped, headers=headers)
            if response.status_code == 422:
                continue
            assert response.status_code == 200, (scoped, response.get_data(as_text=True))
            body = response.get_json()
            for figures in (body, *body.get("daily_trend", [])):
                columns = [_bits(figures[name]) for name in COLUMNS if isinstance(figures.get(name), int)]
                key = tuple(tuple(sorted(column)) for column in columns)
                if any(columns):
                    cells.setdefault(key, columns)
    return list(cells.values())


def _combine(columns: Sequence[dict[int, int]], coefficients: Sequence[int]) -> dict[int, int]:
    total: dict[int, int] = {}
    for column, coefficient in zip(columns, coefficients, strict=True):
        for bit, value in column.items():
            total[bit] = total.get(bit, 0) + coefficient * value
    return {bit: value for bit, value in total.items() if value}


def _few(combination: dict[int, int], k: int) -> bool:
    """A nonzero combination that only fewer than k people's conversations make up."""
    return bool(combination) and len({BIT_OWNER[bit] for bit in combination}) < k


def decoded_below_k(cells: Sequence[Sequence[dict[int, int]]], k: int) -> list[set[str]]:
    """Every integer combination (coefficients -1, 0, 1) of the columns of one cell, and of the
    columns of two cells, that is a total of fewer than k people."""
    found = []
    for cell in cells:
        for coefficients in itertools.product((-1, 0, 1), repeat=len(cell)):
            if _few(combination := _combine(cell, coefficients), k):
                found.append({BIT_OWNER[bit] for bit in combination})
    distinct = [
        [dict(c) for c in {tuple(sorted(col.items())): col for col in cell}.values()] for cell in cells
    ]
    for first, second in itertools.combinations(distinct, 2):
        columns = [*first, *second]
        for coefficients in itertools.product((-1, 0, 1), repeat=len(columns)):
            if _few(combination := _combine(columns, coefficients), k):
                found.append({BIT_OWNER[bit] for bit in combination})
    return found


def _column_clients(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", VIEWER)
    monkeypatch.setenv("ANALYTICS_MIN_GROUP_SIZE", str(K))
    monkeypatch.setenv("ANALYTICS_CALIBRATION", "show")
    reset_settings_cache()
    insert(engine, COLUMN_ANALYSES, GROUPS)
    complete_runs(engine, date(2026, 6, 1), date(2026, 7, 2), NOW)
    publish(engine, get_settings(), NOW)
    return create_app(services=ApiServices(get_settings(), clock=lambda: NOW)).test_client()


def test_no_combination_of_a_cells_columns_decodes_fewer_than_k_people(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _column_clients(analytics_engine, monkeypatch)
    cells = _cells(client, VIEWER)
    assert len(cells) > 4 and all(len(cell) >= 2 for cell in cells)  # active and saved minutes at least
    assert decoded_below_k(cells, K) == []
    # and over the rationals: every released column of every cell, bits as the variables
    rows = [
        [Fraction(column.get(bit, 0)) for bit in range(len(BIT_OWNER))] for cell in cells for column in cell
    ]
    full = _rank(rows)
    for size in range(1, K):
        for chosen in itertools.combinations(sorted(set(BIT_OWNER)), size):
            keep = [bit for bit, owner in enumerate(BIT_OWNER) if owner not in chosen]
            assert _rank([[row[bit] for bit in keep] for row in rows]) == full, chosen


def test_the_column_attack_decodes_the_admins_minutes_by_hand(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same check finds the leak where the minutes by hand are given (the admin's figures,
    as the viewer's releases were before): manual - active - saved is new work or an overrun."""
    client = _column_clients(analytics_engine, monkeypatch)
    response = client.get(  # everyone, both weeks: 8 people, a cell well above k
        API_PREFIX + "/summary",
        query_string={"start_date": "2026-06-01", "end_date": "2026-06-14"},
        headers={"Authorization": "Bearer local-dev-password"},
    )
    figures = response.get_json()
    cell = [_bits(figures[name]) for name in COLUMNS if isinstance(figures.get(name), int)]
    assert len({BIT_OWNER[bit] for column in cell for bit in column}) == len(PEOPLE)
    found = decoded_below_k([cell], K)
    owners = {COLUMN_ANALYSES[index]["user_id_hash"] for index in CLIPPED | NEW_WORK}
    assert found and all(people <= owners for people in found), found  # new work, overruns
