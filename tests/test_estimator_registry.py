"""One place per estimator: a test estimator registered here, once, appears everywhere.

Health, the OpenAPI document's enum of estimator names, the dashboard's label, the monthly
report and Terraform's validation all read `shared/estimators/registry.py`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from functions.aggregates import recompute_dates
from functions.api import create_app
from functions.api.app import API_PREFIX
from functions.api.services import ApiServices
from infra import estimator_names
from shared.config import EstimatorKind, get_settings
from shared.conversation import TranscriptDigest
from shared.estimators import Estimate, build_estimator, registry
from shared.estimators.registry import EstimatorSpec
from tests.ground_truth_support import add_analysis

AUTH = {"Authorization": "Bearer local-dev-password"}
ZONE = ZoneInfo("Europe/Budapest")
DAY = date(2026, 6, 10)


class ConstantEstimator:
    """Ten minutes for anything: the smallest estimator there is."""

    name = "constant"
    model = None
    prompt_version = "constant-1"

    def estimate(self, digest: TranscriptDigest) -> Estimate:
        return Estimate(10, 10, 10, 50, "other", "a task", "always ten", self.name, None, "constant-1")


CONSTANT = EstimatorSpec(
    name="constant",
    label="Constant",
    description="a constant of ten minutes per conversation",
    settings=("idle_threshold_minutes",),
    price_source="none: arithmetic",
    build=lambda settings: ConstantEstimator(),
    version=lambda settings: "constant-1",
)


def _client() -> Any:
    clock = datetime.combine(DAY + timedelta(days=1), time(12), ZONE)
    return create_app(services=ApiServices(get_settings(), clock=lambda: clock)).test_client()


def test_a_new_estimator_appears_everywhere_from_one_entry(analytics_engine: Engine) -> None:
    for number in range(3):
        add_analysis(
            analytics_engine,
            f"c{number}",
            user_id_hash=f"{number + 1:064x}",
            low=10,
            most_likely=10,
            high=10,
            active=4,
            estimator="constant",
            model=None,
            prompt_version="constant-1",
            day=DAY,
        )
    with analytics_engine.begin() as connection:
        recompute_dates(connection, [DAY])

    with registry.registered(CONSTANT):
        client = _client()
        health = client.get(API_PREFIX + "/health", headers=AUTH).get_json()
        (listed,) = [item for item in health["system_info"]["estimators"] if item["name"] == "constant"]
        assert listed == {
            "name": "constant",
            "label": "Constant",
            "description": "a constant of ten minutes per conversation",
            "settings": ["ANALYTICS_IDLE_THRESHOLD"],
            "price_source": "none: arithmetic",
            "configured": False,
        }

        schemas = client.get(API_PREFIX + "/openapi.json", headers=AUTH).get_json()["components"]["schemas"]
        assert schemas["SystemInfo"]["properties"]["estimator"]["enum"] == ["llm", "heuristic", "constant"]
        assert "constant" in schemas["EstimatorInfo"]["properties"]["name"]["enum"]

        query = {"start_date": DAY.isoformat(), "end_date": DAY.isoformat()}
        page = client.get("/", query_string=query, headers=AUTH).get_data(as_text=True)
        assert '<span class="badge constant">Constant</span>' in page
        assert "A constant of ten minutes per conversation." in page

        report = client.get(f"/report?start_date={DAY}&end_date={DAY}", headers=AUTH)
        assert report.status_code == 200, report.get_data(as_text=True)
        assert "a constant of ten minutes per conversation" in report.get_data(as_text=True)

        assert '"constant"' in estimator_names.render()  # Terraform's validation, regenerated
        assert registry.get("constant") is CONSTANT
        assert CONSTANT.build(get_settings()).estimate(None).estimator == "constant"  # type: ignore[arg-type]

    # gone with its entry: nothing else named it
    assert registry.get("constant") is None
    page = _client().get("/", query_string=query, headers=AUTH).get_data(as_text=True)
    assert "badge constant" not in page and '<span class="badge">constant</span>' in page


def test_names_are_registered_once_and_reserved_words_refused() -> None:
    with pytest.raises(ValueError, match="registered already"):
        registry.register(registry.ESTIMATORS["llm"])
    for reserved in ("auto", "mixed", "none"):
        with pytest.raises(ValueError, match="reserved"):
            registry.register(EstimatorSpec(reserved, "x", "x", (), "x", CONSTANT.build, CONSTANT.version))


def test_every_registered_setting_is_a_setting_and_the_built_ins_are_selectable() -> None:
    from shared.config import Settings

    for spec in registry.specs():
        assert set(spec.settings) <= set(Settings.model_fields), spec.name
    assert {kind.value for kind in EstimatorKind} - {EstimatorKind.AUTO.value} == set(registry.names())
    settings = get_settings()
    assert build_estimator(settings).name == settings.effective_estimator.value


def test_terraform_validates_the_estimator_against_the_registry() -> None:
    text = estimator_names.VARIABLES.read_text(encoding="utf-8")
    assert estimator_names.render() in text, "run: python -m infra.estimator_names --write"
    (listed,) = re.findall(r"contains\(\[(.*?)\], var\.estimator\)", text)
    assert [name.strip().strip('"') for name in listed.split(",")] == ["auto", *registry.names()]
