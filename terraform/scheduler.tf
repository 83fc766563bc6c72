# The nightly trigger. Cloud Scheduler delivers at least once; the dispatcher
# makes repeated deliveries of one execution harmless.

resource "google_cloud_scheduler_job" "nightly" {
  name        = local.scheduler_job_name
  project     = var.project_id
  region      = var.region
  description = "Starts the nightly Time Savings Analytics run."
  schedule    = var.schedule
  time_zone   = var.time_zone

  # As long as the dispatcher may run; a shorter deadline would retry a run
  # that is still enqueueing.
  attempt_deadline = "${local.functions.dispatch.timeout_seconds}s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
    max_doublings        = 2
    max_retry_duration   = "3600s"
  }

  http_target {
    http_method = "POST"
    uri         = local.function_urls.dispatch
    headers = {
      "Content-Type" = "application/json"
    }
    # No "date": the dispatcher chooses the target date itself.
    body = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.platform["scheduler"].email
      audience              = local.function_urls.dispatch
    }
  }

  # The first execution should find the dispatcher deployed and invokable.
  depends_on = [
    google_cloudfunctions2_function.function["dispatch"],
    google_cloud_run_v2_service_iam_member.scheduler_invokes_dispatch,
  ]
}
