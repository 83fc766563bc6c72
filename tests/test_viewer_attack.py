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
