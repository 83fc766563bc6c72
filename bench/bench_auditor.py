"""How long does the release auditor take on a demo-sized history, and what does incrementality buy?

The demo population: 60 people in 8 overlapping and nested groups, active on about 60 % of
working days, three hourly-rate classes; a release per ISO week (57 of them) and per calendar
month (13), each = everyone + one cell per group × 3 metric families (conversations, minutes,
value = rate × minutes). Variables are per person and day, as the read side builds them.

Measured in one run:
  all at once     one `release_safely` over every release's cells (a first publication)
  nightly         the last nightly call: every earlier release published, one new release
  full audit      one `audit` of everything kept (what a health check would re-prove)
  baseline        the naive greedy: a full `audit` of published + kept + candidate for each
                  candidate, on the first `--prefix` releases, next to `release_safely` on the same

    python bench/bench_auditor.py            # k = 5, about a minute with the baseline
    python bench/bench_auditor.py --k 3 --prefix 6
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Hashable
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from functions.read.auditor import Form, audit, release_safely  # noqa: E402

FIRST_MONDAY = date(2025, 12, 29)  # ISO week 1 of 2026
WEEKS = 57
MONTHS = 13
PEOPLE = 60


def _person(variable: Hashable) -> str:
    assert isinstance(variable, tuple)
    return str(variable[0])


def _population(
    seed: int,
) -> tuple[list[str], dict[str, frozenset[str]], dict[str, int], dict[str, set[date]]]:
    rng = random.Random(seed)
    people = [f"person-{index:02d}" for index in range(PEOPLE)]
    engineering, sales, support = people[:24], people[24:42], people[42:56]  # 4 in no department
    groups = {
        "engineering": frozenset(engineering),
        "backend": frozenset(engineering[:11]),  # nested in engineering
        "frontend": frozenset(engineering[11:20]),
        "sales": frozenset(sales),
        "sales-emea": frozenset(sales[:7]),
        "support": frozenset(support),
        "managers": frozenset(rng.sample(people, 9)),  # across departments
        "ai-pilot": frozenset(rng.sample(people, 13)),
    }
    rates = {p: 90 if p in groups["engineering"] else 70 if p in groups["sales"] else 55 for p in people}
    last_day = FIRST_MONDAY + timedelta(weeks=WEEKS) - timedelta(days=1)
    days = [FIRST_MONDAY + timedelta(days=offset) for offset in range((last_day - FIRST_MONDAY).days + 1)]
    active = {p: {day for day in days if day.weekday() < 5 and rng.random() < 0.6} for p in people}
    return people, groups, rates, active


def _periods() -> list[tuple[str, date, date]]:
    """(name, first day, last day) in order of closing."""
    periods = []
    for week in range(WEEKS):
        start = FIRST_MONDAY + timedelta(weeks=week)
        periods.append((f"week-{start.isoformat()}", start, start + timedelta(days=6)))
    for month in range(MONTHS):
        start = date(2026 + month // 12, month % 12 + 1, 1)
        following = date(2026 + (month + 1) // 12, (month + 1) % 12 + 1, 1)
        periods.append((f"month-{start:%Y-%m}", start, following - timedelta(days=1)))
    return sorted(periods, key=lambda period: (period[2], period[1]))


def _releases(seed: int) -> list[list[Form]]:
    people, groups, rates, active = _population(seed)
    cells = [("everyone", frozenset(people)), *sorted(groups.items(), key=lambda item: -len(item[1]))]
    releases = []
    for name, first, last in _periods():
        forms = []
        for cell, members in cells:
            worked = [(p, day) for p in sorted(members) for day in sorted(active[p]) if first <= day <= last]
            if not worked:
                continue
            forms.append(Form(f"{name}/{cell}/conversations", {(p, day, "c"): 1 for p, day in worked}))
            forms.append(Form(f"{name}/{cell}/minutes", {(p, day, "m"): 1 for p, day in worked}))
            forms.append(Form(f"{name}/{cell}/value", {(p, day, "m"): rates[p] for p, day in worked}))
        releases.append(forms)
    return releases


def _naive_greedy(candidates: list[Form], k: int) -> list[str]:
    kept: list[Form] = []
    for candidate in candidates:
        if audit([*kept, candidate], _person, k).passed:
            kept.append(candidate)
    return [form.figure_id for form in kept]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--k", type=int, default=5, help="the smallest group a figure may describe")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prefix", type=int, default=8, help="releases the naive baseline re-audits")
    arguments = parser.parse_args()
    k = arguments.k
    releases = _releases(arguments.seed)
    candidates = [form for release in releases for form in release]
    print(
        f"demo: {PEOPLE} people, 8 groups, {len(releases)} releases, {len(candidates)} candidate figures, k={k}"
    )

    started = time.perf_counter()
    selection = release_safely([], candidates, _person, k)
    all_at_once = time.perf_counter() - started
    record = selection.record
    print(
        f"all at once : {all_at_once:7.2f} s  kept {len(selection.kept)}, suppressed {len(selection.suppressed)}, "
        f"atoms {record.atoms}, rank {record.rank}, candidate checks {record.candidates_checked}, "
        f"budget exhausted {selection.budget_exhausted}"
    )

    kept_ids = set(selection.kept)
    by_id = {form.figure_id: form for form in candidates}
    published = [form for release in releases[:-1] for form in release if form.figure_id in kept_ids]
    started = time.perf_counter()
    nightly = release_safely(published, releases[-1], _person, k)
    nightly_seconds = time.perf_counter() - started
    print(
        f"nightly     : {nightly_seconds:7.2f} s  {len(published)} published + {len(releases[-1])} candidates "
        f"-> kept {len(nightly.kept)}, rank {nightly.record.rank}"
    )

    started = time.perf_counter()
    proof = audit([by_id[figure_id] for figure_id in selection.kept], _person, k)
    full_audit = time.perf_counter() - started
    print(
        f"full audit  : {full_audit:7.2f} s  figures {proof.record.figures}, atoms {proof.record.atoms}, "
        f"rank {proof.record.rank}, passed {proof.passed}"
    )

    prefix = [form for release in releases[: arguments.prefix] for form in release]
    started = time.perf_counter()
    incremental = release_safely([], prefix, _person, k)
    incremental_seconds = time.perf_counter() - started
    started = time.perf_counter()
    naive_kept = _naive_greedy(prefix, k)
    naive_seconds = time.perf_counter() - started
    same = naive_kept == incremental.kept
    print(
        f"baseline    : first {arguments.prefix} releases ({len(prefix)} candidates): naive re-audit per candidate "
        f"{naive_seconds:.2f} s vs incremental {incremental_seconds:.3f} s = "
        f"{naive_seconds / max(incremental_seconds, 1e-9):.0f}x; same selection {same}"
    )
    ok = proof.passed and same and not selection.budget_exhausted
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
