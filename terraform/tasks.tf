# The queue that carries the analysis tasks (and one aggregation task per run).
# Its rate is the LLM's: the queue, not the functions, is where the provider's
# limit is enforced for the whole fleet.

resource "google_cloud_tasks_queue" "pipeline" {
  name     = "${var.name_prefix}-pipeline"
  project  = var.project_id
  location = var.region

  rate_limits {
    # llm_rpm / 60 (functions.tf): one analysis makes one LLM request.
    max_dispatches_per_second = local.queue_dispatches_per_second
    # No more tasks in flight than analyzer instances: an extra one would be
    # refused (429) and burn an attempt.
    max_concurrent_dispatches = local.analyzer_max_instances
  }

  retry_config {
    # Transient failures (LLM 429/5xx, timeouts, a database drop) answer non-2xx
    # and come back here; permanent ones answer 2xx and are recorded as skipped.
    max_attempts  = var.task_max_attempts # also ANALYTICS_TASK_MAX_ATTEMPTS
    min_backoff   = "10s"
    max_backoff   = "600s"
    max_doublings = 5 # 10, 20, 40, 80, 160, 320 s, then linear up to 600 s
    # Give up within an hour, well before a run is declared stale
    # (Settings.stale_run_minutes, 120 by default), so the run is closed with
    # the failures counted rather than timed out.
    max_retry_duration = "3600s"
  }

  stackdriver_logging_config {
    # Log every dispatch attempt: a night's volume is small and failures need them.
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.enabled]
}
