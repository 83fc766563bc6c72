# Provider ranges. Attribute names were checked against the 6.x and 7.x provider
# docs; 7.0 changed nothing this configuration uses (see the 7.0 upgrade guide).
terraform {
  # Lifecycle preconditions need 1.2; 1.5 is the oldest release this was written for.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    # Declared for features that reach the beta provider first; no resource here
    # needs it today, and keeping it configured costs nothing.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.0, < 8.0"
    }
    archive = {
      source = "hashicorp/archive"
      # 2.5 added glob patterns (including **) to archive_file.excludes.
      version = ">= 2.5, < 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = local.labels
}

provider "google-beta" {
  project = var.project_id
  region  = var.region

  default_labels = local.labels
}
