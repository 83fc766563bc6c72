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
    condition     = var.task_max_attempts >= 1 && var.task_max_attempts <= 100
    error_message = "task_max_attempts must be between 1 and 100; unlimited (-1) would retry a poisoned task forever."
  }
}

variable "task_deadline_seconds" {
  description = "Dispatch deadline of a Cloud Task (Settings.task_deadline_seconds): how long Cloud Tasks waits for the analyzer or aggregator before retrying. Their timeouts must not exceed it."
  type        = number
  default     = 600

  validation {
    condition     = var.task_deadline_seconds >= 15 && var.task_deadline_seconds <= 1800
    error_message = "task_deadline_seconds must be between 15 and 1800 (the range Cloud Tasks accepts)."
  }
}

variable "lookback_days" {
  description = "A run also picks up conversations changed this many days before its date that are still unanalysed (Settings.lookback_days)."
  type        = number
  default     = 7

  validation {
    condition     = var.lookback_days >= 0 && var.lookback_days <= 90
    error_message = "lookback_days must be between 0 and 90."
  }
}

variable "release_periods" {
  description = "Comma-separated periods a viewer's figures are published for: week, month (Settings.release_periods)."
  type        = string
  default     = "week,month"

  validation {
    condition     = length(var.release_periods) > 0 && alltrue([for p in split(",", var.release_periods) : contains(["week", "month"], trimspace(p))])
    error_message = "release_periods must be a comma-separated list of week and month."
  }
}

variable "release_grace_days" {
  description = "Days after a period closes before its release is published (Settings.release_grace_days)."
  type        = number
  default     = 3

  validation {
    condition     = var.release_grace_days >= 0 && var.release_grace_days <= 60
    error_message = "release_grace_days must be between 0 and 60."
  }
}

variable "idle_threshold_minutes" {
  description = "Gaps between messages longer than this count as idle (Settings.idle_threshold_minutes)."
  type        = number
  default     = 10

  validation {
    condition     = var.idle_threshold_minutes >= 1 && var.idle_threshold_minutes <= 240
    error_message = "idle_threshold_minutes must be between 1 and 240."
  }
}

variable "max_conversations_per_run" {
  description = "Conversations one run enqueues; the rest waits for the next run (Settings.max_conversations_per_run)."
  type        = number
  default     = 1000

  validation {
    condition     = var.max_conversations_per_run >= 1 && var.max_conversations_per_run <= 1000000
    error_message = "max_conversations_per_run must be between 1 and 1000000."
  }
}

# --- estimator --------------------------------------------------------------------

variable "estimator" {
  description = "Estimator: llm, heuristic or auto (Settings.estimator)."
  type        = string
  default     = "llm"

  validation {
    condition     = contains(["auto", "llm", "heuristic"], var.estimator)
    error_message = "estimator must be auto, llm or heuristic."
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
    condition     = var.db_pool_size >= 1 && var.db_pool_size <= 50
    error_message = "db_pool_size must be between 1 and 50."
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
