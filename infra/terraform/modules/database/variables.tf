variable "name" {
  description = "Name prefix (e.g. attest-prod)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the database (at least two AZs; the network module's data subnets)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two availability zones."
  }
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect (the workers')."
  type        = list(string)
}

variable "engine_major_version" {
  description = "PostgreSQL major version (attest's tests run PostgreSQL 15; 15 and later work)."
  type        = string
  default     = "17"

  validation {
    condition     = contains(["15", "16", "17"], var.engine_major_version)
    error_message = "engine_major_version must be 15, 16 or 17."
  }
}

variable "instance_class" {
  description = "RDS instance class (docs/SCALING.md sizes the index: ~2 KB per index row)."
  type        = string
  default     = "db.m7g.large"
}

variable "allocated_storage_gb" {
  description = "Initial storage, GB."
  type        = number
  default     = 100
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling, GB."
  type        = number
  default     = 1000
}

variable "multi_az" {
  description = "A standby in a second AZ (prod)."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery (7-35)."
  type        = number
  default     = 35

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 7 and 35."
  }
}

variable "deletion_protection" {
  description = "Refuse deleting the instance (turn off deliberately before a destroy)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days the PostgreSQL logs are kept in CloudWatch."
  type        = number
  default     = 365
}

variable "secrets_kms_key_arn" {
  description = "KMS key of the secrets (master password, role passwords, Airflow connection strings)."
  type        = string
}

variable "airflow_config_prefix" {
  description = "Secrets Manager prefix Airflow's secrets backend reads configuration from (config_prefix)."
  type        = string
}

variable "password_version" {
  description = "Bump to generate new passwords for the airflow and attest roles (written to Secrets Manager only)."
  type        = number
  default     = 1
}
