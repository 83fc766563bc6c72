# APIs the deployment uses. Destroying this configuration leaves them enabled:
# other workloads in the project may rely on them.

locals {
  services = toset([
    "artifactregistry.googleapis.com", # images built from the function source
    "cloudbuild.googleapis.com",       # builds the function source
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com", # OIDC tokens minted for Cloud Tasks and Cloud Scheduler
    "run.googleapis.com",            # gen2 functions are Cloud Run services
    "secretmanager.googleapis.com",
    "sqladmin.googleapis.com", # also used by the Cloud SQL Python Connector at run time
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "enabled" {
  for_each = local.services

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
