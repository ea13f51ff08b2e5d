variable "environment" {
  description = "Environment name, part of every resource name (attest-<environment>)."
  type        = string
  default     = "dev"
}

variable "region" {
  description = "AWS region of the deployment."
  type        = string
}

variable "replica_region" {
  description = "Second region, for the evidence replica."
  type        = string
}

variable "evidence_bucket_name" {
  description = "Name of the evidence bucket (globally unique; the log bucket is <name>-logs)."
  type        = string
}

variable "store_prefix" {
  description = "Key prefix attest writes under in the bucket."
  type        = string
  default     = "attest"
}

variable "object_lock_mode" {
  description = "Default Object Lock mode: GOVERNANCE in dev (administrators with s3:BypassGovernanceRetention can remove test data); COMPLIANCE to rehearse prod."
  type        = string
  default     = "GOVERNANCE"

  validation {
    condition     = contains(["COMPLIANCE", "GOVERNANCE"], var.object_lock_mode)
    error_message = "object_lock_mode must be COMPLIANCE or GOVERNANCE."
  }
}

variable "object_lock_days" {
  description = "Default retention of every object version, in days."
  type        = number
  default     = 30

  validation {
    condition     = var.object_lock_days >= 1 && var.object_lock_days <= 36500
    error_message = "object_lock_days must be between 1 and 36500."
  }
}

variable "archive_after_days" {
  description = "Days before WARCs move to archive_storage_class."
  type        = number
  default     = 90
}

variable "archive_storage_class" {
  description = "Archive storage class of old WARCs (GLACIER_IR, GLACIER, DEEP_ARCHIVE)."
  type        = string
  default     = "GLACIER"
}

variable "replication_enabled" {
  description = "Replicate the evidence to replica_region."
  type        = bool
  default     = false
}

variable "s3_endpoint" {
  description = "ATTEST_S3_ENDPOINT: empty on AWS; the endpoint URL of another S3-compatible cloud."
  type        = string
  default     = ""
}

variable "egress_echo_url" {
  description = "ATTEST_EGRESS_ECHO_URL: a URL answering with the caller's public IP as text."
  type        = string
  default     = "https://checkip.amazonaws.com/"
}

variable "vpc_cidr" {
  description = "The VPC's IPv4 range."
  type        = string
  default     = "10.50.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones of the subnets, by name (e.g. [\"eu-west-3a\", \"eu-west-3b\"])."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway (one egress IP) instead of one per AZ."
  type        = bool
  default     = true
}

variable "crawl_egress_ports" {
  description = "TCP ports the crawlers may reach on the internet."
  type        = list(number)
  default     = [80, 443]
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_multi_az" {
  description = "A standby database in a second AZ."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of automated database backups."
  type        = number
  default     = 7
}

variable "db_deletion_protection" {
  description = "Refuse deleting the database."
  type        = bool
  default     = false
}

variable "db_password_version" {
  description = "Bump to rotate the airflow and attest database roles' passwords (docs/DEPLOY.md)."
  type        = number
  default     = 1
}

variable "broker_node_type" {
  description = "ElastiCache node type of the broker."
  type        = string
  default     = "cache.t4g.small"
}

variable "broker_nodes" {
  description = "Broker nodes (2+ for failover)."
  type        = number
  default     = 1
}

variable "broker_password_version" {
  description = "Bump to rotate the broker's celery user password (docs/DEPLOY.md)."
  type        = number
  default     = 1
}

variable "indexer_principal_arns" {
  description = "IAM principals (roles of the hosts running attest serve / index / audit) allowed to assume the indexer role."
  type        = list(string)
}

variable "legal_export_principal_arns" {
  description = "IAM principals (the legal team's roles) allowed to assume the legal_export role."
  type        = list(string)
}

variable "airflow_platform" {
  description = "\"eks\" (official Helm chart, CeleryExecutor on this deployment's Redis and PostgreSQL) or \"mwaa\" (Amazon MWAA)."
  type        = string
  default     = "eks"

  validation {
    condition     = contains(["eks", "mwaa"], var.airflow_platform)
    error_message = "airflow_platform must be \"eks\" or \"mwaa\"."
  }
}

variable "worker_concurrency" {
  description = "Task slots per Celery worker."
  type        = number
  default     = 16
}

variable "min_workers" {
  description = "Celery workers always running."
  type        = number
  default     = 1
}

variable "max_workers" {
  description = "Maximum Celery workers."
  type        = number
  default     = 2
}

variable "mwaa_airflow_version" {
  description = "Airflow version on MWAA (mwaa only)."
  type        = string
  default     = "3.0.6"
}

variable "mwaa_environment_class" {
  description = "MWAA environment class (mwaa only)."
  type        = string
  default     = "mw1.small"
}

variable "node_instance_types" {
  description = "EKS worker node instance types (eks only)."
  type        = list(string)
  default     = ["r7g.large"]
}

variable "airflow_image_repository" {
  description = "Image with Airflow and attest (eks only)."
  type        = string
  default     = ""
}

variable "airflow_image_tag" {
  description = "Tag of that image (eks only)."
  type        = string
  default     = ""
}
