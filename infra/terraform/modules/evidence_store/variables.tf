variable "bucket_name" {
  description = "Name of the evidence bucket (globally unique). The log bucket is <name>-logs, the replica <name>-replica."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,54}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name of at most 56 characters (room for -replica)."
  }
}

variable "store_prefix" {
  description = "Key prefix attest writes under (ATTEST_STORE=s3://bucket/<prefix>); IAM grants are scoped to it."
  type        = string
  default     = "attest"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$", var.store_prefix))
    error_message = "store_prefix must be non-empty, lowercase, without leading or trailing '/'."
  }
}

variable "object_lock_mode" {
  description = "Default Object Lock retention mode of the bucket: COMPLIANCE (no one, not even the root user, can shorten or remove it) or GOVERNANCE (principals with s3:BypassGovernanceRetention can)."
  type        = string
  default     = "COMPLIANCE"

  validation {
    condition     = contains(["COMPLIANCE", "GOVERNANCE"], var.object_lock_mode)
    error_message = "object_lock_mode must be COMPLIANCE or GOVERNANCE."
  }
}

variable "object_lock_days" {
  description = "Default retention of every object version, in days (1 to 36500). In COMPLIANCE mode this can be extended later but never shortened."
  type        = number

  validation {
    condition     = var.object_lock_days >= 1 && var.object_lock_days <= 36500 && floor(var.object_lock_days) == var.object_lock_days
    error_message = "object_lock_days must be a whole number of days between 1 and 36500."
  }
}

variable "archive_after_days" {
  description = "Move WARCs to archive_storage_class this many days after upload (retention is kept). Archived WARCs must be restored before replay or export."
  type        = number
  default     = 365

  validation {
    condition     = var.archive_after_days >= 30
    error_message = "archive_after_days must be at least 30."
  }
}

variable "archive_storage_class" {
  description = "Archive storage class for old WARCs: GLACIER_IR (readable at once), GLACIER or DEEP_ARCHIVE (restore first, hours)."
  type        = string
  default     = "GLACIER"

  validation {
    condition     = contains(["GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], var.archive_storage_class)
    error_message = "archive_storage_class must be GLACIER_IR, GLACIER or DEEP_ARCHIVE."
  }
}

variable "log_retention_days" {
  description = "Days access logs and VPC flow logs are kept in the log bucket."
  type        = number
  default     = 2555

  validation {
    condition     = var.log_retention_days >= 365
    error_message = "log_retention_days must be at least 365."
  }
}

variable "workload_role_arns" {
  description = "ARNs of the roles attest runs as (crawler, indexer, legal_export): denied deletes, retention bypass and lock, versioning, policy or lifecycle changes by the bucket policy."
  type        = list(string)
}

variable "legal_hold_role_arns" {
  description = "The only workload roles allowed to place or lift legal holds (legal_export)."
  type        = list(string)
}

variable "replication_enabled" {
  description = "Replicate every new object version (with its retention and legal hold) to a bucket in the aws.replica provider's region."
  type        = bool
  default     = false
}

variable "replica_storage_class" {
  description = "Storage class of the replicas."
  type        = string
  default     = "STANDARD_IA"

  validation {
    condition     = contains(["STANDARD", "STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], var.replica_storage_class)
    error_message = "replica_storage_class must be STANDARD, STANDARD_IA, GLACIER_IR, GLACIER or DEEP_ARCHIVE."
  }
}
