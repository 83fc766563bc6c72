"""Settings: local mode needs nothing; production names every missing or placeholder secret."""

from __future__ import annotations

import pytest

from shared.config import EstimatorKind, QueueBackend, Settings, get_settings
from shared.errors import ConfigurationError

_PRODUCTION = {
    "ANALYTICS_ENVIRONMENT": "production",
    "COGNIFORCE_DATABASE_URL": "postgresql+pg8000://analytics:pw@/analytics",
    "OPENWEBUI_DATABASE_URL": "postgresql+pg8000://reader:pw@/openwebui",
    "OPENAI_API_KEY": "sk-test-0123456789abcdef",
    "ANALYTICS_HMAC_KEY": "k" * 40,
    "ANALYTICS_DASHBOARD_PASSWORD": "a-long-admin-password",
    "ANALYTICS_QUEUE_BACKEND": "cloud_tasks",
    "ANALYTICS_GCP_PROJECT": "demo-project",
    "ANALYTICS_TASKS_SERVICE_ACCOUNT": "tasks@demo-project.iam.gserviceaccount.com",
    "ANALYTICS_ANALYZER_URL": "https://europe-west1-demo-project.cloudfunctions.net/analyze",
    "ANALYTICS_AGGREGATOR_URL": "https://europe-west1-demo-project.cloudfunctions.net/aggregate",
}


def _set(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_local_mode_works_with_nothing_set() -> None:
    settings = get_settings()
    assert settings.is_production is False
    assert settings.timezone == "Europe/Budapest"
    assert settings.idle_threshold_minutes == 10
    assert settings.max_conversations_per_run == 1000
    assert settings.llm_rpm == 50
    assert settings.openai_model == "gpt-4o-mini"
    assert settings.effective_estimator is EstimatorKind.HEURISTIC
    assert settings.queue_backend is QueueBackend.LOCAL_HTTP


def test_complete_production_settings_start(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, _PRODUCTION)
    settings = Settings()
    assert settings.is_production
    assert settings.effective_estimator is EstimatorKind.LLM


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ANALYTICS_HMAC_KEY", "", "ANALYTICS_HMAC_KEY is missing or a placeholder"),
        ("ANALYTICS_HMAC_KEY", "analytics_hash_salt", "ANALYTICS_HMAC_KEY is missing or a placeholder"),
        ("ANALYTICS_HMAC_KEY", "too-short", "ANALYTICS_HMAC_KEY is shorter than 32"),
        (
            "ANALYTICS_DASHBOARD_PASSWORD",
            "changethis",
            "ANALYTICS_DASHBOARD_PASSWORD is missing or a placeholder",
        ),
        ("ANALYTICS_DASHBOARD_PASSWORD", "short", "ANALYTICS_DASHBOARD_PASSWORD is shorter than 12"),
        ("OPENAI_API_KEY", "", "OPENAI_API_KEY is missing"),
        ("OPENAI_API_KEY", "sk-your_openai_api_key_here", "OPENAI_API_KEY is a placeholder"),
        ("COGNIFORCE_DATABASE_URL", "", "COGNIFORCE_DATABASE_URL is missing"),
        ("OPENWEBUI_DATABASE_URL", "", "OPENWEBUI_DATABASE_URL is missing"),
        ("ANALYTICS_ANALYZER_URL", "", "ANALYTICS_ANALYZER_URL is missing"),
    ],
)
def test_production_refuses_a_missing_or_placeholder_secret(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    _set(monkeypatch, _PRODUCTION | {variable: value})
    with pytest.raises(ConfigurationError, match=message):
        Settings()


@pytest.mark.parametrize(
    "money",
    [
        {"ANALYTICS_HOURLY_RATE": "50"},
        {"ANALYTICS_CURRENCY": "EUR"},
        {"ANALYTICS_GROUP_HOURLY_RATES": '{"Legal": 90}'},
        {"ANALYTICS_GROUP_HOURLY_RATES": '{"Legal": 90}', "ANALYTICS_CURRENCY": "EUR"},
    ],
)
def test_production_refuses_half_configured_money(
    monkeypatch: pytest.MonkeyPatch, money: dict[str, str]
) -> None:
    _set(monkeypatch, _PRODUCTION | money)
    with pytest.raises(ConfigurationError, match="ANALYTICS_HOURLY_RATE and ANALYTICS_CURRENCY go together"):
        Settings()
    _set(monkeypatch, {"ANALYTICS_HOURLY_RATE": "50", "ANALYTICS_CURRENCY": "EUR"})
    assert Settings().money_shown


def test_the_spec_salt_variable_is_an_alias_of_the_hmac_key(monkeypatch: pytest.MonkeyPatch) -> None:
    production = dict(_PRODUCTION)
    del production["ANALYTICS_HMAC_KEY"]
    _set(monkeypatch, production | {"ANALYTICS_SALT": "s" * 40})
    assert Settings().hmac_key.get_secret_value() == "s" * 40


def test_heuristic_production_needs_no_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, _PRODUCTION | {"OPENAI_API_KEY": "", "ANALYTICS_ESTIMATOR": "heuristic"})
    assert Settings().effective_estimator is EstimatorKind.HEURISTIC


def test_a_local_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, _PRODUCTION | {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"})
    assert Settings().effective_estimator is EstimatorKind.LLM


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TZ", "Mars/Olympus"),
        ("ANALYTICS_IDLE_THRESHOLD", "0"),
        ("ANALYTICS_LLM_RPM", "-5"),
        ("ANALYTICS_ENVIRONMENT", "staging"),
        ("ANALYTICS_LLM_PRICES", "{not json"),
        ("ANALYTICS_MODEL_PRICES", "{not json"),
        ("ANALYTICS_MODEL_PRICES", '{"m": {"input": -1}}'),
        ("ANALYTICS_MODEL_PRICES", '{"m": {"inputs": 1}}'),
        ("ANALYTICS_MODEL_PRICES", '{"m": {"input": true}}'),
        ("ANALYTICS_MODEL_PRICES", '["gpt-4o"]'),
        ("ANALYTICS_HOURLY_RATE", "-3"),
        ("ANALYTICS_HOURLY_RATE", "nan"),
        ("ANALYTICS_CURRENCY", "euro"),
        ("ANALYTICS_GROUP_HOURLY_RATES", '{"Legal": "ninety"}'),
        ("ANALYTICS_GROUP_HOURLY_RATES", '{"Legal": 1e309}'),
        ("ANALYTICS_GROUP_HOURLY_RATES", "[90]"),
    ],
)
def test_invalid_values_are_rejected_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(Exception, match=variable):
        Settings()


def test_secrets_do_not_leak_through_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, _PRODUCTION)
    text = repr(Settings())
    assert "a-long-admin-password" not in text
    assert "k" * 40 not in text
