# Former addresses of resources that now share one for_each block. Terraform
# moves an existing deployment's state to the new addresses on the next plan
# instead of destroying and recreating the functions and service accounts.
# Keep these until every state (every project this was applied to) has been
# applied once with them; removing them earlier makes that plan replace all seven.

moved {
  from = google_cloudfunctions2_function.dispatch
  to   = google_cloudfunctions2_function.function["dispatch"]
}

moved {
  from = google_cloudfunctions2_function.analyze
  to   = google_cloudfunctions2_function.function["analyze"]
}

moved {
  from = google_cloudfunctions2_function.aggregate
  to   = google_cloudfunctions2_function.function["aggregate"]
}

moved {
  from = google_cloudfunctions2_function.api
  to   = google_cloudfunctions2_function.function["api"]
}

moved {
  from = google_service_account.tasks_invoker
  to   = google_service_account.platform["tasks"]
}

moved {
  from = google_service_account.scheduler_invoker
  to   = google_service_account.platform["scheduler"]
}

moved {
  from = google_service_account.build
  to   = google_service_account.platform["build"]
}
