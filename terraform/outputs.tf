output "function_urls" {
  description = "Deterministic run.app URL of each function (also the OIDC audience the pipeline functions check)."
  value       = local.function_urls
}

output "function_service_uris" {
  description = "URI each function's Cloud Run service reports (service_config.uri), for comparison with function_urls."
  value = {
    for key, function in google_cloudfunctions2_function.function : key => function.service_config[0].uri
  }
}

output "dashboard_url" {
  description = "The dashboard, served by the api function (log in with the dashboard password)."
  value       = "${local.function_urls.api}/"
}

output "tasks_queue" {
  description = "Full name of the Cloud Tasks queue."
  value       = google_cloud_tasks_queue.pipeline.id
}

output "queue_rate_limits" {
  description = "Derived queue limits: dispatches per second (llm_rpm / 60) and tasks in flight (analyzer max instances)."
  value = {
    max_dispatches_per_second = local.queue_dispatches_per_second
    max_concurrent_dispatches = local.analyzer_max_instances
  }
}

output "scheduler_job" {
  description = "Full name of the nightly Cloud Scheduler job (`gcloud scheduler jobs run` takes its short name and --location)."
  value       = google_cloud_scheduler_job.nightly.id
}

output "analytics_sql_instance" {
  description = "Connection name of the analytics database, for the Cloud SQL Auth Proxy and ANALYTICS_CLOUDSQL_INSTANCE."
  value       = google_sql_database_instance.analytics.connection_name
}

output "secret_ids" {
  description = "Secret Manager secret ids; the operator adds versions to openai-api-key, openwebui-database-url and webui-secret-key, and reads the generated dashboard-password, viewer-password and feedback-token with `gcloud secrets versions access latest --secret=ID`."
  value       = { for key, secret in google_secret_manager_secret.this : key => secret.secret_id }
}

output "service_accounts" {
  description = "Service account e-mails by role."
  value = merge(
    { for key, account in google_service_account.function : "function-${key}" => account.email },
    {
      tasks-invoker     = google_service_account.platform["tasks"].email
      scheduler-invoker = google_service_account.platform["scheduler"].email
      build             = google_service_account.platform["build"].email
    },
  )
}
