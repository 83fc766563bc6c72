# The four functions, built from one source archive of the repository.

locals {
  # --- the functions ----------------------------------------------------------------
  # One entry per function, keyed by its entry point in main.py (also the suffix of
  # its name, service account and URL), holding what differs between them; the
  # resource at the end of this file gives all four everything else alike.
  #
  # Timeouts: Cloud Tasks waits task_deadline_seconds (the dispatch deadline
  # shared/queue.py sets on every task) for the function a task targets. A
  # function that outlives it is retried while it still runs, so a task target's
  # timeout must fit inside it (precondition below). The dispatcher is called by
  # Cloud Scheduler, whose attempt_deadline follows its timeout (scheduler.tf).
  functions = {
    dispatch = {
      description     = "Opens a run and enqueues one analysis task per changed conversation (Cloud Scheduler, nightly)."
      timeout_seconds = 540 # enqueues up to max_conversations_per_run tasks concurrently
      ingress         = var.pipeline_ingress_settings
      task_target     = false
    }
    analyze = {
      description     = "Analyses one conversation per Cloud Task: timing, redaction, estimate, upsert."
      timeout_seconds = 300 # one conversation: source read, one LLM call with retries, upsert
      ingress         = var.pipeline_ingress_settings
      task_target     = true
    }
    aggregate = {
      description     = "Recomputes the daily aggregates a run touched and closes the run (Cloud Task from the last analysis)."
      timeout_seconds = 540 # recomputes the touched days in one transaction
      ingress         = var.pipeline_ingress_settings
      task_target     = true
    }
    # The only public function: browsers open the dashboard, the app authenticates admins.
    api = {
      description     = "Dashboard page, read API, CSV export, health and manual trigger (admin authentication in the app)."
      timeout_seconds = 540 # a manual trigger runs a dispatch in-process; CSV export streams
      ingress         = "ALLOW_ALL"
      task_target     = false
    }
  }

  function_names = { for key in keys(local.functions) : key => "${var.name_prefix}-${key}" }

  # Deterministic Cloud Run URLs, https://SERVICE-PROJECT_NUMBER.REGION.run.app
  # (a gen2 function is a Cloud Run service of the same name). They are known
  # before the services exist, so one function can be told another's URL without
  # referencing its resource: no dependency cycle (the dispatcher needs the
  # analyzer's URL, the analyzer the aggregator's, all of them their own as OIDC
  # audience). They are run.app URLs on purpose: Cloud Run counts calls from
  # Cloud Tasks and Cloud Scheduler of the same project as internal traffic only
  # on the default run.app URLs, which lets the pipeline functions refuse the
  # internet (ALLOW_INTERNAL_ONLY) while their OIDC-authenticated tasks get in.
  function_urls = {
    for key, name in local.function_names :
    key => "https://${name}-${local.project_number}.${var.region}.run.app"
  }

  scheduler_job_name = "${var.name_prefix}-nightly"
  # Full name, computed rather than read from the job: the job targets the
  # dispatcher, so reading it back here would be a cycle.
  scheduler_job_id = "projects/${var.project_id}/locations/${var.region}/jobs/${local.scheduler_job_name}"

  # Cloud Tasks' dispatch deadline, which the task targets' timeouts must fit.
  task_dispatch_deadline_seconds = var.task_deadline_seconds

  # --- instances ------------------------------------------------------------------
  # Every instance serves one request at a time (max_instance_request_concurrency
  # = 1) and holds up to db_pool_size connections, so instances x pool must stay
  # below max_connections.
  max_instances_fixed = {
    dispatch  = 2 # one run at a time; the second absorbs a Scheduler retry
    aggregate = 2 # one per run; the second absorbs a duplicate delivery
    api       = 3 # a handful of admins
  }

  # The analyzer is sized by the LLM: the queue starts llm_rpm/60 analyses per
  # second, each lasts about llm_latency_seconds, so Little's law gives the number
  # in flight: rate x latency.
  queue_dispatches_per_second = var.llm_rpm / 60
  analyzer_instances_for_llm  = ceil(local.queue_dispatches_per_second * var.llm_latency_seconds)

  # ... and capped by the database: what the other functions can hold at their
  # maximum, 3 connections Cloud SQL reserves for superusers, and 5 for operators
  # (psql through the proxy, `python main.py migrate`) are not available to it.
  db_connections_reserved   = sum(values(local.max_instances_fixed)) * var.db_pool_size + 3 + 5
  analyzer_instances_for_db = floor((var.db_max_connections - local.db_connections_reserved) / var.db_pool_size)

  analyzer_max_instances = max(1, min(local.analyzer_instances_for_llm, local.analyzer_instances_for_db))

  max_instances          = merge(local.max_instances_fixed, { analyze = local.analyzer_max_instances })
  db_connections_at_peak = (sum(values(local.max_instances)) * var.db_pool_size) + 3 + 5

  # --- environment ----------------------------------------------------------------
  # Every name is an alias of a field of shared.config.Settings, and every field
  # is set here, mounted as a secret (secrets.tf) or listed in
  # shared.config.LOCAL_ONLY (checked by tests/test_terraform.py). All four
  # functions get the same plain settings: each builds and validates the whole
  # Settings, and the pipeline and the api must agree on rates, calibration and
  # redaction (the api records rates too, and reads what the pipeline wrote).
  required_environment = {
    ANALYTICS_ENVIRONMENT               = "production"
    ANALYTICS_CLOUDSQL_INSTANCE         = google_sql_database_instance.analytics.connection_name
    ANALYTICS_DB_POOL_SIZE              = tostring(var.db_pool_size)
    ANALYTICS_ESTIMATOR                 = var.estimator
    ANALYTICS_OPENAI_MODEL              = var.openai_model
    ANALYTICS_LLM_RPM                   = tostring(var.llm_rpm)
    TZ                                  = var.time_zone
    ANALYTICS_SCHEDULE                  = var.schedule
    ANALYTICS_IDLE_THRESHOLD            = tostring(var.idle_threshold_minutes)
    ANALYTICS_MAX_CONVERSATIONS         = tostring(var.max_conversations_per_run)
    ANALYTICS_LOOKBACK_DAYS             = tostring(var.lookback_days)
    ANALYTICS_RELEASE_PERIODS           = join(",", var.release_periods)
    ANALYTICS_RELEASE_GRACE_DAYS        = tostring(var.release_grace_days)
    ANALYTICS_QUEUE_BACKEND             = "cloud_tasks"
    ANALYTICS_GCP_PROJECT               = var.project_id
    ANALYTICS_GCP_REGION                = var.region
    ANALYTICS_TASKS_QUEUE               = google_cloud_tasks_queue.pipeline.name
    ANALYTICS_TASKS_SERVICE_ACCOUNT     = google_service_account.platform["tasks"].email
    ANALYTICS_TASK_MAX_ATTEMPTS         = tostring(var.task_max_attempts)
    ANALYTICS_TASK_DEADLINE_SECONDS     = tostring(var.task_deadline_seconds)
    ANALYTICS_SCHEDULER_SERVICE_ACCOUNT = google_service_account.platform["scheduler"].email
    ANALYTICS_DISPATCHER_URL            = local.function_urls.dispatch
    ANALYTICS_ANALYZER_URL              = local.function_urls.analyze
    ANALYTICS_AGGREGATOR_URL            = local.function_urls.aggregate
    ANALYTICS_SCHEDULER_JOB             = local.scheduler_job_id
    ANALYTICS_LOG_FORMAT                = "json"

    ANALYTICS_MIGRATE_ON_START              = tostring(var.migrate_on_start)
    ANALYTICS_LLM_TIMEOUT_SECONDS           = tostring(var.llm_timeout_seconds)
    ANALYTICS_DIGEST_TOKEN_BUDGET           = tostring(var.digest_token_budget)
    ANALYTICS_DIGEST_MODE                   = var.digest_mode
    ANALYTICS_PII_REGIONS                   = join(",", var.pii_regions)
    ANALYTICS_OPENWEBUI_TOKEN_MAX_AGE_HOURS = tostring(var.openwebui_token_max_age_hours)
    ANALYTICS_SESSION_TTL_MINUTES           = tostring(var.session_ttl_minutes)
    ANALYTICS_SESSION_IDLE_MINUTES          = tostring(var.session_idle_minutes)
    ANALYTICS_LOGIN_MAX_FAILURES            = tostring(var.login_max_failures)
    ANALYTICS_LOGIN_GLOBAL_MAX_FAILURES     = tostring(var.login_global_max_failures)
    ANALYTICS_LOGIN_FAILURE_WINDOW_SECONDS  = tostring(var.login_failure_window_seconds)
    ANALYTICS_CHART_RENDER_SECONDS          = tostring(var.chart_render_seconds)
    ANALYTICS_MIN_GROUP_SIZE                = tostring(var.min_group_size)
    ANALYTICS_STALE_RUN_MINUTES             = tostring(var.stale_run_minutes)
    ANALYTICS_CALIBRATION                   = var.calibration
    ANALYTICS_CALIBRATION_MIN_CONFIRMATIONS = tostring(var.calibration_min_confirmations)
    ANALYTICS_FLAGGED_ESTIMATES             = var.flagged_estimates
    ANALYTICS_FLAG_MIN_CONFIDENCE           = tostring(var.flag_min_confidence)
    ANALYTICS_FLAG_MAX_BAND_RATIO           = tostring(var.flag_max_band_ratio)
    ANALYTICS_FLAG_SAME_ANSWER_SHARE        = tostring(var.flag_same_answer_share)
    # calibration that resists poisoning, and the feedback endpoint's daily limit
    ANALYTICS_CALIBRATION_FACTOR_MIN       = tostring(var.calibration_factor_min)
    ANALYTICS_CALIBRATION_FACTOR_MAX       = tostring(var.calibration_factor_max)
    ANALYTICS_CALIBRATION_CHANGE_THRESHOLD = tostring(var.calibration_change_threshold)
    ANALYTICS_FEEDBACK_DAILY_LIMIT         = tostring(var.feedback_daily_limit)
  }
  # Left out when empty, so the Settings defaults apply.
  optional_environment = {
    OPENAI_BASE_URL              = var.openai_base_url
    OPENWEBUI_CLOUDSQL_INSTANCE  = var.openwebui_cloudsql_instance
    ANALYTICS_MODEL_PRICES       = length(var.model_prices) == 0 ? "" : jsonencode(var.model_prices)
    ANALYTICS_ALLOWED_HOSTS      = join(",", var.allowed_hosts)
    ANALYTICS_HOURLY_RATE        = var.hourly_rate == null ? "" : tostring(var.hourly_rate)
    ANALYTICS_CURRENCY           = var.currency
    ANALYTICS_GROUP_HOURLY_RATES = length(var.group_hourly_rates) == 0 ? "" : jsonencode(var.group_hourly_rates)
  }
  environment = merge(
    local.required_environment,
    { for name, value in local.optional_environment : name => value if value != "" },
  )

  # Conditions every function checks before it is deployed; they mirror
  # Settings.production_problems() for what Terraform cannot generate itself.
  openwebui_url_configured  = var.openwebui_database_url_version != ""
  estimator_key_configured  = var.estimator == "heuristic" || var.openai_api_key_version != "" || var.openai_base_url != ""
  db_connections_sufficient = local.db_connections_at_peak <= var.db_max_connections
  # Money needs an hourly rate and its currency together; group rates refine the rate.
  money_configured = (var.hourly_rate == null) == (var.currency == "") && (length(var.group_hourly_rates) == 0 || var.hourly_rate != null)
}

# --- source archive -----------------------------------------------------------------

data "archive_file" "source" {
  type        = "zip"
  source_dir  = "${path.module}/.."
  output_path = "${path.module}/.terraform/function-source.zip"

  # What is left is the runtime: main.py, requirements.txt, functions/, shared/,
  # migrations/. Patterns are globs matched against paths relative to the
  # repository root (archive provider >= 2.5); a matching directory is skipped
  # whole. tests/test_terraform.py applies them to the working tree and fails if
  # anything else would be shipped. ".?*" rather than ".*": the latter also
  # matches "." (the root itself) and would empty the archive.
  excludes = [
    ".?*",    # .git, .venv*, .local, .ci, caches, .env files
    "**/.?*", # dotfiles further down
    "**/__pycache__",
    "**/*.pyc",
    "bench",
    "infra",
    "integrations", # the Open WebUI Action is imported into Open WebUI, not deployed
    "terraform",
    "tests",
    "test-artifacts",
    "docs",
    "spec",
    "node_modules",
    "*.md",
    "Makefile",
    "pyproject.toml",
    "requirements-*.txt",
  ]
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs regenerated from the repository, never public; an access-log bucket would need this same exemption.
  name                        = "${var.project_id}-${var.name_prefix}-source"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # nothing here that the repository cannot rebuild
  labels                      = local.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_object" "source" {
  # Named after the archive's hash: any change to the runtime files is a new
  # object, which changes build_config and redeploys all four functions.
  name   = "function-source-${data.archive_file.source.output_sha256}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

# --- functions --------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "function" {
  #checkov:skip=CKV_GCP_124:The api must accept internet traffic (browsers open the dashboard, the app authenticates admins); tests/test_terraform.py checks that every other function keeps var.pipeline_ingress_settings.
  for_each = local.functions

  name        = local.function_names[each.key]
  project     = var.project_id
  location    = var.region
  description = each.value.description
  labels      = local.labels

  build_config {
    runtime         = var.function_runtime
    entry_point     = each.key
    service_account = google_service_account.platform["build"].id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    timeout_seconds                  = each.value.timeout_seconds
    max_instance_count               = local.max_instances[each.key]
    min_instance_count               = 0
    max_instance_request_concurrency = 1 # the connection budget above assumes it
    ingress_settings                 = each.value.ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function[each.key].email
    environment_variables            = local.environment

    dynamic "secret_environment_variables" {
      for_each = local.function_secrets[each.key]
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret
        version    = secret_environment_variables.value.version
      }
    }
  }

  lifecycle {
    precondition {
      condition     = !each.value.task_target || each.value.timeout_seconds <= local.task_dispatch_deadline_seconds
      error_message = "The ${each.key} function's timeout (timeout_seconds in functions.tf) exceeds task_deadline_seconds: Cloud Tasks would retry it while it still runs. Raise task_deadline_seconds or lower the timeout."
    }
    precondition {
      condition     = local.openwebui_url_configured
      error_message = "Set openwebui_database_url_version: add Open WebUI's database URL with `gcloud secrets versions add` first (README, first run)."
    }
    precondition {
      condition     = local.estimator_key_configured
      error_message = "Set openai_api_key_version (README, first run), or set openai_base_url to a server that needs no key, or estimator = \"heuristic\"."
    }
    precondition {
      condition     = local.money_configured
      error_message = "Set hourly_rate and currency together (with one alone no money is shown); group_hourly_rates needs both."
    }
    precondition {
      # Checked once, on the analyzer: it gets the connections the others leave.
      condition     = each.key != "analyze" || local.db_connections_sufficient
      error_message = "max instances x db_pool_size exceeds db_max_connections: raise db_max_connections (and db_tier) or lower db_pool_size."
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.function, google_project_iam_member.build]
}
