# The analytics database: Cloud SQL for PostgreSQL, reached by the functions through
# the Cloud SQL Python Connector (ANALYTICS_CLOUDSQL_INSTANCE). The schema is not
# managed here: migrations/ is applied by the functions themselves (README).

resource "random_id" "analytics_instance_suffix" {
  # A deleted instance's name stays reserved for about a week; the suffix lets a
  # torn-down deployment be recreated at once.
  byte_length = 2
}

resource "google_sql_database_instance" "analytics" {
  #checkov:skip=CKV_GCP_60:Public IP without authorized networks: only IAM-authorised Cloud SQL connectors (client certificates) connect; private IP would need a VPC and VPC egress for the functions.
  #checkov:skip=CKV_GCP_79:db_version accepts POSTGRES_18 where Cloud SQL offers it; the default is POSTGRES_17, the newest major in the Cloud SQL version table we could check.
  name                = "${var.name_prefix}-analytics-${random_id.analytics_instance_suffix.hex}"
  project             = var.project_id
  region              = var.region
  database_version    = var.db_version
  deletion_protection = var.db_deletion_protection # Terraform refuses to destroy it

  settings {
    edition           = "ENTERPRISE" # PostgreSQL 16+ would default to Enterprise Plus, which rejects these tiers
    tier              = var.db_tier
    availability_type = var.db_availability_type
    disk_type         = "PD_SSD"
    disk_size         = 10
    disk_autoresize   = true
    user_labels       = local.labels

    # The API refuses to delete it too (console, gcloud), not only Terraform.
    deletion_protection_enabled = var.db_deletion_protection

    backup_configuration {
      enabled                        = true
      start_time                     = "02:00" # UTC, after the nightly run
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = 7

      backup_retention_settings {
        retained_backups = var.db_backup_retained_count
        retention_unit   = "COUNT"
      }
    }

    ip_configuration {
      ipv4_enabled = true
      # No authorized_networks: nothing connects by address. The connector and the
      # Cloud SQL Auth Proxy present client certificates issued for IAM principals.
      ssl_mode = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    maintenance_window {
      day          = 7 # Sunday
      hour         = 3 # UTC
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = false
      record_client_address   = false
    }

    # Connection budget: functions.tf derives instance limits from this value.
    database_flags {
      name  = "max_connections"
      value = tostring(var.db_max_connections)
    }

    # Logging flags of the CIS benchmark (checkov CKV_GCP_51..57, 108..111, CKV2_GCP_13).
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl" # migrations only; the workload itself is DML
    }
    database_flags {
      name  = "log_min_messages"
      value = "warning"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_sql_database" "analytics" {
  name     = "analytics"
  project  = var.project_id
  instance = google_sql_database_instance.analytics.name
}

resource "google_sql_user" "analytics" {
  # Owner of the schema (migrations run as this user) and the functions' login.
  name     = "analytics"
  project  = var.project_id
  instance = google_sql_database_instance.analytics.name
  password = random_password.database.result

  # PostgreSQL cannot drop a role that owns tables; the instance's deletion
  # removes it anyway.
  deletion_policy = "ABANDON"
}
