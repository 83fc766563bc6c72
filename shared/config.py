"""Settings: one pydantic-settings class, read once per process from the environment.

Local mode (the default) works with no variables at all: the analytics database is
the embedded PostgreSQL, the source is the demo Open WebUI database, the estimator
is the offline heuristic and the dashboard password is printed by ``make run``.
Production refuses to start when a secret is missing or still a placeholder, and
the error names the variable.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.errors import ConfigurationError
from shared.pii_regions import DEFAULT_PII_REGIONS

__all__ = [
    "LOCAL_HOSTS",
    "LOCAL_ONLY",
    "LOCAL_STATE_DIR",
    "REPO_ROOT",
    "CalibrationMode",
    "DigestMode",
    "Environment",
    "EstimatorKind",
    "FlaggedEstimates",
    "QueueBackend",
    "Settings",
    "get_settings",
    "reset_settings_cache",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_STATE_DIR = REPO_ROOT / ".local"

# Values copied from examples and docs; a deployment that still has one is not configured.
_PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changethis",
        "change-me",
        "changeme",
        "secret",
        "password",
        "admin",
        "analytics_hash_salt",
        "unique_salt_for_user_hashing",
        "sk-your_openai_api_key_here",
        "local-dev-password",
        "local-dev-hmac-key",
        "local-dev-task-secret",
    }
)
_MIN_SECRET_LENGTH = {
    "hmac_key": 32,
    "dashboard_password": 12,
    "viewer_password": 12,
    "feedback_token": 32,
    "task_secret": 32,
    # Open WebUI's start.sh generates 12 random bytes, base64: 16 characters (96 bits)
    "webui_secret_key": 16,
}
# Open WebUI JWT secrets anyone knows: its old built-in default (`t0p-s3cr3t`) and placeholders.
_KNOWN_WEBUI_SECRETS = frozenset({"t0p-s3cr3t", "your-secret-key", "your_secret_key", "secret-key"})
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
"""The `Host` names local mode answers when `ANALYTICS_ALLOWED_HOSTS` is empty (DNS rebinding)."""

# USD per 1M tokens: input, cached input, output. ANALYTICS_MODEL_PRICES adds to and
# overrides it, model by model. One table for the estimator's own requests and for the
# models people use in Open WebUI (`shared/estimators/pricing.py` looks models up).
# List prices of the providers' public price pages; check them before relying on them.
DEFAULT_MODEL_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o": {"input": 2.50, "cached_input": 1.25, "output": 10.00},
    "gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.60},
    "gpt-4.1": {"input": 2.00, "cached_input": 0.50, "output": 8.00},
    "gpt-4.1-mini": {"input": 0.40, "cached_input": 0.10, "output": 1.60},
    "gpt-4.1-nano": {"input": 0.10, "cached_input": 0.025, "output": 0.40},
    "gpt-5": {"input": 1.25, "cached_input": 0.125, "output": 10.00},
    "gpt-5-mini": {"input": 0.25, "cached_input": 0.025, "output": 2.00},
    "gpt-5-nano": {"input": 0.05, "cached_input": 0.005, "output": 0.40},
    "o3": {"input": 2.00, "cached_input": 0.50, "output": 8.00},
    "o4-mini": {"input": 1.10, "cached_input": 0.275, "output": 4.40},
    "claude-sonnet-4": {"input": 3.00, "cached_input": 0.30, "output": 15.00},
    "claude-3-5-haiku": {"input": 0.80, "cached_input": 0.08, "output": 4.00},
    "claude-haiku-4-5": {"input": 1.00, "cached_input": 0.10, "output": 5.00},
    "claude-opus-4-1": {"input": 15.00, "cached_input": 1.50, "output": 75.00},
    "claude-opus-4-5": {"input": 5.00, "cached_input": 0.50, "output": 25.00},
    "gemini-2.5-pro": {"input": 1.25, "cached_input": 0.31, "output": 10.00},
    "gemini-2.5-flash": {"input": 0.30, "cached_input": 0.075, "output": 2.50},
}
DEFAULT_LLM_PRICES = DEFAULT_MODEL_PRICES  # the name before the table covered Open WebUI's models
_PRICE_KEYS = frozenset({"input", "cached_input", "output"})
_PRICES_VARIABLE = "ANALYTICS_MODEL_PRICES (or ANALYTICS_LLM_PRICES)"


# Settings that no cloud deployment sets, with the reason; every other field reaches the
# functions through terraform/ (tests/test_terraform.py checks both sides).
LOCAL_ONLY: Mapping[str, str] = MappingProxyType(
    {
        "task_secret": "authenticates pipeline calls of local runs and tests; in the cloud "
        "every pipeline call carries an OIDC token (shared/pipeline_auth.py)",
        "tasks_emulator_host": "tests only: production refuses it",
        "local_concurrency": "the local HTTP queue only; Cloud Tasks' rate follows llm_rpm",
        "local_state_dir": "the embedded PostgreSQL and demo database of local runs; "
        "functions keep no local state",
        "serve_host": "`main.py serve` only; Cloud Functions choose their own listener",
    }
)


class Environment(StrEnum):
    LOCAL = "local"
    PRODUCTION = "production"


class EstimatorKind(StrEnum):
    AUTO = "auto"  # llm when an API key or base URL is configured, else heuristic
    LLM = "llm"
    HEURISTIC = "heuristic"


class DigestMode(StrEnum):
    FULL = "full"  # the redacted asks and a description of the answers
    COUNTS = "counts"  # no text of the conversation at all: counts and shapes only


class CalibrationMode(StrEnum):
    OFF = "off"  # raw figures only
    SHOW = "show"  # calibrated figures beside the raw ones
    APPLY = "apply"  # the calibrated figure is the headline; raw still in the API and CSV


class FlaggedEstimates(StrEnum):
    APART = "apart"  # the headline excludes flagged estimates; a separate "flagged" figure shows them
    INCLUDE = "include"  # the headline includes them; the "flagged" figure says how much of it they are


class ReleasePeriod(StrEnum):
    """The closed periods a viewer's releases cover (functions/read/releases.py)."""

    WEEK = "week"  # ISO week, Monday to Sunday
    MONTH = "month"  # calendar month


class QueueBackend(StrEnum):
    CLOUD_TASKS = "cloud_tasks"
    LOCAL_HTTP = "local_http"
    INLINE = "inline"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every setting of the product. Field descriptions feed the README table."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    environment: Environment = Field(
        Environment.LOCAL,
        validation_alias=_env("ANALYTICS_ENVIRONMENT"),
        description="`local` (embedded defaults allowed) or `production` (every secret required).",
    )

    # --- databases -----------------------------------------------------------------
    analytics_database_url: str = Field(
        "",
        validation_alias=_env("COGNIFORCE_DATABASE_URL"),
        description="Analytics Postgres, `postgresql+pg8000://user:pass@host/db` (add "
        "`?unix_sock=/path/.s.PGSQL.5432` for a socket). Empty locally: the embedded PostgreSQL.",
    )
    analytics_cloudsql_instance: str = Field(
        "",
        validation_alias=_env("ANALYTICS_CLOUDSQL_INSTANCE"),
        description="`project:region:instance`; when set, the analytics database is reached "
        "through the Cloud SQL Python Connector with the user, password and database of "
        "`COGNIFORCE_DATABASE_URL`.",
    )
    source_database_url: str = Field(
        "",
        validation_alias=_env("OPENWEBUI_DATABASE_URL"),
        description="Open WebUI's database, read only: `sqlite:////path/webui.db` or a "
        "`postgresql+pg8000://` URL. Empty locally: the generated demo database.",
    )
    source_cloudsql_instance: str = Field(
        "",
        validation_alias=_env("OPENWEBUI_CLOUDSQL_INSTANCE"),
        description="`project:region:instance` of Open WebUI's Cloud SQL database, reached "
        "through the connector with the credentials of `OPENWEBUI_DATABASE_URL`.",
    )
    migrate_on_start: bool = Field(
        True,
        validation_alias=_env("ANALYTICS_MIGRATE_ON_START"),
        description="Apply pending migrations when a process first connects (under the "
        "migration lock, so concurrent cold starts are safe); `false` leaves it to `main.py migrate`.",
    )
    db_pool_size: int = Field(
        2,
        ge=1,
        le=50,
        validation_alias=_env("ANALYTICS_DB_POOL_SIZE"),
        description="Connections per process (a function instance serves one request at a time).",
    )

    # --- estimator -----------------------------------------------------------------
    estimator: EstimatorKind = Field(
        EstimatorKind.AUTO,
        validation_alias=_env("ANALYTICS_ESTIMATOR"),
        description="`auto` (LLM when `OPENAI_API_KEY` or `OPENAI_BASE_URL` is set, else "
        "heuristic), `llm` or `heuristic`.",
    )
    openai_api_key: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("OPENAI_API_KEY"),
        description="API key of the OpenAI-compatible server (may be empty for a local "
        "server such as Ollama).",
    )
    openai_base_url: str = Field(
        "",
        validation_alias=_env("OPENAI_BASE_URL"),
        description="OpenAI-compatible endpoint, e.g. `http://localhost:11434/v1` for "
        "Ollama. Empty: OpenAI itself.",
    )
    openai_model: str = Field(
        "gpt-4o-mini",
        validation_alias=_env("ANALYTICS_OPENAI_MODEL"),
        description="Model that estimates manual time.",
    )
    llm_rpm: int = Field(
        50,
        ge=1,
        le=100_000,
        validation_alias=_env("ANALYTICS_LLM_RPM"),
        description="LLM requests per minute, per process; Terraform derives the queue's "
        "dispatch rate from it.",
    )
    llm_timeout_seconds: float = Field(
        60.0,
        gt=0,
        le=600,
        validation_alias=_env("ANALYTICS_LLM_TIMEOUT_SECONDS"),
        description="Timeout of one LLM request; a timeout is retried by the queue.",
    )
    llm_prices: Annotated[dict[str, dict[str, float]], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_MODEL_PRICES),
        validation_alias=_env("ANALYTICS_MODEL_PRICES", "ANALYTICS_LLM_PRICES"),
        description="JSON price table, USD per 1M tokens, over the built-in table of common "
        'models: `{"model": {"input": 0.15, "cached_input": 0.075, "output": 0.6}}`. Prices '
        "the estimator's own requests and the models people use in Open WebUI (a local model "
        "may be given its electricity or GPU cost); a model without a price is shown as "
        "unpriced with its tokens, never as free. `ANALYTICS_LLM_PRICES` is accepted as an alias.",
    )
    digest_token_budget: int = Field(
        1500,
        ge=200,
        le=20_000,
        validation_alias=_env("ANALYTICS_DIGEST_TOKEN_BUDGET"),
        description="Upper bound, in tokens (≈ 4 characters each), of the redacted "
        "transcript digest sent to the estimator.",
    )
    digest_mode: DigestMode = Field(
        DigestMode.FULL,
        validation_alias=_env("ANALYTICS_DIGEST_MODE"),
        description="`full`: the estimator sees the user's asks, redacted, and the answers described by "
        "kind and size; `counts`: no text of the conversation at all, only counts and shapes "
        "(the task category becomes a guess; see Privacy).",
    )
    pii_regions: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_PII_REGIONS,
        validation_alias=_env("ANALYTICS_PII_REGIONS"),
        description="Comma-separated ISO region codes whose national phone number formats the "
        "redaction recognises (numbers with a + or 00 country code are recognised from any country).",
    )

    # --- privacy and auth ----------------------------------------------------------
    hmac_key: SecretStr = Field(
        SecretStr("local-dev-hmac-key"),
        validation_alias=_env("ANALYTICS_HMAC_KEY", "ANALYTICS_SALT"),
        description="Key of the HMAC-SHA256 that pseudonymises user ids (≥ 32 characters "
        "in production). `ANALYTICS_SALT`, the spec's name, is accepted as an alias.",
    )
    dashboard_password: SecretStr = Field(
        SecretStr("local-dev-password"),
        validation_alias=_env("ANALYTICS_DASHBOARD_PASSWORD"),
        description="Admin password of the API and dashboard (≥ 12 characters in production).",
    )
    webui_secret_key: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("WEBUI_SECRET_KEY"),
        description="Open WebUI's JWT secret; when set, Open WebUI admin session tokens "
        "are accepted as well as the dashboard password.",
    )
    viewer_password: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("ANALYTICS_VIEWER_PASSWORD"),
        description="Password of the `viewer` role (management: aggregates only, no per-person "
        "rows, CSV or settings), as a bearer token or at the login form (≥ 12 characters in "
        "production, different from the admin password). Empty: no viewer role.",
    )
    feedback_token: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("ANALYTICS_FEEDBACK_TOKEN"),
        description="Bearer token of the `feedback` role, which may call the feedback endpoint "
        "and nothing else (Open WebUI's Action; ≥ 32 characters in production). Empty: no feedback role.",
    )
    openwebui_token_max_age_hours: int = Field(
        672,
        ge=1,
        le=8760,
        validation_alias=_env("ANALYTICS_OPENWEBUI_TOKEN_MAX_AGE_HOURS"),
        description="An Open WebUI token without `exp` (Open WebUI issues them when "
        "`JWT_EXPIRES_IN=-1`) is accepted for this many hours after its `iat`; one without "
        "both is refused. Default: 4 weeks, Open WebUI's default `JWT_EXPIRES_IN`.",
    )
    task_secret: SecretStr = Field(
        SecretStr("local-dev-task-secret"),
        validation_alias=_env("ANALYTICS_TASK_SECRET"),
        description="Shared secret header that authenticates pipeline calls when OIDC is "
        "not used (local runs and tests).",
    )
    session_ttl_minutes: int = Field(
        480,
        ge=5,
        le=10_080,
        validation_alias=_env("ANALYTICS_SESSION_TTL_MINUTES"),
        description="Lifetime of a dashboard login session.",
    )
    session_idle_minutes: int = Field(
        60,
        ge=1,
        le=10_080,
        validation_alias=_env("ANALYTICS_SESSION_IDLE_MINUTES"),
        description="A dashboard session unused for this long ends (sessions also end at "
        "`ANALYTICS_SESSION_TTL_MINUTES` and at sign-out, server-side).",
    )
    login_max_failures: int = Field(
        10,
        ge=1,
        le=1000,
        validation_alias=_env("ANALYTICS_LOGIN_MAX_FAILURES"),
        description="Failed sign-ins one client (an IPv4 address, an IPv6 /64) may make per "
        "window before it must wait.",
    )
    login_global_max_failures: int = Field(
        100,
        ge=1,
        le=100_000,
        validation_alias=_env("ANALYTICS_LOGIN_GLOBAL_MAX_FAILURES"),
        description="Failed sign-ins from all clients together per window (per process) before "
        "a wrong credential is answered 429 instead of 401; a correct one is let in "
        "(while fewer than 10 000 sources are limited at once).",
    )
    login_failure_window_seconds: int = Field(
        300,
        ge=10,
        le=86_400,
        validation_alias=_env("ANALYTICS_LOGIN_FAILURE_WINDOW_SECONDS"),
        description="The sliding window of the failed sign-in limits.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("ANALYTICS_ALLOWED_HOSTS"),
        description="Comma-separated `Host` names (no port) the api answers; others get 400. "
        "Empty: `localhost`, `127.0.0.1` and `[::1]` locally (against DNS rebinding), any "
        "host in production (Google's front end routes by host already).",
    )
    chart_render_seconds: float = Field(
        3.0,
        gt=0,
        le=60,
        validation_alias=_env("ANALYTICS_CHART_RENDER_SECONDS"),
        description="Time budget of drawing one dashboard chart (in a child process); a chart "
        "over it answers an error image instead of holding the worker.",
    )
    min_group_size: int = Field(
        5,
        ge=1,
        le=1000,
        validation_alias=_env("ANALYTICS_MIN_GROUP_SIZE"),
        description="Groups with fewer members are hidden from group breakdowns; for the viewer role "
        "also the disclosure floor: no published figure, nor any combination of published figures, "
        'is the total of fewer people (see "What a viewer can and cannot infer").',
    )

    # --- value of time -------------------------------------------------------------
    hourly_rate: float | None = Field(
        None,
        ge=0,
        le=100_000,
        validation_alias=_env("ANALYTICS_HOURLY_RATE"),
        description="What an hour of working time is worth, in `ANALYTICS_CURRENCY`. With "
        "both set, the time saved is shown as money too (with its low–high band), and AI "
        "cost and return appear; with either unset no money is shown anywhere.",
    )
    currency: str | None = Field(
        None,
        pattern=r"^[A-Z]{3}$",
        validation_alias=_env("ANALYTICS_CURRENCY"),
        description="ISO 4217 code of the hourly rates, e.g. `EUR` (AI cost is always in USD).",
    )
    group_hourly_rates: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=dict,
        validation_alias=_env("ANALYTICS_GROUP_HOURLY_RATES"),
        description='JSON hourly rates by Open WebUI group name, e.g. `{"Legal": 90}`; '
        "people in no listed group take `ANALYTICS_HOURLY_RATE`. A person in several listed "
        "groups takes the lowest of their rates (the value is never overstated).",
    )

    # --- processing ----------------------------------------------------------------
    timezone: str = Field(
        "Europe/Budapest",
        validation_alias=_env("TZ"),
        description="IANA zone that defines a day (attribution, schedule, dashboard).",
    )
    idle_threshold_minutes: int = Field(
        10,
        ge=1,
        le=240,
        validation_alias=_env("ANALYTICS_IDLE_THRESHOLD"),
        description="Gaps between messages longer than this many minutes count as idle.",
    )
    max_conversations_per_run: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        validation_alias=_env("ANALYTICS_MAX_CONVERSATIONS"),
        description="Conversations one run enqueues; the rest waits for the next run and is reported.",
    )
    schedule: str = Field(
        "30 0 * * *",
        validation_alias=_env("ANALYTICS_SCHEDULE"),
        description="Cron schedule of the nightly run, in `TZ` (Terraform uses the same value).",
    )
    release_periods: Annotated[tuple[ReleasePeriod, ...], NoDecode] = Field(
        (ReleasePeriod.WEEK, ReleasePeriod.MONTH),
        validation_alias=_env("ANALYTICS_RELEASE_PERIODS"),
        description="Comma-separated periods a viewer's figures are published for (`week`: ISO "
        "week, `month`: calendar month); each closed period is published once, audited, and frozen.",
    )
    release_grace_days: int = Field(
        3,
        ge=0,
        le=60,
        validation_alias=_env("ANALYTICS_RELEASE_GRACE_DAYS"),
        description="Days after a period closes before its release is published, so late arrivals "
        "are in it; later changes reach the admin's figures only.",
    )
    lookback_days: int = Field(
        7,
        ge=0,
        le=90,
        validation_alias=_env("ANALYTICS_LOOKBACK_DAYS"),
        description="A run also picks up conversations changed this many days before its date "
        "that are still unanalysed (deferred by the per-run limit, or failed transiently).",
    )
    stale_run_minutes: int = Field(
        120,
        ge=1,
        le=2880,
        validation_alias=_env("ANALYTICS_STALE_RUN_MINUTES"),
        description="An open run that records no outcome for this long is closed as stale (and reported).",
    )

    # --- ground truth --------------------------------------------------------------
    calibration_min_confirmations: int = Field(
        20,
        ge=2,
        le=100_000,
        validation_alias=_env("ANALYTICS_CALIBRATION_MIN_CONFIRMATIONS"),
        description="Below this many confirmations a calibration group reports "
        '"not enough confirmations" instead of a number.',
    )
    calibration: CalibrationMode = Field(
        CalibrationMode.OFF,
        validation_alias=_env("ANALYTICS_CALIBRATION"),
        description="Calibrated figures: `off`, `show` (calibrated hours beside the raw ones) or "
        "`apply` (the calibrated figure is the headline; raw still in the API and CSV). See "
        '"Calibration".',
    )
    calibration_factor_min: float = Field(
        0.25,
        gt=0,
        le=1,
        validation_alias=_env("ANALYTICS_CALIBRATION_FACTOR_MIN"),
        description="The smallest calibration factor: people's answers saying less are bounded here.",
    )
    calibration_factor_max: float = Field(
        4.0,
        ge=1,
        le=100,
        validation_alias=_env("ANALYTICS_CALIBRATION_FACTOR_MAX"),
        description="The largest calibration factor: people's answers saying more are bounded here.",
    )
    calibration_change_threshold: float = Field(
        1.5,
        gt=1,
        le=100,
        validation_alias=_env("ANALYTICS_CALIBRATION_CHANGE_THRESHOLD"),
        description="A new calibration moving a factor by more than this ratio (either way) waits "
        "for an admin's `recalibrate`; until then the dashboard shows it as pending.",
    )
    feedback_daily_limit: int = Field(
        100,
        ge=1,
        le=100_000,
        validation_alias=_env("ANALYTICS_FEEDBACK_DAILY_LIMIT"),
        description="Answers one person may give through the feedback endpoint per local day; "
        "beyond it the endpoint answers 429 with `Retry-After` and stores nothing.",
    )

    # --- flagged estimates (shared/estimators/flags.py) ------------------------------
    flagged_estimates: FlaggedEstimates = Field(
        FlaggedEstimates.APART,
        validation_alias=_env("ANALYTICS_FLAGGED_ESTIMATES"),
        description="Figures built from flagged estimates: `apart` (the headline excludes them and a "
        "separate flagged figure shows them) or `include` (in the headline, the flagged figure says "
        'how much of it they are). Applies to dates aggregated from then on. See "Flagged estimates".',
    )
    flag_min_confidence: float = Field(
        0.2,
        ge=0,
        le=1,
        validation_alias=_env("ANALYTICS_FLAG_MIN_CONFIDENCE"),
        description="An estimate whose confidence (0–1) is below this is flagged `low_confidence`.",
    )
    flag_max_band_ratio: float = Field(
        20,
        ge=1,
        le=10_000,
        validation_alias=_env("ANALYTICS_FLAG_MAX_BAND_RATIO"),
        description="An estimate whose band is wider than this factor (high ÷ low) is flagged `wide_band`.",
    )
    flag_same_answer_share: float = Field(
        0.8,
        gt=0,
        le=1,
        validation_alias=_env("ANALYTICS_FLAG_SAME_ANSWER_SHARE"),
        description="When one answer (low, most likely, high) went to at least this share of a run's "
        "different conversations (10 or more), those estimates are flagged `same_answer`.",
    )

    # --- queue ---------------------------------------------------------------------
    queue_backend: QueueBackend = Field(
        QueueBackend.LOCAL_HTTP,
        validation_alias=_env("ANALYTICS_QUEUE_BACKEND"),
        description="`cloud_tasks`, `local_http` (functions-framework on loopback) or `inline`.",
    )
    gcp_project: str = Field(
        "", validation_alias=_env("ANALYTICS_GCP_PROJECT"), description="Google Cloud project id."
    )
    gcp_region: str = Field(
        "europe-west1",
        validation_alias=_env("ANALYTICS_GCP_REGION"),
        description="Region of the queue, functions and scheduler job.",
    )
    tasks_queue: str = Field(
        "time-savings-analyzer",
        validation_alias=_env("ANALYTICS_TASKS_QUEUE"),
        description="Cloud Tasks queue name.",
    )
    tasks_emulator_host: str = Field(
        "",
        validation_alias=_env("ANALYTICS_TASKS_EMULATOR_HOST"),
        description="`host:port` of gcloud-tasks-emulator; tests only.",
    )
    tasks_invoker_service_account: str = Field(
        "",
        validation_alias=_env("ANALYTICS_TASKS_SERVICE_ACCOUNT"),
        description="Service account whose OIDC token Cloud Tasks attaches to each delivery.",
    )
    analyzer_url: str = Field(
        "",
        validation_alias=_env("ANALYTICS_ANALYZER_URL"),
        description="URL of the analyzer function (also the OIDC audience it checks).",
    )
    aggregator_url: str = Field(
        "",
        validation_alias=_env("ANALYTICS_AGGREGATOR_URL"),
        description="URL of the aggregator function (also its OIDC audience).",
    )
    dispatcher_url: str = Field(
        "",
        validation_alias=_env("ANALYTICS_DISPATCHER_URL"),
        description="URL of the dispatcher function (its OIDC audience).",
    )
    scheduler_job: str = Field(
        "",
        validation_alias=_env("ANALYTICS_SCHEDULER_JOB"),
        description="Full Cloud Scheduler job name; `health` reads the next run from it in production.",
    )
    task_max_attempts: int = Field(
        10,
        ge=1,
        le=100,
        validation_alias=_env("ANALYTICS_TASK_MAX_ATTEMPTS"),
        description="Deliveries of one task before it is given up; the analyzer records the "
        "last failed attempt as a failure (Terraform sets the queue's max_attempts to this).",
    )
    task_deadline_seconds: int = Field(
        600,
        ge=15,
        le=1800,
        validation_alias=_env("ANALYTICS_TASK_DEADLINE_SECONDS"),
        description="Dispatch deadline of one task; function timeouts must not exceed it.",
    )
    scheduler_invoker_service_account: str = Field(
        "",
        validation_alias=_env("ANALYTICS_SCHEDULER_SERVICE_ACCOUNT"),
        description="Service account whose OIDC token Cloud Scheduler sends to the dispatcher.",
    )
    local_concurrency: int = Field(
        4,
        ge=1,
        le=64,
        validation_alias=_env("ANALYTICS_LOCAL_CONCURRENCY"),
        description="Parallel deliveries of the local HTTP queue.",
    )

    # --- local runs and logs ---------------------------------------------------------
    local_state_dir: Path = Field(
        LOCAL_STATE_DIR,
        validation_alias=_env("ANALYTICS_LOCAL_STATE_DIR"),
        description="Local runs only: where the embedded PostgreSQL's data, the demo database "
        "and the function logs live.",
    )
    serve_host: str = Field(
        "127.0.0.1",
        validation_alias=_env("ANALYTICS_SERVE_HOST"),
        description="`serve` only: the address the dashboard and API listen on. Any address but "
        "loopback (e.g. `0.0.0.0`) is refused while `ANALYTICS_DASHBOARD_PASSWORD` is the "
        "default or a placeholder, or shorter than 12 characters.",
    )
    log_format: str = Field(
        "text",
        validation_alias=_env("ANALYTICS_LOG_FORMAT"),
        description="`text` or `json` (structured, for Cloud Logging).",
    )

    # --- validation ----------------------------------------------------------------

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"TZ={value!r} is not an IANA time zone") from exc
        return value

    @field_validator("llm_prices", mode="before")
    @classmethod
    def _parse_prices(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return dict(DEFAULT_MODEL_PRICES)
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{_PRICES_VARIABLE} is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError(f"{_PRICES_VARIABLE} must be a JSON object of models")
        for model, row in value.items():
            if not isinstance(row, dict) or not row or not set(row) <= _PRICE_KEYS:
                raise ValueError(
                    f"{_PRICES_VARIABLE}: {model!r} must be an object with some of {sorted(_PRICE_KEYS)}"
                )
            for key, price in row.items():
                if (
                    isinstance(price, bool)
                    or not isinstance(price, (int, float))
                    or not math.isfinite(price)
                    or not 0 <= price <= 1_000_000
                ):
                    raise ValueError(f"{_PRICES_VARIABLE}: {model!r} {key!r} must be a number ≥ 0")
        return {**DEFAULT_MODEL_PRICES, **value}

    @field_validator("group_hourly_rates", mode="before")
    @classmethod
    def _parse_group_rates(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"ANALYTICS_GROUP_HOURLY_RATES is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError("ANALYTICS_GROUP_HOURLY_RATES must be a JSON object of group names")
        for name, rate in value.items():
            if (
                isinstance(rate, bool)
                or not isinstance(rate, (int, float))
                or not math.isfinite(rate)
                or not 0 <= rate <= 100_000
            ):
                raise ValueError(
                    f"ANALYTICS_GROUP_HOURLY_RATES[{name!r}] must be a number between 0 and 100000"
                )
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _blank_currency(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("hourly_rate", mode="before")
    @classmethod
    def _blank_rate(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip().lower() for host in value.split(",") if host.strip()]
        return value

    @field_validator("release_periods", mode="before")
    @classmethod
    def _release_periods(cls, value: object) -> object:
        parts = value.split(",") if isinstance(value, str) else value
        if not isinstance(parts, list | tuple):
            return value
        names = [str(part).strip() for part in parts if str(part).strip()]
        known = {period.value for period in ReleasePeriod}
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise ValueError(
                f"ANALYTICS_RELEASE_PERIODS: give one or more of {', '.join(sorted(known))} (got {value!r})"
            )
        return tuple(ReleasePeriod(name) for name in dict.fromkeys(names))

    @field_validator("pii_regions", mode="before")
    @classmethod
    def _known_regions(cls, value: object) -> object:
        parts = value.split(",") if isinstance(value, str) else value
        if not isinstance(parts, list | tuple):
            return value
        from shared.redaction import check_regions  # phonenumbers: only when regions are given

        try:
            return check_regions(str(part) for part in parts if str(part).strip())
        except ValueError as exc:
            raise ValueError(f"ANALYTICS_PII_REGIONS: {exc}") from exc

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("ANALYTICS_LOG_FORMAT must be 'text' or 'json'")
        return value

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            problems = self.production_problems()
            if problems:
                raise ConfigurationError("production settings are incomplete: " + "; ".join(problems))
        return self

    def secret_problem(self, field_name: str, variable: str) -> str | None:
        """Why the secret `field_name` is not fit for a reachable deployment, or None."""
        value = getattr(self, field_name).get_secret_value()
        if value.strip().lower() in _PLACEHOLDER_SECRETS:
            return f"{variable} is missing or a placeholder"
        if len(value) < _MIN_SECRET_LENGTH[field_name]:
            return f"{variable} is shorter than {_MIN_SECRET_LENGTH[field_name]} characters"
        return None

    def production_problems(self) -> list[str]:
        """What stops these settings from running in production, one line per variable."""
        problems: list[str] = []
        for field_name, variable in (
            ("hmac_key", "ANALYTICS_HMAC_KEY"),
            ("dashboard_password", "ANALYTICS_DASHBOARD_PASSWORD"),
        ):
            problem = self.secret_problem(field_name, variable)
            if problem:
                problems.append(problem)
        problems.extend(self._access_problems())
        if (self.hourly_rate is None) != (self.currency is None) or (
            self.group_hourly_rates and self.hourly_rate is None
        ):
            problems.append(
                "ANALYTICS_HOURLY_RATE and ANALYTICS_CURRENCY go together (with one alone no money "
                "is shown; ANALYTICS_GROUP_HOURLY_RATES needs both)"
            )
        if not self.analytics_database_url:
            problems.append("COGNIFORCE_DATABASE_URL is missing")
        if not self.source_database_url:
            problems.append("OPENWEBUI_DATABASE_URL is missing")
        api_key = self.openai_api_key.get_secret_value()
        if self.estimator is not EstimatorKind.HEURISTIC:
            if api_key and api_key.strip().lower() in _PLACEHOLDER_SECRETS:
                problems.append("OPENAI_API_KEY is a placeholder")
            elif not api_key and not self.openai_base_url:
                problems.append(
                    "OPENAI_API_KEY is missing (set it, point OPENAI_BASE_URL at a server "
                    "that needs no key, or choose ANALYTICS_ESTIMATOR=heuristic)"
                )
        if self.queue_backend is QueueBackend.CLOUD_TASKS:
            for field_name, variable in (
                ("gcp_project", "ANALYTICS_GCP_PROJECT"),
                ("tasks_invoker_service_account", "ANALYTICS_TASKS_SERVICE_ACCOUNT"),
                ("analyzer_url", "ANALYTICS_ANALYZER_URL"),
                ("aggregator_url", "ANALYTICS_AGGREGATOR_URL"),
            ):
                if not getattr(self, field_name):
                    problems.append(f"{variable} is missing (needed by the cloud_tasks queue)")
        else:
            secret = self.task_secret.get_secret_value()
            if secret.strip().lower() in _PLACEHOLDER_SECRETS:
                problems.append("ANALYTICS_TASK_SECRET is missing or a placeholder")
        secret = self.task_secret.get_secret_value()
        minimum = _MIN_SECRET_LENGTH["task_secret"]
        if secret.strip().lower() not in _PLACEHOLDER_SECRETS and len(secret) < minimum:
            problems.append(f"ANALYTICS_TASK_SECRET is shorter than {minimum} characters")
        if self.tasks_emulator_host:
            problems.append(
                "ANALYTICS_TASKS_EMULATOR_HOST is set: the Cloud Tasks emulator is for tests, "
                "never production (unset it)"
            )
        return problems

    def _access_problems(self) -> list[str]:
        """Production problems of the viewer and feedback credentials and Open WebUI's secret."""
        problems: list[str] = []
        admin = self.dashboard_password.get_secret_value()
        for field_name, variable in (
            ("viewer_password", "ANALYTICS_VIEWER_PASSWORD"),
            ("feedback_token", "ANALYTICS_FEEDBACK_TOKEN"),
        ):
            value = getattr(self, field_name).get_secret_value()
            if not value:
                continue  # the role is simply not offered
            if value.strip().lower() in _PLACEHOLDER_SECRETS:
                problems.append(f"{variable} is a placeholder")
            elif len(value) < _MIN_SECRET_LENGTH[field_name]:
                problems.append(f"{variable} is shorter than {_MIN_SECRET_LENGTH[field_name]} characters")
            if value == admin:
                problems.append(f"{variable} must differ from ANALYTICS_DASHBOARD_PASSWORD")
        viewer, feedback = self.viewer_password.get_secret_value(), self.feedback_token.get_secret_value()
        if viewer and viewer == feedback:
            problems.append("ANALYTICS_FEEDBACK_TOKEN must differ from ANALYTICS_VIEWER_PASSWORD")
        webui = self.webui_secret_key.get_secret_value()
        if webui:
            minimum = _MIN_SECRET_LENGTH["webui_secret_key"]
            if webui.strip().lower() in _KNOWN_WEBUI_SECRETS | _PLACEHOLDER_SECRETS:
                problems.append(
                    "WEBUI_SECRET_KEY is a well-known default (anyone can sign Open WebUI admin "
                    "tokens with it): set a random key in Open WebUI and here"
                )
            elif len(webui) < minimum:
                problems.append(f"WEBUI_SECRET_KEY is shorter than {minimum} characters")
        return problems

    # --- derived -------------------------------------------------------------------

    @property
    def demo_source_path(self) -> Path:
        """The demo Open WebUI database used locally when none is configured."""
        return self.local_state_dir / "demo-webui.db"

    @property
    def uses_demo_source(self) -> bool:
        """True when Open WebUI's database is the generated demo database (the dashboard says so)."""
        url = self.source_database_url
        if not url:
            return not self.is_production  # locally with nothing configured the demo is read
        prefix = "sqlite:///"
        if not url.startswith(prefix):
            return False
        return Path(url.removeprefix(prefix).split("?", 1)[0]).resolve() == self.demo_source_path.resolve()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def answered_hosts(self) -> tuple[str, ...] | None:
        """The `Host` names the api answers (lower case, no port); None: any."""
        if self.allowed_hosts:
            return tuple(self.allowed_hosts)
        return None if self.is_production else LOCAL_HOSTS

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def money_shown(self) -> bool:
        """Money appears (value, AI cost, return) only with a currency and an hourly rate."""
        return self.currency is not None and self.hourly_rate is not None

    @property
    def effective_estimator(self) -> EstimatorKind:
        """The estimator that will actually run (resolves `auto`)."""
        if self.estimator is not EstimatorKind.AUTO:
            return self.estimator
        if self.openai_api_key.get_secret_value() or self.openai_base_url:
            return EstimatorKind.LLM
        return EstimatorKind.HEURISTIC


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()


def reset_settings_cache() -> None:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()
