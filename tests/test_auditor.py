"""The release auditor (functions/read/auditor.py): hand cases and an independent brute-force attacker.

The attacker knows nothing of atoms, echelon forms or candidate unions: for every set of fewer
than k people it asks, by two exact rational ranks over the raw variables, whether removing
those people's variables lowers the rank of the released figures, which is exactly when some
combination of the figures is a nonzero form over those people only.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from functions.read.auditor import Form, audit, release_safely


def person(variable: Hashable) -> str:
    assert isinstance(variable, tuple)
    return str(variable[0])


def total(figure_id: str, people: Sequence[str], days: Sequence[int] = (0,), metric: str = "c") -> Form:
    return Form(figure_id, {(p, day, metric): 1 for p in people for day in days})


def _rank(rows: Sequence[dict[Hashable, Fraction]], columns: Sequence[Hashable]) -> int:
    """Exact rank by Gauss–Jordan over Fractions (dense, column by column)."""
    matrix = [[Fraction(row.get(column, 0)) for column in columns] for row in rows]
    rank = 0
    for column_index in range(len(columns)):
        pivot = next((i for i in range(rank, len(matrix)) if matrix[i][column_index] != 0), None)
        if pivot is None:
            continue
        matrix[rank], matrix[pivot] = matrix[pivot], matrix[rank]
        lead = matrix[rank][column_index]
        for i in range(len(matrix)):
            if i != rank and matrix[i][column_index] != 0:
                factor = matrix[i][column_index] / lead
                matrix[i] = [a - factor * b for a, b in zip(matrix[i], matrix[rank], strict=True)]
        rank += 1
    return rank


def attacker(forms: Sequence[Form], k: int) -> frozenset[str] | None:
    """A set of fewer than k people whose combined contribution some combination of `forms` isolates."""
    rows = [{var: Fraction(value) for var, value in form.coefficients.items() if value} for form in forms]
    variables = sorted({var for row in rows for var in row}, key=repr)
    everyone = sorted({person(var) for var in variables})
    full_rank = _rank(rows, variables)
    size = min(k - 1, len(everyone))
    for chosen in itertools.combinations(everyone, size):
        outside = [var for var in variables if person(var) not in chosen]
        if _rank(rows, outside) < full_rank:
            return frozenset(chosen)
    return None


def combined(leak_coefficients: dict[str, Fraction], forms: Sequence[Form]) -> dict[Hashable, Fraction]:
    by_id = {form.figure_id: form for form in forms}
    result: dict[Hashable, Fraction] = {}
    for figure_id, coefficient in leak_coefficients.items():
        for var, value in by_id[figure_id].coefficients.items():
            result[var] = result.get(var, Fraction(0)) + coefficient * value
    return {var: value for var, value in result.items() if value}


def assert_leak_is_real(result_forms: Sequence[Form], k: int, leak_coefficients: dict[str, Fraction]) -> int:
    vector = combined(leak_coefficients, result_forms)
    assert vector, "the reported combination is the zero form"
    people = {person(var) for var in vector}
    assert len(people) < k
    return len(people)


PEOPLE = [f"p{i}" for i in range(8)]


def test_two_nested_groups_that_differ_by_one_person_leak() -> None:
    forms = [total("all", PEOPLE), total("group", PEOPLE[:7])]
    result = audit(forms, person, k=3)
    assert not result.passed
    assert result.leak is not None
    assert result.leak.people == 1
    assert set(result.leak.figure_ids) == {"all", "group"}
    assert assert_leak_is_real(forms, 3, dict(result.leak.coefficients)) == 1


def test_one_person_alone_leaks() -> None:
    result = audit([total("alone", ["p0"])], person, k=2)
    assert not result.passed
    assert result.leak is not None and result.leak.people == 1


def test_a_week_minus_its_days_leaks_the_missing_day() -> None:
    week = Form("week", {(p, day, "c"): 1 for p in PEOPLE for day in range(7) if day < 6 or p == "p0"})
    days = [total(f"day{day}", PEOPLE, [day]) for day in range(6)]
    result = audit([week, *days], person, k=3)
    assert not result.passed
    assert result.leak is not None and result.leak.people == 1
    assert assert_leak_is_real([week, *days], 3, dict(result.leak.coefficients)) == 1


def test_a_week_minus_its_days_is_safe_when_the_missing_day_has_k_people() -> None:
    week = total("week", PEOPLE, range(7))
    days = [total(f"day{day}", PEOPLE, [day]) for day in range(6)]
    assert audit([week, *days], person, k=3).passed


def _value_and_minutes(rates: dict[str, int | Fraction]) -> list[Form]:
    value = Form("value", {(p, 0, "m"): rate for p, rate in rates.items()})
    minutes = Form("minutes", {(p, 0, "m"): 1 for p in rates})
    return [value, minutes]


def test_two_rate_classes_with_one_person_on_a_rate_leak() -> None:
    rates: dict[str, int | Fraction] = {p: 40 for p in PEOPLE}
    rates["p3"] = Fraction(125, 2)
    forms = _value_and_minutes(rates)
    result = audit(forms, person, k=3)
    assert not result.passed
    assert result.leak is not None and result.leak.people == 1
    vector = combined(dict(result.leak.coefficients), forms)
    assert set(vector) == {("p3", 0, "m")}


def test_two_rate_classes_of_k_people_each_pass() -> None:
    rates: dict[str, int | Fraction] = {p: (40 if i < 4 else 60) for i, p in enumerate(PEOPLE)}
    assert audit(_value_and_minutes(rates), person, k=4).passed
    assert not audit(_value_and_minutes(rates), person, k=5).passed


def test_cells_of_k_people_without_differencing_pass() -> None:
    forms = [
        total("all", PEOPLE),
        total("left", PEOPLE[:4]),
        total("right-week", PEOPLE[4:], [1, 2]),
        total("all-minutes", PEOPLE, metric="m"),
    ]
    result = audit(forms, person, k=4)
    assert result.passed, result.leak
    assert result.record.figures == 4
    assert result.record.rank == 4


def test_proportional_figures_are_one_figure() -> None:
    hours = Form("hours", {(p, 0, "m"): Fraction(1, 60) for p in PEOPLE[:3]})
    minutes = Form("minutes", {(p, 0, "m"): 1 for p in PEOPLE[:3]})
    result = audit([hours, minutes], person, k=3)
    assert result.passed
    assert result.record.rank == 1


def test_release_safely_keeps_in_priority_order_and_suppresses_the_difference() -> None:
    candidates = [total("all", PEOPLE), total("seven", PEOPLE[:7]), total("four", PEOPLE[:4])]
    selection = release_safely([], candidates, person, k=3)
    assert selection.kept == ["all", "four"]
    assert selection.suppressed == ["seven"]
    assert selection.record.passed
    assert audit([candidates[0], candidates[2]], person, k=3).passed


def test_release_safely_keeps_nothing_when_the_published_figures_already_leak() -> None:
    published = [total("all", PEOPLE), total("seven", PEOPLE[:7])]
    selection = release_safely(published, [total("four", PEOPLE[:4])], person, k=3)
    assert selection.kept == []
    assert selection.suppressed == ["four"]
    assert not selection.record.passed


def test_release_safely_accounts_for_what_is_already_published() -> None:
    published = [total("week", PEOPLE, range(7))]
    candidates = [total(f"day{day}", PEOPLE, [day]) for day in range(7)]
    selection = release_safely(published, candidates, person, k=3)
    assert selection.kept == [f"day{day}" for day in range(7)]
    lonely_published = [
        Form("week", {(p, d, "c"): 1 for p in PEOPLE for d in range(2) if d == 0 or p == "p0"})
    ]
    selection = release_safely(lonely_published, [total("day0", PEOPLE, [0])], person, k=3)
    assert selection.suppressed == ["day0"]


def test_an_exhausted_budget_fails_closed() -> None:
    # pairs {p0,p1}, {p2,p3}, {p4,p5}: every combination covers at least two pairs, so it passes,
    # but only after candidate checks
    forms = [total("left", PEOPLE[:4]), total("right", PEOPLE[2:6]), total("all", PEOPLE)]
    proved = audit(forms, person, k=3)
    assert proved.passed
    assert proved.record.candidates_checked > 1
    starved = audit(forms, person, k=3, budget=1)
    assert not starved.passed
    assert starved.budget_exhausted
    assert starved.leak is None
    everyone = total("everyone", [*PEOPLE, "q0"])
    selection = release_safely([], [everyone, *forms[:2]], person, k=3, budget=1)
    assert selection.budget_exhausted
    assert selection.kept == ["everyone"]  # leads on the big atom {p6, p7, q0}: no check needed
    assert selection.suppressed == ["left", "right"]


def test_inexact_or_ambiguous_input_is_refused() -> None:
    with pytest.raises(TypeError, match="int or Fraction"):
        audit([Form("f", {("p0", 0, "m"): 0.5})], person, k=2)
    with pytest.raises(ValueError, match="unique"):
        audit([total("f", PEOPLE), total("f", PEOPLE[:4])], person, k=2)
    with pytest.raises(ValueError, match="positive integer"):
        audit([total("f", PEOPLE)], person, k=0)


@dataclass(frozen=True)
class Case:
    """A random population: who is active on which day, groups, rates, released periods."""

    k: int
    active: dict[str, frozenset[int]]
    groups: tuple[frozenset[str], ...]
    rates: dict[str, int | Fraction]
    periods: tuple[tuple[int, int], ...]

    def candidates(self) -> list[Form]:
        everyone = frozenset(self.active)
        forms: list[Form] = []
        for start, end in self.periods:
            days = range(start, end + 1)
            for index, members in enumerate((everyone, *self.groups)):
                cell = f"{start}-{end}/g{index}"
                active = [(p, d) for p in sorted(members) for d in days if d in self.active[p]]
                forms.append(Form(f"{cell}/conversations", {(p, d, "c"): 1 for p, d in active}))
                forms.append(Form(f"{cell}/minutes", {(p, d, "m"): 1 for p, d in active}))
                forms.append(Form(f"{cell}/value", {(p, d, "m"): self.rates[p] for p, d in active}))
        return [form for form in forms if form.coefficients]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    size = draw(st.integers(2, 7))
    people = PEOPLE[:size]
    days = draw(st.integers(1, 5))
    one_a_day = draw(st.booleans())
    if one_a_day:
        active = {p: frozenset({i % days}) for i, p in enumerate(people)}
    else:
        active = {p: draw(st.frozensets(st.integers(0, days - 1), min_size=1)) for p in people}
    if draw(st.booleans()):  # nested: a chain of prefixes
        cuts = draw(st.lists(st.integers(1, size), min_size=1, max_size=3, unique=True))
        groups = tuple(frozenset(people[:cut]) for cut in sorted(cuts))
    else:
        groups = tuple(draw(st.lists(st.frozensets(st.sampled_from(people), min_size=1), max_size=3)))
    rates = {p: draw(st.sampled_from([40, 40, 60, Fraction(125, 2)])) for p in people}
    period = st.tuples(st.integers(0, days - 1), st.integers(0, days - 1)).map(sorted).map(tuple)
    periods = tuple(draw(st.lists(period, min_size=1, max_size=3, unique=True)))
    return Case(draw(st.integers(2, 4)), active, groups, rates, periods)


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(cases())
def test_with_the_auditor_on_the_attacker_finds_nobody_below_k(case: Case) -> None:
    candidates = case.candidates()
    selection = release_safely([], candidates, person, case.k)
    kept = [form for form in candidates if form.figure_id in set(selection.kept)]
    assert attacker(kept, case.k) is None
    assert sorted(selection.kept + selection.suppressed) == sorted(form.figure_id for form in candidates)


@PROPERTY_SETTINGS
@given(cases())
def test_the_incremental_selection_is_the_naive_greedy_one(case: Case) -> None:
    candidates = case.candidates()
    kept: list[Form] = []
    for candidate in candidates:
        if audit([*kept, candidate], person, case.k).passed:
            kept.append(candidate)
    assert release_safely([], candidates, person, case.k).kept == [form.figure_id for form in kept]
    published, rest = candidates[: len(candidates) // 2], candidates[len(candidates) // 2 :]
    if audit(published, person, case.k).passed:
        selection = release_safely(published, rest, person, case.k)
        assert selection.record.passed
        assert audit(
            [*published, *(f for f in rest if f.figure_id in set(selection.kept))], person, case.k
        ).passed


@PROPERTY_SETTINGS
@given(cases())
def test_the_audit_verdict_is_exactly_the_attackers(case: Case) -> None:
    forms = case.candidates()
    result = audit(forms, person, case.k)
    found = attacker(forms, case.k)
    assert result.passed == (found is None)
    if result.leak is not None:
        assert assert_leak_is_real(forms, case.k, dict(result.leak.coefficients)) == result.leak.people


def test_with_the_auditor_off_the_attacker_finds_a_set_below_k() -> None:
    leaky = find(
        cases(),
        lambda case: len(case.groups) >= 1 and attacker(case.candidates(), case.k) is not None,
        settings=settings(max_examples=200, deadline=None),
    )
    assert not audit(leaky.candidates(), person, leaky.k).passed
    known_bad = Case(
        k=3,
        active={p: frozenset({0, 1}) for p in PEOPLE[:5]},
        groups=(frozenset(PEOPLE[:4]),),
        rates={p: 40 for p in PEOPLE[:5]},
        periods=((0, 1), (0, 0)),
    )
    found = attacker(known_bad.candidates(), known_bad.k)
    assert found is not None and "p4" in found  # everyone − the 4-person group = p4
    selection = release_safely([], known_bad.candidates(), person, known_bad.k)
    assert selection.suppressed
    kept = [form for form in known_bad.candidates() if form.figure_id in set(selection.kept)]
    assert attacker(kept, known_bad.k) is None
