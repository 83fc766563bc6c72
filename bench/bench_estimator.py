"""How well does the heuristic's code term fit tasks it was not tuned on?

Reads a labelled task file (the `evaluate --tasks` format), digests every task as the
product does (`infra.evaluate_tasks.task_digest`), and splits the tasks into `--folds`
folds by a hash of their id (the same split on every run). For each fold it picks the
code term (scale × effective lines ^ exponent, `shared.estimators.heuristic.CodeTerm`)
from a fixed grid of general shapes that does best on the *other* folds (objective:
share of most likely estimates inside the human range + Spearman ρ; shapes within
0.02 of the best are ties, and of those the one that moves a plain 50-line code block
least from heuristic-1 wins, since these tasks say nothing about plain code), and
estimates the held-out fold with it. It prints, from one run, side by side:

* heuristic-1 (1.5 min a code line, a diff line counted in full): the old baseline;
* the product's heuristic (`CODE_TERM`) on all tasks;
* the tuned term on its training folds and on its held-out fold (means over folds),
  and on all held-out folds pooled (each task estimated by the term chosen without
  it; pooling mixes the folds' shapes, so its ρ is the harshest figure);
* the held-out figures ÷ the baseline's.

    python bench/bench_estimator.py --tasks tasks.jsonl --folds 5

The figures are `functions.calibration_stats.range_agreement`'s, the same as
`python main.py evaluate --tasks`. Nothing is stored; no fold tooling is in the product.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from functions.calibration_stats import RangeAgreement, RangedPair, range_agreement, spearman  # noqa: E402
from infra.evaluate_tasks import LabelledTask, read_tasks, task_digest  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.conversation import TranscriptDigest  # noqa: E402
from shared.estimators.heuristic import CODE_TERM, CodeTerm, HeuristicEstimator  # noqa: E402

# heuristic-1's code term in the new shape: 1.5 min for every code line, diff lines in full
HEURISTIC_1 = CodeTerm(scale=1.5, exponent=1.0, diff_line_weight=1.0)
SCALES = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
EXPONENTS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
GRID = tuple(
    CodeTerm(scale=scale, exponent=exponent, diff_line_weight=CODE_TERM.diff_line_weight)
    for scale, exponent in itertools.product(SCALES, EXPONENTS)
)

TIE_TOLERANCE = 0.02  # objective differences below this are noise on a few hundred tasks
REFERENCE_LINES = 50  # a typical code block of an answer, for "changes plain code least"

Case = tuple[LabelledTask, TranscriptDigest]


def fold_of(task_id: str, folds: int) -> int:
    """A stable fold number from the id's hash (no ordering or project leaks into the split)."""
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:8], "big") % folds


def pairs_for(cases: Sequence[Case], code: CodeTerm) -> list[RangedPair]:
    estimator = HeuristicEstimator(code=code)
    pairs = []
    for task, digest in cases:
        estimate = estimator.estimate(digest)
        pairs.append(
            RangedPair(task.human_low, task.human_high, estimate.low, estimate.most_likely, estimate.high)
        )
    return pairs


def objective(pairs: Sequence[RangedPair]) -> float:
    """What tuning maximises: the in-range share plus Spearman ρ against the ranges' middles."""
    from functions.calibration_stats import range_middle

    rho = spearman([range_middle(p.human_low, p.human_high) for p in pairs], [p.most_likely for p in pairs])
    return sum(p.in_range for p in pairs) / len(pairs) + (rho or 0.0)


def _change_for_plain_code(code: CodeTerm) -> float:
    """How far a term moves a plain (non-diff) code block of `REFERENCE_LINES` from heuristic-1's minutes."""
    return abs(code.scale * REFERENCE_LINES**code.exponent - HEURISTIC_1.scale * REFERENCE_LINES)


def best_term(cases: Sequence[Case]) -> CodeTerm:
    """The grid's best code term on `cases`.

    Shapes within `TIE_TOLERANCE` of the best objective are ties the data cannot tell
    apart; of those, the one that changes plain code least (what these tasks do not
    measure) is taken.
    """
    scores = {code: objective(pairs_for(cases, code)) for code in GRID}
    best = max(scores.values())
    ties = [code for code in GRID if scores[code] >= best - TIE_TOLERANCE]
    return min(ties, key=_change_for_plain_code)


def _figures(pairs: Sequence[RangedPair], resamples: int) -> RangeAgreement:
    return range_agreement(pairs, resamples=resamples, seed=0)


def _row(label: str, figures: RangeAgreement) -> str:
    interval = figures.rho_interval
    rho = f"{figures.spearman_rho:.2f}" if figures.spearman_rho is not None else "–"
    ci = f"[{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "[–]"
    bins = " / ".join(f"{item.bias:.2f}" for item in figures.bins)
    return (
        f"{label:<34} {figures.count:>4}  {rho:>5} {ci:<14} {figures.in_range or 0:>8.0%} "
        f"{figures.band_overlap or 0:>8.0%} {figures.median_estimate or 0:>7g}   {bins}"
    )


def _mean_row(label: str, figures: Sequence[RangeAgreement]) -> str:
    rho = statistics.fmean(f.spearman_rho or 0.0 for f in figures)
    in_range = statistics.fmean(f.in_range or 0.0 for f in figures)
    overlap = statistics.fmean(f.band_overlap or 0.0 for f in figures)
    median = statistics.fmean(f.median_estimate or 0.0 for f in figures)
    count = round(statistics.fmean(f.count for f in figures))
    return (
        f"{label:<34} {count:>4}  {rho:>5.2f} {'(mean)':<14} {in_range:>8.0%} {overlap:>8.0%} {median:>7.1f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=Path, required=True, help="labelled tasks, JSON Lines")
    parser.add_argument("--folds", type=int, default=5, help="folds by hashed id (default 5)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for ρ's interval")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2")

    settings = Settings()
    tasks = read_tasks(args.tasks.read_text(encoding="utf-8-sig"))
    cases = [(task, task_digest(task, settings)) for task in tasks]
    folds = [fold_of(task.task_id, args.folds) for task in tasks]

    held_out: dict[int, RangedPair] = {}
    train_figures: list[RangeAgreement] = []
    test_figures: list[RangeAgreement] = []
    chosen: list[str] = []
    for fold in range(args.folds):
        train = [case for case, k in zip(cases, folds, strict=True) if k != fold]
        test_index = [i for i, k in enumerate(folds) if k == fold]
        code = best_term(train)
        chosen.append(
            f"fold {fold}: {len(train)} train / {len(test_index)} held out → {code.scale:g} × lines^{code.exponent:g}"
        )
        train_figures.append(_figures(pairs_for(train, code), resamples=0))
        test_pairs = pairs_for([cases[i] for i in test_index], code)
        test_figures.append(_figures(test_pairs, resamples=0))
        for index, pair in zip(test_index, test_pairs, strict=True):
            held_out[index] = pair

    baseline = _figures(pairs_for(cases, HEURISTIC_1), args.resamples)
    product = _figures(pairs_for(cases, CODE_TERM), args.resamples)
    pooled = _figures([held_out[i] for i in range(len(cases))], args.resamples)
    on_all = best_term(cases)

    print(f"{len(tasks)} tasks, {args.folds} folds by hashed id; code term grid {len(GRID)} shapes")
    print(*chosen, sep="\n")
    print(
        f"chosen on all tasks: {on_all.scale:g} × lines^{on_all.exponent:g}; "
        f"the product's CODE_TERM: {CODE_TERM.scale:g} × lines^{CODE_TERM.exponent:g}"
    )
    print()
    print(
        f"{'':<34} {'n':>4}  {'ρ':>5} {'95 % interval':<14} {'in range':>8} {'overlap':>8} {'median':>7}   bias per bin"
    )
    print(_row("heuristic-1 (baseline, all tasks)", baseline))
    print(_row("heuristic-2 product (all tasks)", product))
    print(_mean_row("tuned: train folds", train_figures))
    print(_mean_row("tuned: held-out folds", test_figures))
    print(_row("tuned: held-out folds (pooled)", pooled))
    ratios = [
        ("ρ", pooled.spearman_rho, baseline.spearman_rho),
        ("in range", pooled.in_range, baseline.in_range),
        ("band overlap", pooled.band_overlap, baseline.band_overlap),
        ("median estimate", pooled.median_estimate, baseline.median_estimate),
    ]
    print(
        "held-out ÷ baseline: "
        + ", ".join(f"{name} {new / old:.2f}" for name, new, old in ratios if new and old)
    )


if __name__ == "__main__":
    main()
