"""The calibration statistics against synthetic confirmations of known bias, and the report's routes.

Synthetic data: per category a known bias b, most likely minutes log-uniform in 5–300,
confirmed = b × most likely × exp(N(0, 0.35²)), band = most likely × [0.6, 1.5]. The
median of the log-normal factor is 1, so the median ratio is b; with 300 pairs per
category its standard error is about 2.5 %, and the stated tolerance is ±8 % of b.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions.api import create_app
from functions.api.app import API_PREFIX
from functions.api.services import ApiServices
from functions.calibration import LabelledPair, build_report, evaluate_labels, read_labels, render_text
from functions.calibration_stats import Pair, agreement, bootstrap_interval, quartiles, ranks, spearman
from shared.config import get_settings
from tests.ground_truth_support import add_analysis, add_confirmation

BIASES = {"coding": 1.6, "writing": 0.8, "research": 2.5}
SIGMA = 0.35
PER_CATEGORY = 300
TOLERANCE = 0.08  # relative, on the recovered bias
AUTH = {"Authorization": "Bearer local-dev-password"}


def synthetic(seed: int = 20261202, per_category: int = PER_CATEGORY) -> list[LabelledPair]:
    rng = random.Random(seed)
    pairs = []
    for category, bias in BIASES.items():
        for _ in range(per_category):
            likely = math.exp(rng.uniform(math.log(5), math.log(300)))
            confirmed = bias * likely * math.exp(rng.gauss(0, SIGMA))
            pairs.append(
                LabelledPair(
                    "llm", "gpt-4o-mini", "p1", category, Pair(confirmed, likely * 0.6, likely, likely * 1.5)
                )
            )
    return pairs


def reference_spearman(x: list[float], y: list[float]) -> float:
    """Textbook ρ = 1 − 6 Σd² / (n (n² − 1)), ranks by sorting (valid without ties)."""
    n = len(x)
    rank_x = {index: position for position, index in enumerate(sorted(range(n), key=x.__getitem__))}
    rank_y = {index: position for position, index in enumerate(sorted(range(n), key=y.__getitem__))}
    d2 = sum((rank_x[i] - rank_y[i]) ** 2 for i in range(n))
    return 1 - 6 * d2 / (n * (n * n - 1))


def test_the_report_recovers_a_known_bias_per_category_and_rho_matches_a_reference() -> None:
    pairs = synthetic()
    report = build_report(pairs, minimum=20, confirmations=len(pairs))
    [group] = report.estimators
    assert (group.estimator, group.model, group.prompt_version) == ("llm", "gpt-4o-mini", "p1")
    figures: dict[str, Any] = {row.task_category: row.agreement for row in group.categories}
    print()
    for category, bias in BIASES.items():
        found = figures[category]
        members = [item.pair for item in pairs if item.category == category]
        x = [pair.confirmed for pair in members]
        y = [pair.most_likely for pair in members]
        reference = reference_spearman(x, y)
        inside = sum(1 for pair in members if pair.low <= pair.confirmed <= pair.high) / len(members)
        print(
            f"{category}: true bias {bias}, recovered {found.bias} (IQR {found.bias_q1}–{found.bias_q3}), "
            f"ρ {found.spearman_rho} [{found.rho_low}, {found.rho_high}] vs reference {reference:.4f}, "
            f"in band {found.band_coverage}"
        )
        assert found.confirmations == PER_CATEGORY and found.enough and found.message is None
        assert abs(found.bias / bias - 1) < TOLERANCE
        assert found.bias_q1 < found.bias < found.bias_q3
        assert found.spearman_rho == pytest.approx(reference, abs=1e-3)  # reported to 3 decimals
        assert spearman(x, y) == pytest.approx(reference, abs=1e-12)
        assert found.rho_low <= found.spearman_rho <= found.rho_high
        assert found.band_coverage == pytest.approx(inside, abs=1e-3)
    # overall: the three categories together (the mixture's median lies between the extremes)
    assert group.overall.confirmations == 3 * PER_CATEGORY
    assert min(BIASES.values()) < group.overall.bias < max(BIASES.values())
    print(render_text(report))


def test_the_bootstrap_is_seeded_and_narrows_with_more_data() -> None:
    pairs = [item.pair for item in synthetic() if item.category == "coding"]
    x = [pair.confirmed for pair in pairs]
    y = [pair.most_likely for pair in pairs]
    first = bootstrap_interval(x, y, seed=7)
    assert first == bootstrap_interval(x, y, seed=7)
    assert first != bootstrap_interval(x, y, seed=8)
    small = bootstrap_interval(x[:40], y[:40], seed=7)
    assert first is not None and small is not None
    assert first[1] - first[0] < small[1] - small[0]


def test_too_few_confirmations_give_no_number() -> None:
    pairs = synthetic(per_category=19)
    report = build_report(pairs, minimum=20, confirmations=len(pairs))
    [group] = report.estimators
    assert group.overall.enough  # 57 together
    for row in group.categories:
        figures = row.agreement
        assert not figures.enough
        assert figures.message == "not enough confirmations (19 of 20)"
        assert (figures.bias, figures.spearman_rho, figures.rho_low, figures.band_coverage) == (None,) * 4
    assert "not enough confirmations (19 of 20)" in render_text(report)
    assert agreement([], minimum=20).message == "not enough confirmations (0 of 20)"


def test_ranks_ties_and_degenerate_inputs() -> None:
    assert ranks([3.0, 1.0, 2.0, 2.0]) == [4.0, 1.0, 2.5, 2.5]
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # constant: no correlation, not 0
    assert spearman([1], [1]) is None
    assert quartiles([2.0]) == (2.0, 2.0, 2.0)
    # a zero most-likely estimate has no ratio but still counts for ρ and coverage
    figures = agreement([Pair(5, 0, 0, 10), Pair(10, 5, 10, 20), Pair(30, 10, 20, 25)], minimum=3)
    assert figures.bias == pytest.approx(1.25)
    assert figures.band_coverage == pytest.approx(2 / 3)


# --- stored confirmations, through the API --------------------------------------------------


@pytest.fixture
def client(analytics_engine: Engine) -> FlaskClient:
    return create_app(services=ApiServices(get_settings())).test_client()


def test_the_api_reports_stored_confirmations_and_joins_late_analyses(
    analytics_engine: Engine, client: FlaskClient
) -> None:
    rng = random.Random(5)
    for number in range(25):
        likely = rng.randint(10, 200)
        add_analysis(analytics_engine, f"c{number}", low=likely // 2, most_likely=likely, high=likely * 2)
        add_confirmation(analytics_engine, f"c{number}", "a" * 64, confirmed_minutes=round(likely * 1.5))
    add_confirmation(analytics_engine, "later", "b" * 64, confirmed_minutes=40)
    add_confirmation(analytics_engine, "c0", "b" * 64, did_not_help=True)

    report = client.get(API_PREFIX + "/calibration", headers=AUTH).get_json()
    assert (
        report["confirmations"],
        report["compared"],
        report["awaiting_analysis"],
        report["did_not_help"],
    ) == (
        27,
        25,
        1,
        1,
    )
    [group] = report["estimators"]
    assert group["overall"]["bias"] == pytest.approx(1.5, abs=0.02)
    assert group["overall"]["spearman_rho"] == pytest.approx(1.0, abs=0.01)
    assert group["overall"]["band_coverage"] == 1.0

    add_analysis(analytics_engine, "later", low=10, most_likely=20, high=30, category="writing")
    report = client.get(API_PREFIX + "/calibration", headers=AUTH).get_json()
    assert (report["compared"], report["awaiting_analysis"]) == (26, 0)
    [group] = report["estimators"]
    writing = {row["task_category"]: row["agreement"] for row in group["categories"]}["writing"]
    assert writing["confirmations"] == 1
    assert writing["message"] == "not enough confirmations (1 of 20)"

    chart = client.get("/charts/calibration.svg", headers=AUTH)
    assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
    assert b"<script" not in chart.data and b"Confirmed minutes by hand" in chart.data
    page = client.get("/", headers=AUTH).get_data(as_text=True)
    assert (
        "Estimates against people&#39;s own answers" in page
        or "Estimates against people's own answers" in page
    )
    assert "not enough confirmations (1 of 20)" in page
    assert client.get(API_PREFIX + "/calibration").status_code == 401


def test_evaluate_reads_an_admins_labels_and_stores_nothing(analytics_engine: Engine) -> None:
    for number in range(30):
        add_analysis(analytics_engine, f"c{number}", low=10, most_likely=20 + number, high=200)
    text = "conversation_id,minutes\n" + "".join(f"c{n},{2 * (20 + n)}\n" for n in range(30)) + "unknown,15\n"
    labels = read_labels(text, max_minutes=2400)
    assert len(labels) == 31
    with analytics_engine.connect() as connection:
        report = evaluate_labels(connection, labels, minimum=20)
    assert (report.confirmations, report.compared, report.awaiting_analysis) == (31, 30, 1)
    assert report.estimators[0].overall.bias == pytest.approx(2.0)
    assert report.estimators[0].overall.spearman_rho == pytest.approx(1.0)
    for bad, problem in [
        ("c1,abc\n", "line 1"),  # a first row that is not a header and not a number
        ("a,1\nc1,abc\n", "line 2"),
        ("a,1\nc1\n", "line 2"),
        ("a,0\n", "between 1 and"),
        ("a,99999\n", "between 1 and"),
    ]:
        if bad.startswith("c1,abc"):
            assert read_labels(bad, max_minutes=2400) == {}  # read as a header row
            continue
        with pytest.raises(Exception, match=problem):
            read_labels(bad, max_minutes=2400)


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM time_confirmations")).scalar_one())


def test_the_cli_prints_the_calibration_and_evaluates_a_labels_file(
    analytics_engine: Engine, tmp_path: Any
) -> None:
    import json

    from click.testing import CliRunner

    from infra.cli import cli

    for number in range(22):
        add_analysis(
            analytics_engine, f"c{number}", low=10, most_likely=20 + number, estimator="heuristic", model=None
        )
        add_confirmation(analytics_engine, f"c{number}", "a" * 64, confirmed_minutes=40 + 2 * number)
    result = CliRunner().invoke(cli, ["calibration"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "22 confirmations, 22 compared" in result.output
    assert "heuristic / 2026-11-28.1: n=22: ρ 1.00" in result.output and "bias ×2.00" in result.output

    labels = tmp_path / "hours.csv"
    labels.write_text(
        "conversation,minutes\n" + "".join(f"c{n},{30 + n}\n" for n in range(22)), encoding="utf-8"
    )
    before = (
        analytics_engine.connect()
        .execute(__import__("sqlalchemy").text("SELECT count(*) FROM time_confirmations"))
        .scalar()
    )
    result = CliRunner().invoke(cli, ["evaluate", "--labels", str(labels), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["compared"] == 22  # the configured estimator here is the heuristic
    assert report["estimators"][0]["overall"]["spearman_rho"] == 1.0
    after = (
        analytics_engine.connect()
        .execute(__import__("sqlalchemy").text("SELECT count(*) FROM time_confirmations"))
        .scalar()
    )
    assert before == after == 22

    labels.write_text("c1,lots\nc2,3\nc3,lots\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["evaluate", "--labels", str(labels)])
    assert result.exit_code == 2 and "line 3" in result.output
