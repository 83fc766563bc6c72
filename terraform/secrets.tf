# Secrets. Two kinds:
# - values we own (HMAC key, dashboard password, database password) are generated
#   by random_password and written as a secret version by Terraform. They are in
#   the state (as every generated value is), never in a variable or a file: keep
#   the state in a bucket only operators can read.
# - values someone else owns (the OpenAI key, Open WebUI's database URL and its
#   WEBUI_SECRET_KEY) get an empty secret container here; an operator adds the
#   value with `gcloud secrets versions add` and pins the version number in a
#   *_version variable. They never pass through Terraform.
# Functions mount numeric versions only, so a rotation is always a deliberate
# apply that rolls out new revisions (README: "Rotating secrets").

locals {
  secret_ids = {
    analytics_database_url = "${var.name_prefix}-analytics-database-url"
    hmac_key               = "${var.name_prefix}-hmac-key"
    dashboard_password     = "${var.name_prefix}-dashboard-password"
    openai_api_key         = "${var.name_prefix}-openai-api-key"
    openwebui_database_url = "${var.name_prefix}-openwebui-database-url"
    webui_secret_key       = "${var.name_prefix}-webui-secret-key"
  }
}

resource "google_secret_manager_secret" "this" {
  for_each = local.secret_ids

  project   = var.project_id
  secret_id = each.value
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

# --- values we own ------------------------------------------------------------

resource "random_password" "hmac_key" {
  # Settings requires >= 32 characters; 64 alphanumerics carry about 380 bits.
  length  = 64
  special = false
}

resource "random_password" "dashboard_password" {
  # Settings requires >= 12 characters. Alphanumeric so it can be typed and pasted.
  length  = 24
  special = false
}

resource "random_password" "database" {
  # Alphanumeric: the password is embedded in a URL and needs no escaping.
  length  = 32
  special = false
}

resource "google_secret_manager_secret_version" "hmac_key" {
  secret      = google_secret_manager_secret.this["hmac_key"].id
  secret_data = random_password.hmac_key.result

  lifecycle {
    create_before_destroy = true # the functions move to the new version before the old one goes
  }
}

resource "google_secret_manager_secret_version" "dashboard_password" {
  secret      = google_secret_manager_secret.this["dashboard_password"].id
  secret_data = random_password.dashboard_password.result

  lifecycle {
    create_before_destroy = true # the functions move to the new version before the old one goes
  }
}

resource "google_secret_manager_secret_version" "analytics_database_url" {
  secret = google_secret_manager_secret.this["analytics_database_url"].id
  # No host: ANALYTICS_CLOUDSQL_INSTANCE makes the app connect through the Cloud
  # SQL Python Connector with this URL's user, password and database.
  secret_data = "postgresql+pg8000://${google_sql_user.analytics.name}:${random_password.database.result}@/${google_sql_database.analytics.name}"

  lifecycle {
    create_before_destroy = true
  }
}

# --- which secret feeds which environment variable --------------------------------
# An operator secret whose version variable is "" is not configured yet: it is
# left out of the functions and the preconditions in functions.tf say so.

locals {
  secret_environment = {
    COGNIFORCE_DATABASE_URL = {
      secret  = google_secret_manager_secret.this["analytics_database_url"].secret_id
      version = google_secret_manager_secret_version.analytics_database_url.version
    }
    ANALYTICS_HMAC_KEY = {
      secret  = google_secret_manager_secret.this["hmac_key"].secret_id
      version = google_secret_manager_secret_version.hmac_key.version
    }
    ANALYTICS_DASHBOARD_PASSWORD = {
      secret  = google_secret_manager_secret.this["dashboard_password"].secret_id
      version = google_secret_manager_secret_version.dashboard_password.version
    }
    OPENAI_API_KEY = {
      secret  = google_secret_manager_secret.this["openai_api_key"].secret_id
      version = var.openai_api_key_version
    }
    OPENWEBUI_DATABASE_URL = {
      secret  = google_secret_manager_secret.this["openwebui_database_url"].secret_id
      version = var.openwebui_database_url_version
    }
    WEBUI_SECRET_KEY = {
      secret  = google_secret_manager_secret.this["webui_secret_key"].secret_id
      version = var.webui_secret_key_version
    }
  }

  # Settings validates every production secret in every process, so each function
  # needs the same set; only the api accepts Open WebUI sessions.
  pipeline_secret_variables = [
    "COGNIFORCE_DATABASE_URL",
    "OPENWEBUI_DATABASE_URL",
    "ANALYTICS_HMAC_KEY",
    "ANALYTICS_DASHBOARD_PASSWORD",
    "OPENAI_API_KEY",
  ]
  function_secret_variables = {
    dispatch  = local.pipeline_secret_variables
    analyze   = local.pipeline_secret_variables
    aggregate = local.pipeline_secret_variables
    api       = concat(local.pipeline_secret_variables, ["WEBUI_SECRET_KEY"])
  }

  # Operator-provided secrets count as configured once their version is pinned;
  # generated ones always are. Decided from variables only, so it is known at plan.
  operator_secret_versions = {
    OPENAI_API_KEY         = var.openai_api_key_version
    OPENWEBUI_DATABASE_URL = var.openwebui_database_url_version
    WEBUI_SECRET_KEY       = var.webui_secret_key_version
  }
  configured_secret_variables = [
    for variable in keys(local.secret_environment) : variable
    if lookup(local.operator_secret_versions, variable, "generated") != ""
  ]

  # function => { ENV_VAR => {secret, version} } of what the function mounts.
  function_secrets = {
    for function, variables in local.function_secret_variables : function => {
      for variable in variables : variable => local.secret_environment[variable]
      if contains(local.configured_secret_variables, variable)
    }
  }
}
