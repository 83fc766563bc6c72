# Inputs. Defaults mirror shared/config.py (Settings) wherever both define a value;
# tests/test_terraform.py fails when they drift apart.

# --- project and naming ---------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project id that hosts the deployment."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id (6-30 lowercase letters, digits or hyphens), not a project name or number."
  }
}

variable "region" {
  description = "Region of the functions, queue, scheduler job and analytics database (Settings.gcp_region)."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region such as europe-west1, not a zone (europe-west1-b) or a multi-region (EU)."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name: functions become <prefix>-dispatch, <prefix>-analyze, ..."
  type        = string
  default     = "time-savings"

  validation {
    # Function names double as Cloud Run service names and as the first DNS label
    # of the deterministic URL (<name>-<project number>.<region>.run.app, at most
    # 63 characters); service account ids allow at most 30 characters.
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-16 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "labels" {
  description = "Extra labels put on every resource that takes labels."
  type        = map(string)
  default     = {}
}

# --- schedule -------------------------------------------------------------------

variable "schedule" {
  description = "Cron schedule of the nightly run, in time_zone (Settings.schedule / ANALYTICS_SCHEDULE)."
  type        = string
  default     = "30 0 * * *"

  validation {
    condition     = length(regexall("^\\S+ \\S+ \\S+ \\S+ \\S+$", var.schedule)) == 1
    error_message = "schedule must be a five-field cron expression (minute hour day-of-month month day-of-week), e.g. \"30 0 * * *\"."
  }
}

variable "time_zone" {
  description = "IANA time zone that defines a day and the schedule (Settings.timezone / TZ). Avoid 02:00-03:00 schedules in zones with DST."
  type        = string
  default     = "Europe/Budapest"

  validation {
    condition     = var.time_zone == "UTC" || can(regex("^[A-Z][A-Za-z_]+(/[A-Z][A-Za-z0-9_+-]+){1,2}$", var.time_zone))
    error_message = "time_zone must be an IANA zone name such as Europe/Budapest or UTC, not an offset like +01:00 or CET."
  }
}

# --- pipeline ---------------------------------------------------------------------

variable "llm_rpm" {
  description = "LLM requests per minute the provider allows us (Settings.llm_rpm). The queue dispatches llm_rpm/60 analyses per second."
  type        = number
  default     = 50

  validation {
    # Cloud Tasks dispatches at most 500 tasks per second per queue: 500 * 60.
    condition     = var.llm_rpm >= 1 && var.llm_rpm <= 30000 && floor(var.llm_rpm) == var.llm_rpm
    error_message = "llm_rpm must be a whole number from 1 to 30000 (Cloud Tasks caps a queue at 500 dispatches per second)."
  }
}

variable "llm_latency_seconds" {
  description = "Typical wall time of one analysis (LLM call included), used to size the analyzer's instances."
  type        = number
  default     = 10

  validation {
    condition     = var.llm_latency_seconds > 0 && var.llm_latency_seconds <= 300
    error_message = "llm_latency_seconds must be above 0 and at most 300 (the analyzer's timeout)."
  }
}

variable "task_max_attempts" {
  description = "Deliveries Cloud Tasks tries per task before giving up, first attempt included (Settings.task_max_attempts: the analyzer records the last one as a failure)."
  type        = number
  default     = 10

  validation {
    condition     = var.task_max_attempts >= 1 && var.task_max_attempts <= 100 && floor(var.task_max_attempts) == var.task_max_attempts
    error_message = "task_max_attempts must be between 1 and 100; unlimited (-1) would retry a poisoned task forever."
  }
}

variable "task_deadline_seconds" {
  description = "Dispatch deadline of a Cloud Task (Settings.task_deadline_seconds): how long Cloud Tasks waits for the analyzer or aggregator before retrying. Their timeouts must not exceed it."
  type        = number
  default     = 600

  validation {
    condition     = var.task_deadline_seconds >= 15 && var.task_deadline_seconds <= 1800 && floor(var.task_deadline_seconds) == var.task_deadline_seconds
    error_message = "task_deadline_seconds must be between 15 and 1800 (the range Cloud Tasks accepts)."
  }
}

variable "lookback_days" {
  description = "A run also picks up conversations changed this many days before its date that are still unanalysed (Settings.lookback_days)."
  type        = number
  default     = 7

  validation {
    condition     = var.lookback_days >= 0 && var.lookback_days <= 90 && floor(var.lookback_days) == var.lookback_days
    error_message = "lookback_days must be a whole number from 0 to 90."
  }
}

variable "release_periods" {
  description = "Periods a viewer's figures are published for: week (ISO week), month (calendar month) (Settings.release_periods)."
  type        = list(string)
  default     = ["week", "month"]

  validation {
    condition     = length(var.release_periods) > 0 && alltrue([for period in var.release_periods : contains(["week", "month"], period)])
    error_message = "release_periods must list week, month or both."
  }
}

variable "release_grace_days" {
  description = "Days after a period closes before its release is published (Settings.release_grace_days)."
  type        = number
  default     = 3

  validation {
    condition     = var.release_grace_days >= 0 && var.release_grace_days <= 60 && floor(var.release_grace_days) == var.release_grace_days
    error_message = "release_grace_days must be a whole number from 0 to 60."
  }
}

variable "idle_threshold_minutes" {
  description = "Gaps between messages longer than this count as idle (Settings.idle_threshold_minutes)."
  type        = number
  default     = 10

  validation {
    condition     = var.idle_threshold_minutes >= 1 && var.idle_threshold_minutes <= 240 && floor(var.idle_threshold_minutes) == var.idle_threshold_minutes
    error_message = "idle_threshold_minutes must be a whole number from 1 to 240."
  }
}

variable "flagged_estimates" {
  description = "Figures built from flagged estimates: apart (excluded from the headline, shown on their own) or include (Settings.flagged_estimates)."
  type        = string
  default     = "apart"

  validation {
    condition     = contains(["apart", "include"], var.flagged_estimates)
    error_message = "flagged_estimates must be apart or include."
  }
}

variable "flag_min_confidence" {
  description = "An estimate whose confidence (0-1) is below this is flagged low_confidence (Settings.flag_min_confidence)."
  type        = number
  default     = 0.2

  validation {
    condition     = var.flag_min_confidence >= 0 && var.flag_min_confidence <= 1
    error_message = "flag_min_confidence must be between 0 and 1."
  }
}

variable "flag_max_band_ratio" {
  description = "An estimate whose band (high / low) is wider than this factor is flagged wide_band (Settings.flag_max_band_ratio)."
  type        = number
  default     = 20

  validation {
    condition     = var.flag_max_band_ratio >= 1 && var.flag_max_band_ratio <= 10000
    error_message = "flag_max_band_ratio must be between 1 and 10000."
  }
}

variable "flag_same_answer_share" {
  description = "One answer given to at least this share of a run's different conversations flags them same_answer (Settings.flag_same_answer_share)."
  type        = number
  default     = 0.8

  validation {
    condition     = var.flag_same_answer_share > 0 && var.flag_same_answer_share <= 1
    error_message = "flag_same_answer_share must be above 0 and at most 1."
  }
}

variable "max_conversations_per_run" {
  description = "Conversations one run enqueues; the rest waits for the next run (Settings.max_conversations_per_run)."
  type        = number
  default     = 1000

  validation {
    condition     = var.max_conversations_per_run >= 1 && var.max_conversations_per_run <= 1000000 && floor(var.max_conversations_per_run) == var.max_conversations_per_run
    error_message = "max_conversations_per_run must be a whole number from 1 to 1000000."
  }
}

# --- calibration and feedback ---------------------------------------------------

variable "calibration_factor_min" {
  description = "Smallest calibration factor; answers saying less are bounded here (Settings.calibration_factor_min)."
  type        = number
  default     = 0.25

  validation {
    condition     = var.calibration_factor_min > 0 && var.calibration_factor_min <= 1
    error_message = "calibration_factor_min must be above 0 and at most 1."
  }
}

variable "calibration_factor_max" {
  description = "Largest calibration factor; answers saying more are bounded here (Settings.calibration_factor_max)."
  type        = number
  default     = 4.0

  validation {
    condition     = var.calibration_factor_max >= 1 && var.calibration_factor_max <= 100
    error_message = "calibration_factor_max must be between 1 and 100."
  }
}

variable "calibration_change_threshold" {
  description = "A factor moving by more than this ratio waits for `recalibrate` (Settings.calibration_change_threshold)."
  type        = number
  default     = 1.5

  validation {
    condition     = var.calibration_change_threshold > 1 && var.calibration_change_threshold <= 100
    error_message = "calibration_change_threshold must be above 1 and at most 100."
  }
}

variable "feedback_daily_limit" {
  description = "Feedback answers one person may give per local day; beyond it 429 (Settings.feedback_daily_limit)."
  type        = number
  default     = 100

  validation {
    condition     = var.feedback_daily_limit >= 1 && var.feedback_daily_limit <= 100000 && floor(var.feedback_daily_limit) == var.feedback_daily_limit
    error_message = "feedback_daily_limit must be a whole number from 1 to 100000."
  }
}

# --- estimator --------------------------------------------------------------------

variable "estimator" {
  description = "Estimator: llm, heuristic or auto (Settings.estimator)."
  type        = string
  default     = "llm"

  validation {
    # estimator-names:start (python -m infra.estimator_names --write)
    condition     = contains(["auto", "llm", "heuristic"], var.estimator)
    error_message = "estimator must be auto, llm or heuristic."
    # estimator-names:end
  }
}

variable "openai_model" {
  description = "Model that estimates manual time (Settings.openai_model)."
  type        = string
  default     = "gpt-4o-mini"
}

variable "openai_base_url" {
  description = "OpenAI-compatible endpoint; empty means OpenAI itself (Settings.openai_base_url)."
  type        = string
  default     = ""

  validation {
    condition     = var.openai_base_url == "" || can(regex("^https?://", var.openai_base_url))
    error_message = "openai_base_url must be empty or an http(s) URL such as https://example.openai.azure.com/openai/v1."
  }
}

# --- secret versions pinned into the functions -----------------------------------
# Values an operator provides are added with `gcloud secrets versions add`; the
# functions read exactly the version named here, so a rotation is an explicit
# change of this number followed by `terraform apply`.

variable "openai_api_key_version" {
  description = "Version number of the openai-api-key secret the functions use. Empty: no key is mounted (only valid with estimator = heuristic or an openai_base_url that needs no key)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([1-9][0-9]*)?$", var.openai_api_key_version))
    error_message = "openai_api_key_version must be a version number such as \"1\" (never \"latest\": versions are pinned) or empty."
  }
}

variable "openwebui_database_url_version" {
  description = "Version number of the openwebui-database-url secret (Open WebUI's database URL, read-only role)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([1-9][0-9]*)?$", var.openwebui_database_url_version))
    error_message = "openwebui_database_url_version must be a version number such as \"1\" (never \"latest\") or empty before the first version exists."
  }
}

variable "webui_secret_key_version" {
  description = "Version number of the webui-secret-key secret (Open WebUI's WEBUI_SECRET_KEY), mounted into the api so Open WebUI admin sessions are accepted. Empty: password login only."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([1-9][0-9]*)?$", var.webui_secret_key_version))
    error_message = "webui_secret_key_version must be a version number such as \"1\" (never \"latest\") or empty."
  }
}

# --- Open WebUI's database ----------------------------------------------------------

variable "openwebui_cloudsql_instance" {
  description = "Connection name (project:region:instance) of Open WebUI's Cloud SQL instance, reached through the Cloud SQL connector. Empty when Open WebUI's database is reachable by the URL alone."
  type        = string
  default     = ""

  validation {
    condition     = var.openwebui_cloudsql_instance == "" || can(regex("^([a-z0-9.-]+:)?[a-z][a-z0-9-]+:[a-z]+-[a-z]+[0-9]+:[a-z][a-z0-9-]*$", var.openwebui_cloudsql_instance))
    error_message = "openwebui_cloudsql_instance must be a connection name such as my-project:europe-west1:openwebui (see `gcloud sql instances describe INSTANCE --format='value(connectionName)'`)."
  }
}

# --- analytics database --------------------------------------------------------------

variable "db_version" {
  description = "Cloud SQL PostgreSQL major version of the analytics database (15 or later: migrations use NULLS NOT DISTINCT)."
  type        = string
  default     = "POSTGRES_17"

  validation {
    condition     = contains(["POSTGRES_15", "POSTGRES_16", "POSTGRES_17", "POSTGRES_18"], var.db_version)
    error_message = "db_version must be POSTGRES_15, POSTGRES_16, POSTGRES_17 or POSTGRES_18."
  }
}

variable "db_tier" {
  description = "Machine tier of the analytics database (Cloud SQL Enterprise edition)."
  type        = string
  default     = "db-custom-1-3840"

  validation {
    condition     = can(regex("^db-(custom-[0-9]+-[0-9]+|g1-small|f1-micro)$", var.db_tier))
    error_message = "db_tier must be an Enterprise edition tier such as db-custom-1-3840, db-custom-2-7680 or db-g1-small."
  }
}

variable "db_availability_type" {
  description = "ZONAL (one zone) or REGIONAL (high availability with a standby in another zone, twice the cost)."
  type        = string
  default     = "ZONAL"

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.db_availability_type)
    error_message = "db_availability_type must be ZONAL or REGIONAL."
  }
}

variable "db_max_connections" {
  description = "max_connections of the analytics database; function instance limits are derived from it."
  type        = number
  default     = 100

  validation {
    condition     = var.db_max_connections >= 50 && var.db_max_connections <= 4000
    error_message = "db_max_connections must be between 50 and 4000 (and within what the tier's memory allows)."
  }
}

variable "db_pool_size" {
  description = "Connections each function instance keeps (Settings.db_pool_size)."
  type        = number
  default     = 2

  validation {
    condition     = var.db_pool_size >= 1 && var.db_pool_size <= 50 && floor(var.db_pool_size) == var.db_pool_size
    error_message = "db_pool_size must be a whole number from 1 to 50."
  }
}

variable "db_backup_retained_count" {
  description = "Daily backups kept."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retained_count >= 1 && var.db_backup_retained_count <= 365
    error_message = "db_backup_retained_count must be between 1 and 365."
  }
}

variable "db_deletion_protection" {
  description = "Protects the analytics database from deletion, by Terraform and in the API. Set to false and apply before destroying."
  type        = bool
  default     = true
}

# --- functions -------------------------------------------------------------------------

variable "function_runtime" {
  description = "Python runtime of the functions."
  type        = string
  default     = "python311"

  validation {
    condition     = contains(["python311", "python312"], var.function_runtime)
    error_message = "function_runtime must be python311 or python312 (the code needs Python 3.11 or later)."
  }
}

variable "pipeline_ingress_settings" {
  description = "Ingress of dispatch, analyze and aggregate. ALLOW_INTERNAL_ONLY admits Cloud Tasks and Cloud Scheduler of the same project on the run.app URL; ALLOW_ALL is the fallback when a VPC Service Controls perimeter or a custom domain is in the way (OIDC still guards every call)."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"], var.pipeline_ingress_settings)
    error_message = "pipeline_ingress_settings must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

# --- settings of the app (shared/config.py) ----------------------------------------
# Each reaches every function through local.required_environment/optional_environment
# in functions.tf; tests/test_terraform.py fails on a Settings field that neither
# reaches the functions nor is listed in shared.config.LOCAL_ONLY, and checks that
# these validations accept exactly what Settings accepts.

variable "migrate_on_start" {
  description = "Apply pending migrations when a function first connects, under the migration lock (Settings.migrate_on_start). false leaves it to `python main.py migrate`."
  type        = bool
  default     = true
}

variable "llm_timeout_seconds" {
  description = "Timeout of one LLM request; a timeout is retried by the queue (Settings.llm_timeout_seconds)."
  type        = number
  default     = 60

  validation {
    condition     = var.llm_timeout_seconds > 0 && var.llm_timeout_seconds <= 600
    error_message = "llm_timeout_seconds must be above 0 and at most 600."
  }
}

variable "model_prices" {
  description = "Prices over the built-in table, USD per 1M tokens, by model: {\"my-model\" = {input = 0.15, cached_input = 0.075, output = 0.6}} (Settings.llm_prices / ANALYTICS_MODEL_PRICES). A model without a price is shown as unpriced, never as free."
  type        = map(map(number))
  default     = {}

  validation {
    condition = alltrue([
      for model, row in var.model_prices : length(row) > 0 && alltrue([
        for key, price in row : contains(["input", "cached_input", "output"], key) && price >= 0 && price <= 1000000
      ])
    ])
    error_message = "model_prices: each model needs some of input, cached_input and output, each a number from 0 to 1000000."
  }
}

variable "digest_token_budget" {
  description = "Upper bound, in tokens, of the redacted transcript digest sent to the estimator (Settings.digest_token_budget)."
  type        = number
  default     = 1500

  validation {
    condition     = var.digest_token_budget >= 200 && var.digest_token_budget <= 20000 && floor(var.digest_token_budget) == var.digest_token_budget
    error_message = "digest_token_budget must be a whole number from 200 to 20000."
  }
}

variable "digest_mode" {
  description = "full (the estimator sees the redacted asks) or counts (no text of the conversation at all) (Settings.digest_mode)."
  type        = string
  default     = "full"

  validation {
    condition     = contains(["full", "counts"], var.digest_mode)
    error_message = "digest_mode must be full or counts."
  }
}

variable "pii_regions" {
  description = "ISO region codes whose national phone number formats the redaction recognises (Settings.pii_regions)."
  type        = list(string)
  default     = ["HU", "DE", "AT", "GB", "FR", "IT", "ES", "NL", "PL", "CZ", "SK", "RO", "US", "CA"]

  validation {
    condition     = length(var.pii_regions) > 0 && alltrue([for region in var.pii_regions : can(regex("^[A-Za-z]{2}$", region))])
    error_message = "pii_regions must list at least one two-letter region code, such as HU, DE or US."
  }
}

variable "viewer_role" {
  description = "Generate a viewer password (management: aggregates only) into the viewer-password secret and give it to the api (Settings.viewer_password). Read it with `gcloud secrets versions access latest --secret=<prefix>-viewer-password`."
  type        = bool
  default     = false
}

variable "feedback_role" {
  description = "Generate the feedback token of Open WebUI's \"Time saved\" Action into the feedback-token secret and give it to the api (Settings.feedback_token). Paste it into the Action's feedback_token Valve."
  type        = bool
  default     = false
}

variable "openwebui_token_max_age_hours" {
  description = "An Open WebUI token without exp is accepted this many hours after its iat (Settings.openwebui_token_max_age_hours)."
  type        = number
  default     = 672

  validation {
    condition     = var.openwebui_token_max_age_hours >= 1 && var.openwebui_token_max_age_hours <= 8760 && floor(var.openwebui_token_max_age_hours) == var.openwebui_token_max_age_hours
    error_message = "openwebui_token_max_age_hours must be a whole number from 1 to 8760."
  }
}

variable "session_ttl_minutes" {
  description = "Lifetime of a dashboard login session (Settings.session_ttl_minutes)."
  type        = number
  default     = 480

  validation {
    condition     = var.session_ttl_minutes >= 5 && var.session_ttl_minutes <= 10080 && floor(var.session_ttl_minutes) == var.session_ttl_minutes
    error_message = "session_ttl_minutes must be a whole number from 5 to 10080."
  }
}

variable "session_idle_minutes" {
  description = "A dashboard session unused for this long ends (Settings.session_idle_minutes)."
  type        = number
  default     = 60

  validation {
    condition     = var.session_idle_minutes >= 1 && var.session_idle_minutes <= 10080 && floor(var.session_idle_minutes) == var.session_idle_minutes
    error_message = "session_idle_minutes must be a whole number from 1 to 10080."
  }
}

variable "login_max_failures" {
  description = "Failed sign-ins one client may make per window before it must wait (Settings.login_max_failures)."
  type        = number
  default     = 10

  validation {
    condition     = var.login_max_failures >= 1 && var.login_max_failures <= 1000 && floor(var.login_max_failures) == var.login_max_failures
    error_message = "login_max_failures must be a whole number from 1 to 1000."
  }
}

variable "login_global_max_failures" {
  description = "Failed sign-ins from all clients together per window before a wrong credential is answered 429 instead of 401 (Settings.login_global_max_failures)."
  type        = number
  default     = 100

  validation {
    condition     = var.login_global_max_failures >= 1 && var.login_global_max_failures <= 100000 && floor(var.login_global_max_failures) == var.login_global_max_failures
    error_message = "login_global_max_failures must be a whole number from 1 to 100000."
  }
}

variable "login_failure_window_seconds" {
  description = "The sliding window of the failed sign-in limits (Settings.login_failure_window_seconds)."
  type        = number
  default     = 300

  validation {
    condition     = var.login_failure_window_seconds >= 10 && var.login_failure_window_seconds <= 86400 && floor(var.login_failure_window_seconds) == var.login_failure_window_seconds
    error_message = "login_failure_window_seconds must be a whole number from 10 to 86400."
  }
}

variable "allowed_hosts" {
  description = "Host names (no port) the api answers, others get 400 (Settings.allowed_hosts). Empty: any host (the run.app URL and a custom domain alike)."
  type        = list(string)
  default     = []
}

variable "chart_render_seconds" {
  description = "Time budget of drawing one dashboard chart (Settings.chart_render_seconds)."
  type        = number
  default     = 3

  validation {
    condition     = var.chart_render_seconds > 0 && var.chart_render_seconds <= 60
    error_message = "chart_render_seconds must be above 0 and at most 60."
  }
}

variable "min_group_size" {
  description = "Groups with fewer members are hidden from group breakdowns; the viewer role's disclosure floor (Settings.min_group_size)."
  type        = number
  default     = 5

  validation {
    condition     = var.min_group_size >= 1 && var.min_group_size <= 1000 && floor(var.min_group_size) == var.min_group_size
    error_message = "min_group_size must be a whole number from 1 to 1000."
  }
}

variable "hourly_rate" {
  description = "What an hour of working time is worth, in currency (Settings.hourly_rate). Set it and currency together to show money; null: no money anywhere."
  type        = number
  default     = null

  validation {
    condition     = var.hourly_rate == null || (var.hourly_rate >= 0 && var.hourly_rate <= 100000)
    error_message = "hourly_rate must be null or a number from 0 to 100000."
  }
}

variable "currency" {
  description = "ISO 4217 code of the hourly rates, e.g. EUR (Settings.currency). Empty: no money."
  type        = string
  default     = ""

  validation {
    condition     = var.currency == "" || can(regex("^[A-Z]{3}$", var.currency))
    error_message = "currency must be empty or an ISO 4217 code in capitals, such as EUR or USD."
  }
}

variable "group_hourly_rates" {
  description = "Hourly rates by Open WebUI group name, e.g. {Legal = 90}; people in no listed group take hourly_rate (Settings.group_hourly_rates)."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for name, rate in var.group_hourly_rates : rate >= 0 && rate <= 100000])
    error_message = "group_hourly_rates must map group names to numbers from 0 to 100000."
  }
}

variable "stale_run_minutes" {
  description = "An open run that records no outcome for this long is closed as stale (Settings.stale_run_minutes)."
  type        = number
  default     = 120

  validation {
    condition     = var.stale_run_minutes >= 1 && var.stale_run_minutes <= 2880 && floor(var.stale_run_minutes) == var.stale_run_minutes
    error_message = "stale_run_minutes must be a whole number from 1 to 2880."
  }
}

variable "calibration" {
  description = "Calibrated figures: off, show (beside the raw ones) or apply (the headline) (Settings.calibration)."
  type        = string
  default     = "off"

  validation {
    condition     = contains(["off", "show", "apply"], var.calibration)
    error_message = "calibration must be off, show or apply."
  }
}

variable "calibration_min_confirmations" {
  description = "Below this many confirmations a calibration group reports \"not enough confirmations\" (Settings.calibration_min_confirmations)."
  type        = number
  default     = 20

  validation {
    condition     = var.calibration_min_confirmations >= 2 && var.calibration_min_confirmations <= 100000 && floor(var.calibration_min_confirmations) == var.calibration_min_confirmations
    error_message = "calibration_min_confirmations must be a whole number from 2 to 100000."
  }
}
