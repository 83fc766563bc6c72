# Identities and what each may do. One service account per caller:
#   - function[KEY]: one runtime account per function (what its code may touch),
#   - platform["tasks"]: the identity Cloud Tasks puts in each task's OIDC token,
#   - platform["scheduler"]: the identity of the nightly Cloud Scheduler call,
#   - platform["build"]: what Cloud Build runs as when it builds the function source.
# Invokers are granted roles/run.invoker on the function's Cloud Run service
# (google_cloud_run_v2_service_iam_member); the cloudfunctions2_function IAM
# resources cannot grant that role.

resource "google_service_account" "function" {
  # Over the literal map (not local.function_names) so checkov scans each instance.
  for_each = local.functions

  project      = var.project_id
  account_id   = "${var.name_prefix}-fn-${each.key}"
  display_name = "Time Savings Analytics: ${each.key} function"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "platform" {
  # The identities Google services act as for us, by account id suffix.
  for_each = {
    tasks     = "Cloud Tasks OIDC identity"
    scheduler = "Cloud Scheduler OIDC identity"
    build     = "Cloud Build of the function source"
  }

  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "Time Savings Analytics: ${each.value}"

  depends_on = [google_project_service.enabled]
}

# --- runtime accounts -------------------------------------------------------------

resource "google_project_iam_member" "function_cloudsql_client" {
  # Connect through the Cloud SQL connector. Cloud SQL has no per-instance IAM.
  for_each = local.functions

  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = google_service_account.function[each.key].member
}

resource "google_project_iam_member" "function_cloudsql_client_openwebui" {
  # Open WebUI's instance may live in another project; grant the connector there
  # too (same project: the binding above already covers it). Only the functions
  # that read the source need it.
  for_each = local.openwebui_project != "" && local.openwebui_project != var.project_id ? toset(["dispatch", "analyze", "api"]) : toset([])

  project = local.openwebui_project
  role    = "roles/cloudsql.client"
  member  = google_service_account.function[each.key].member
}

locals {
  # "project:region:instance", or "domain:project:region:instance" for
  # domain-scoped projects, whose id is "domain:project".
  openwebui_connection_parts = split(":", var.openwebui_cloudsql_instance)
  openwebui_project = var.openwebui_cloudsql_instance == "" ? "" : join(":", slice(
    local.openwebui_connection_parts, 0, length(local.openwebui_connection_parts) - 2
  ))

  # (function, ENV_VAR) pairs: each function reads exactly the secrets it mounts,
  # including ones whose version is not pinned yet.
  function_secret_access = merge([
    for function, variables in local.function_secret_variables : {
      for variable in variables : "${function}/${variable}" => {
        function = function
        secret   = local.secret_environment[variable].secret
      }
    }
  ]...)

  # Functions that create Cloud Tasks: the dispatcher (one per conversation),
  # the analyzer (the aggregation task after the last analysis) and the api
  # (a manual trigger runs a dispatch in-process).
  enqueuing_functions = toset(["dispatch", "analyze", "api"])
}

resource "google_secret_manager_secret_iam_member" "function" {
  for_each = local.function_secret_access

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.value.function].member

  depends_on = [google_secret_manager_secret.this]
}

resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = local.enqueuing_functions

  project  = var.project_id
  location = google_cloud_tasks_queue.pipeline.location
  name     = google_cloud_tasks_queue.pipeline.name
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.function[each.key].member
}

resource "google_service_account_iam_member" "enqueuer_acts_as_tasks_invoker" {
  # Creating a task that carries an OIDC token for tasks-invoker requires
  # iam.serviceAccounts.actAs on that account, granted on it alone.
  for_each = local.enqueuing_functions

  service_account_id = google_service_account.platform["tasks"].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.function[each.key].member
}

resource "google_project_iam_member" "api_scheduler_viewer" {
  # `health` reports the next run from the job. Cloud Scheduler has no job-level
  # IAM, so this is project-wide, and read-only.
  project = var.project_id
  role    = "roles/cloudscheduler.viewer"
  member  = google_service_account.function["api"].member
}

# --- build account -------------------------------------------------------------------

resource "google_project_iam_member" "build" {
  # Cloud Run Builder: read the source object, write the image to Artifact
  # Registry, write build logs; nothing else.
  project = var.project_id
  role    = "roles/run.builder"
  member  = google_service_account.platform["build"].member
}

# --- who may invoke which function ------------------------------------------------

locals {
  # Functions that Cloud Tasks delivers to (shared/queue.py TARGETS), marked in
  # local.functions. The dispatcher is called by Cloud Scheduler only.
  task_targets = toset([for key, function in local.functions : key if function.task_target])
}

resource "google_cloud_run_v2_service_iam_member" "tasks_invoke" {
  for_each = local.task_targets

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = google_service_account.platform["tasks"].member
}

resource "google_cloud_run_v2_service_iam_member" "scheduler_invokes_dispatch" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.function["dispatch"].name
  role     = "roles/run.invoker"
  member   = google_service_account.platform["scheduler"].member
}

resource "google_cloud_run_v2_service_iam_member" "api_public" {
  # The dashboard is opened by browsers without Google identities; the app
  # authenticates admins itself (password or Open WebUI admin session).
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.function["api"].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
