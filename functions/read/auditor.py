"""The release auditor: proves that no combination of published figures isolates fewer than k people.

Pure module: no I/O, no Flask, no SQL, no floats. Exact integer linear algebra throughout.

Model
-----
Every figure a viewer can see is a linear form over per-person contributions (`Form`): a
*variable* is any hashable key (say (person, day, "minutes")), `person_of(variable)` names its
person (a pseudonym) and a form's coefficients are `int` or `Fraction` (a weighted figure such
as value = Σ rate·minutes carries the rate as the coefficient). A viewer who holds figures
f_1..f_m can compute any combination Σ c_i·f_i. The release **leaks** when some combination is
a nonzero form whose variables belong to fewer than k people: that combination is the total
of those few people. The test is conservative: one person alone, or the difference of two
people, is a leak although neither is a person's "total".

Method
------
1. *Atoms.* Variables whose coefficient columns are proportional across all forms are
   indistinguishable to every combination (each combination is zero on all of them or on none),
   so they merge into one atom whose people are the union of theirs (a membership class × a
   period segment × a rate). Rows are scaled to integers, columns to primitive integer vectors.
2. *Big atoms.* An atom with ≥ k people can never lie in a leak's support, so a leak lives in
   R₀ = {v ∈ row space : v vanishes on every big atom}. Elimination with the big atoms ordered
   first yields R₀ as the rows whose leading column is small; it is kept in reduced row echelon
   form S (fraction-free integers, pivots chosen on the atoms with the most people).
3. *Components.* The supports of the vectors of R₀ are unions of its matroid's cocircuits, and
   each cocircuit lies in one connected component (the components of the bipartite graph
   pivot row ↔ nonzero free column of S). A component's candidate sets are the maximal unions
   U of its atoms' people sets with |U| < k; A(U) = its atoms whose people lie inside U.
4. *Exact test.* A nonzero vector of R₀ supported inside A(U) exists iff the rows of S whose
   pivot is in A(U), restricted to the columns outside A(U), are linearly dependent; the
   dependency is the leak (its people and the figures behind it are reported).

`release_safely` keeps the echelon basis and S across candidates: a candidate is reduced once
(O(its nonzeros × basis rows it meets)); when it lies in the span or leads on a big atom, R₀
is unchanged and it is kept without any candidate check; only when R₀ grows are the changed
components re-tested, and within them only the sets whose pivots include a changed row.

Cost and bound
--------------
Rows m = periods × partitions (cells) × metrics; atoms a ≤ membership classes × period segments
(week ∩ month pieces) × rate classes × metric families. Elimination is at most O(m · r · a)
integer operations (r the rank), far less on the block-sparse matrices releases produce. The
candidate search is the exponential part: per component it grows with the number of ways to
unite small people sets below k people (≈ C(s, k−1) for s atoms of one person each). Every
candidate union generated and every rank test counts against `budget`; when it runs out the
audit **fails closed** (`budget_exhausted`): `audit` does not pass, and `release_safely`
suppresses every further candidate that would need a check.

Measured (bench/bench_auditor.py: 60 people, 8 nested and overlapping groups, 57 ISO weeks +
13 months, everyone + 8 groups × 3 metrics per release, variables per person and day): 1890
candidates → 2428 atoms, rank 968 at k = 5, about 58 000 candidate checks, 1–2 s for the whole
history at once and well under a second for one nightly release on top of it; the naive
greedy (a full audit per candidate) is ~90× slower on the first 8 releases.

What this proves, and what it cannot: no linear combination of the figures isolates fewer
than k people. It says nothing about outside knowledge (a person known to be alone in a role)
or about non-linear inference from bounds (a figure known to be non-negative).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "DEFAULT_BUDGET",
    "AuditRecord",
    "AuditResult",
    "Form",
    "Leak",
    "Selection",
    "audit",
    "release_safely",
]

DEFAULT_BUDGET = 200_000
"""Candidate unions plus rank tests one call may spend before it fails closed."""


@dataclass(frozen=True)
class Form:
    """One published figure as a linear form over per-person contributions."""

    figure_id: str
    coefficients: Mapping[Hashable, int | Fraction]


@dataclass(frozen=True)
class AuditRecord:
    """What a release stores about its check."""

    figures: int
    atoms: int
    rank: int
    candidates_checked: int
    seconds: float
    passed: bool


@dataclass(frozen=True)
class Leak:
    """A combination of figures that isolates fewer than k people: for tests and health, never viewers."""

    people: int
    figure_ids: tuple[str, ...]
    coefficients: Mapping[str, Fraction]


@dataclass(frozen=True)
class AuditResult:
    passed: bool
    record: AuditRecord
    leak: Leak | None
    budget_exhausted: bool = False


@dataclass(frozen=True)
class Selection:
    """The candidates `release_safely` keeps (in priority order) and the ones it suppresses."""

    kept: list[str]
    suppressed: list[str]
    record: AuditRecord
    budget_exhausted: bool = False


Row = dict[int, int]


def audit(
    forms: Sequence[Form],
    person_of: Callable[[Hashable], str],
    k: int,
    *,
    budget: int = DEFAULT_BUDGET,
) -> AuditResult:
    """Whether no combination of `forms` is a nonzero form over fewer than `k` people."""
    started = time.perf_counter()
    problem = _Problem(forms, (), person_of, k)
    span = _Span(problem, budget)
    for index in range(len(forms)):
        span.insert_published(index)
    found = span.find_leak(span.pivots, span.masks, changed=None)
    exhausted = span.exhausted
    passed = found is None and not exhausted
    record = span.record(len(forms), time.perf_counter() - started, passed)
    leak = _explain(problem, found) if found is not None else None
    return AuditResult(passed=passed, record=record, leak=leak, budget_exhausted=exhausted)


def release_safely(
    published: Sequence[Form],
    candidates: Sequence[Form],
    person_of: Callable[[Hashable], str],
    k: int,
    *,
    budget: int = DEFAULT_BUDGET,
) -> Selection:
    """Keep each candidate, in priority order, only if published + kept + it still passes the audit."""
    started = time.perf_counter()
    problem = _Problem(published, candidates, person_of, k)
    span = _Span(problem, budget)
    for index in range(len(published)):
        span.insert_published(index)
    candidate_ids = [form.figure_id for form in candidates]
    published_leak = span.find_leak(span.pivots, span.masks, changed=None)
    if published_leak is not None or span.exhausted:
        record = span.record(len(published), time.perf_counter() - started, passed=False)
        return Selection(kept=[], suppressed=candidate_ids, record=record, budget_exhausted=span.exhausted)
    kept: list[str] = []
    suppressed: list[str] = []
    for offset, form in enumerate(candidates):
        if span.try_candidate(len(published) + offset):
            kept.append(form.figure_id)
        else:
            suppressed.append(form.figure_id)
    record = span.record(len(published) + len(kept), time.perf_counter() - started, passed=True)
    return Selection(kept=kept, suppressed=suppressed, record=record, budget_exhausted=span.exhausted)


class _Problem:
    """The forms as integer rows over atoms, big atoms (≥ k people) numbered first."""

    def __init__(
        self,
        published: Sequence[Form],
        candidates: Sequence[Form],
        person_of: Callable[[Hashable], str],
        k: int,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        self.forms = [*published, *candidates]
        self.k = k
        ids = [form.figure_id for form in self.forms]
        if len(set(ids)) != len(ids):
            raise ValueError("figure ids must be unique across published and candidate forms")
        self.row_scales: list[int] = []
        columns: dict[Hashable, list[tuple[int, int]]] = {}
        for row_index, form in enumerate(self.forms):
            exact = {var: _exact(form.figure_id, value) for var, value in form.coefficients.items()}
            scale = math.lcm(1, *(value.denominator for value in exact.values() if type(value) is not int))
            self.row_scales.append(scale)
            for var, value in exact.items():
                if value:
                    columns.setdefault(var, []).append((row_index, int(value * scale)))
        atom_of_key: dict[tuple[tuple[int, int], ...], int] = {}
        atom_people: list[set[str]] = []
        atom_keys: list[tuple[tuple[int, int], ...]] = []
        for var, column in columns.items():
            key = _primitive(column)
            atom = atom_of_key.get(key)
            if atom is None:
                atom = atom_of_key[key] = len(atom_keys)
                atom_keys.append(key)
                atom_people.append(set())
            atom_people[atom].add(str(person_of(var)))
        order = sorted(
            range(len(atom_keys)),
            key=lambda atom: (len(atom_people[atom]) < k, atom_keys[atom][0][0], atom),
        )
        self.big_count = sum(1 for people in atom_people if len(people) >= k)
        self.people: list[frozenset[str]] = [frozenset(atom_people[atom]) for atom in order]
        self.rows: list[Row] = [{} for _ in self.forms]
        for column_index, atom in enumerate(order):
            for row_index, entry in atom_keys[atom]:
                self.rows[row_index][column_index] = entry

    @property
    def atom_count(self) -> int:
        return len(self.people)


class _Span:
    """The row space of the kept rows: an echelon basis on big atoms plus R₀ in reduced form."""

    def __init__(self, problem: _Problem, budget: int) -> None:
        self.problem = problem
        self.big_count = problem.big_count
        self.budget = budget
        self.checked = 0
        self.exhausted = False
        self.leading: dict[int, tuple[Row, int]] = {}  # big leading column -> (row, provenance mask)
        self.pivots: dict[int, Row] = {}  # R₀ in reduced row echelon form: pivot column -> row
        self.masks: dict[int, int] = {}  # pivot column -> provenance mask (bit i = form i)
        self.rows_of: dict[int, set[int]] = {}  # column -> pivots of the committed R₀ rows holding it
        self._unions: dict[frozenset[frozenset[str]], list[frozenset[str]]] = {}

    def record(self, figures: int, seconds: float, passed: bool) -> AuditRecord:
        return AuditRecord(
            figures=figures,
            atoms=self.problem.atom_count,
            rank=len(self.leading) + len(self.pivots),
            candidates_checked=self.checked,
            seconds=round(seconds, 6),
            passed=passed,
        )

    def insert_published(self, index: int) -> None:
        reduced = self._reduce(index)
        if reduced is not None:
            row, mask = reduced
            self._commit(*self._with_small_row(row, mask))

    def try_candidate(self, index: int) -> bool:
        reduced = self._reduce(index)
        if reduced is None:
            return True
        if self.exhausted:
            return False
        row, mask = reduced
        pivots, masks, changed = self._with_small_row(row, mask)
        if self.find_leak(pivots, masks, changed) is not None or self.exhausted:
            return False
        self._commit(pivots, masks, changed)
        return True

    def _commit(self, pivots: dict[int, Row], masks: dict[int, int], changed: set[int]) -> None:
        for pivot in changed:
            for column in self.pivots.get(pivot, ()):
                self.rows_of[column].discard(pivot)
            for column in pivots[pivot]:
                self.rows_of.setdefault(column, set()).add(pivot)
        self.pivots, self.masks = pivots, masks

    def _components_touching(
        self, pivots: dict[int, Row], changed: set[int]
    ) -> Iterable[tuple[list[int], set[int]]]:
        """The components of R₀ (`pivots`: committed rows plus `changed` ones) that hold a changed row."""
        changed_rows_of: dict[int, list[int]] = {}
        for pivot in changed:
            for column in pivots[pivot]:
                changed_rows_of.setdefault(column, []).append(pivot)
        seen: set[int] = set()
        for start in changed:
            if start in seen:
                continue
            seen.add(start)
            component_pivots: list[int] = []
            component_columns: set[int] = set()
            stack = [start]
            while stack:
                pivot = stack.pop()
                component_pivots.append(pivot)
                for column in pivots[pivot]:
                    if column in component_columns:
                        continue
                    component_columns.add(column)
                    for neighbour in (*self.rows_of.get(column, ()), *changed_rows_of.get(column, ())):
                        if neighbour not in seen and (
                            neighbour not in changed or column in pivots[neighbour]
                        ):
                            seen.add(neighbour)
                            stack.append(neighbour)
            yield component_pivots, component_columns

    def _reduce(self, index: int) -> tuple[Row, int] | None:
        """Reduce form `index`; a row leading on a big atom joins the basis (R₀ unchanged) and None
        is returned, as for a row in the span; otherwise its reduced R₀ part and provenance."""
        row = dict(self.problem.rows[index])
        mask = 1 << index
        big = self.big_count
        heap = [column for column in row if column < big]
        heapq.heapify(heap)
        while heap:
            column = heapq.heappop(heap)
            if column not in row:
                continue
            entry = self.leading.get(column)
            if entry is None:
                _make_primitive(row)
                self.leading[column] = (row, mask)
                return None
            basis_row, basis_mask = entry
            for other in basis_row:
                if other < big and other not in row:
                    heapq.heappush(heap, other)
            row = _eliminate(row, basis_row, column)
            mask |= basis_mask
        for column in [column for column in row if column in self.pivots]:
            if column in row:
                row = _eliminate(row, self.pivots[column], column)
                mask |= self.masks[column]
        if not row:
            return None
        _make_primitive(row)
        return row, mask

    def _with_small_row(self, row: Row, mask: int) -> tuple[dict[int, Row], dict[int, int], set[int]]:
        """R₀ with `row` (already reduced by it) added, copy on write; the pivots whose rows changed."""
        people = self.problem.people
        pivot = min(row, key=lambda column: (-len(people[column]), column))
        pivots = dict(self.pivots)
        masks = dict(self.masks)
        changed = {pivot}
        for other_pivot, other_row in self.pivots.items():
            if pivot in other_row:
                updated = _eliminate(dict(other_row), row, pivot)
                _make_primitive(updated)
                pivots[other_pivot] = updated
                masks[other_pivot] = self.masks[other_pivot] | mask
                changed.add(other_pivot)
        pivots[pivot] = row
        masks[pivot] = mask
        return pivots, masks, changed

    def _spend(self, amount: int = 1) -> bool:
        """Count `amount` checks; False (and `exhausted` from now on) once the budget is spent."""
        self.checked += amount
        if self.checked > self.budget:
            self.exhausted = True
        return not self.exhausted

    def find_leak(
        self, pivots: dict[int, Row], masks: dict[int, int], changed: set[int] | None
    ) -> tuple[dict[int, Row], dict[int, int], dict[int, int]] | None:
        """A dependency (pivot -> coefficient) of R₀ rows supported on fewer than k people, if any.

        With `changed`, only components and sets that contain a changed row are tested: every
        other vector of R₀ already passed. None with `exhausted` set: the budget ran out first."""
        k = self.problem.k
        people = self.problem.people
        components = _components(pivots) if changed is None else self._components_touching(pivots, changed)
        for component_pivots, component_columns in components:
            people_sets = frozenset(people[column] for column in component_columns)
            unions = self._maximal_unions(people_sets, k)
            if unions is None:
                return None
            for union in unions:
                inside = {column for column in component_columns if people[column] <= union}
                inside_pivots = [pivot for pivot in component_pivots if pivot in inside]
                if not inside_pivots:
                    continue
                if changed is not None and changed.isdisjoint(inside_pivots):
                    continue
                if not self._spend():
                    return None
                restricted = [
                    {column: value for column, value in pivots[pivot].items() if column not in inside}
                    for pivot in inside_pivots
                ]
                dependency = _dependency(restricted)
                if dependency is not None:
                    combination = {inside_pivots[i]: value for i, value in dependency.items()}
                    return pivots, masks, combination
        return None

    def _maximal_unions(self, people_sets: frozenset[frozenset[str]], k: int) -> list[frozenset[str]] | None:
        """The maximal unions of `people_sets` with fewer than k people; None when the budget runs out."""
        cached = self._unions.get(people_sets)
        if cached is not None:
            return cached
        small = [people for people in people_sets if len(people) < k]
        seen: set[frozenset[str]] = set(small)
        frontier = list(seen)
        if not self._spend(len(frontier)):
            return None
        maximal: list[frozenset[str]] = []
        while frontier:
            union = frontier.pop()
            extended = False
            for people in small:
                if people <= union:
                    continue
                bigger = union | people
                if len(bigger) >= k:
                    continue
                extended = True
                if bigger not in seen:
                    if not self._spend():
                        return None
                    seen.add(bigger)
                    frontier.append(bigger)
            if not extended:
                maximal.append(union)
        self._unions[people_sets] = maximal
        return maximal


def _exact(figure_id: str, value: object) -> int | Fraction:
    if type(value) is int or type(value) is Fraction:
        return value
    if isinstance(value, bool) or not isinstance(value, int | Fraction):
        raise TypeError(
            f"figure {figure_id!r}: coefficients must be int or Fraction, not {type(value).__name__}"
        )
    return Fraction(value)


def _primitive(column: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """The column divided by its content, first entry positive: proportional columns share it."""
    divisor = math.gcd(*(value for _, value in column))
    if column[0][1] < 0:
        divisor = -divisor
    return tuple((row, value // divisor) for row, value in column)


def _make_primitive(row: Row) -> None:
    divisor = math.gcd(*row.values())
    if divisor > 1:
        for column in row:
            row[column] //= divisor


def _eliminate(row: Row, basis_row: Row, column: int) -> Row:
    """`row` with its entry at `column` cancelled by `basis_row` (mutates and returns `row`)."""
    value, basis_value = row[column], basis_row[column]
    if value % basis_value == 0:
        factor = value // basis_value
    else:
        divisor = math.gcd(value, basis_value)
        scale = basis_value // divisor
        factor = value // divisor
        for key in row:
            row[key] *= scale
    for key, basis_entry in basis_row.items():
        updated = row.get(key, 0) - factor * basis_entry
        if updated:
            row[key] = updated
        else:
            row.pop(key, None)
    return row


def _components(pivots: dict[int, Row]) -> Iterable[tuple[list[int], set[int]]]:
    """The connected components of R₀: (their pivots, their columns)."""
    parent: dict[int, int] = {}

    def find(column: int) -> int:
        root = column
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[column] != root:
            parent[column], column = root, parent[column]
        return root

    for pivot, row in pivots.items():
        root = find(pivot)
        for column in row:
            other = find(column)
            if other != root:
                parent[other] = root
    groups: dict[int, tuple[list[int], set[int]]] = {}
    for column in parent:
        group = groups.setdefault(find(column), ([], set()))
        group[1].add(column)
        if column in pivots:
            group[0].append(column)
    return groups.values()


def _dependency(rows: Sequence[Row]) -> dict[int, int] | None:
    """A nonzero integer combination (row index -> coefficient) of `rows` that is zero, if any."""
    basis: dict[int, tuple[Row, dict[int, int]]] = {}
    for index, original in enumerate(rows):
        row, combination = _reduce_tracked(dict(original), {index: 1}, basis)
        if not row:
            return combination
        basis[min(row)] = (row, combination)
    return None


def _reduce_tracked(
    row: Row, combination: dict[int, int], basis: Mapping[int, tuple[Row, dict[int, int]]]
) -> tuple[Row, dict[int, int]]:
    """`row` reduced by an echelon `basis` (leading column -> row, combination), tracking the combination."""
    while row:
        column = min(row)
        entry = basis.get(column)
        if entry is None:
            break
        basis_row, basis_combination = entry
        value, basis_value = row[column], basis_row[column]
        divisor = math.gcd(value, basis_value)
        scale, factor = basis_value // divisor, value // divisor
        row = _combine(row, scale, basis_row, factor)
        combination = _combine(combination, scale, basis_combination, factor)
        content = math.gcd(*row.values(), *combination.values())
        if content > 1:
            row = {key: entry // content for key, entry in row.items()}
            combination = {key: entry // content for key, entry in combination.items()}
    return row, combination


def _combine(left: dict[int, int], scale: int, right: Mapping[int, int], factor: int) -> dict[int, int]:
    """scale·left − factor·right, zeros dropped."""
    result = {key: scale * value for key, value in left.items()}
    for key, value in right.items():
        updated = result.get(key, 0) - factor * value
        if updated:
            result[key] = updated
        else:
            result.pop(key, None)
    return result


def _explain(problem: _Problem, found: tuple[dict[int, Row], dict[int, int], dict[int, int]]) -> Leak:
    """The leak as people count, figures and their exact coefficients."""
    pivots, masks, combination = found
    vector: dict[int, int] = {}
    provenance = 0
    for pivot, coefficient in combination.items():
        vector = _combine(vector, 1, pivots[pivot], -coefficient)
        provenance |= masks[pivot]
    people = set().union(*(problem.people[column] for column in vector))
    form_indices = [index for index in range(len(problem.forms)) if provenance >> index & 1]
    basis: dict[int, tuple[Row, dict[int, int]]] = {}
    for position, index in enumerate(form_indices):
        row, row_combination = _reduce_tracked(dict(problem.rows[index]), {position: 1}, basis)
        if row:
            basis[min(row)] = (row, row_combination)
    remainder, expression = _reduce_tracked(dict(vector), {-1: 1}, basis)
    if remainder or -1 not in expression:
        raise AssertionError("the leak vector is not a combination of its own provenance")
    target = expression[-1]
    coefficients = {
        problem.forms[form_indices[position]].figure_id: Fraction(
            -value * problem.row_scales[form_indices[position]], target
        )
        for position, value in sorted(expression.items())
        if position >= 0
    }
    return Leak(people=len(people), figure_ids=tuple(coefficients), coefficients=coefficients)
