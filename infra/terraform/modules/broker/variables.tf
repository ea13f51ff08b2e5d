variable "name" {
  description = "Name prefix (e.g. attest-prod)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the broker (the network module's data subnets)."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect (the workers' and the Airflow control plane's)."
  type        = list(string)
}

variable "engine_version" {
  description = "Redis OSS engine version (7.x: TLS, AUTH and at-rest encryption with a customer key)."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Cache node type. The broker holds queued task messages only: small is enough (SCALING.md)."
  type        = string
  default     = "cache.t4g.small"
}

variable "num_cache_clusters" {
  description = "Nodes: 1 (no failover) or 2-6 (a primary and replicas, automatic failover, multi-AZ)."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 1 && var.num_cache_clusters <= 6
    error_message = "num_cache_clusters must be between 1 and 6."
  }
}

variable "multi_az" {
  description = "Automatic failover to a replica in another AZ (needs num_cache_clusters >= 2)."
  type        = bool
  default     = true

  validation {
    condition     = !var.multi_az || var.num_cache_clusters >= 2
    error_message = "multi_az needs num_cache_clusters of 2 or more."
  }
}

variable "snapshot_retention_days" {
  description = "Days of daily snapshots (0 turns them off)."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Days the slow log is kept in CloudWatch."
  type        = number
  default     = 365
}

variable "secrets_kms_key_arn" {
  description = "KMS key of the broker URL secret."
  type        = string
}

variable "airflow_config_prefix" {
  description = "Secrets Manager prefix Airflow's secrets backend reads configuration from (config_prefix)."
  type        = string
}

variable "password_version" {
  description = "Bump to generate and roll out a new password for the celery user (docs/DEPLOY.md)."
  type        = number
  default     = 1
}
