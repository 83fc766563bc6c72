# Names, labels and project facts shared by every file.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  labels = merge(var.labels, {
    app        = "time-savings-analytics"
    managed-by = "terraform"
  })

  # The project number is part of the deterministic Cloud Run URLs (functions.tf).
  project_number = data.google_project.this.number
}
