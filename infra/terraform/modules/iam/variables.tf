variable "name" {
  description = "Name prefix of the roles (<name>-crawler, <name>-indexer, <name>-legal-export)."
  type        = string
}

variable "region" {
  description = "Region of the bucket and secrets (for the kms:ViaService conditions)."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the evidence bucket."
  type        = string
}

variable "store_prefix" {
  description = "Key prefix attest writes under; every grant is scoped to it."
  type        = string

  validation {
    condition     = length(var.store_prefix) > 0 && !startswith(var.store_prefix, "/") && !endswith(var.store_prefix, "/")
    error_message = "store_prefix must be non-empty, without leading or trailing '/'."
  }
}

variable "kms_key_arn" {
  description = "The evidence bucket's KMS key."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "The KMS key of attest's Secrets Manager secrets."
  type        = string
}

variable "crawler_trust" {
  description = "Who may assume the crawler role (the Airflow workers): service principals (e.g. pods.eks.amazonaws.com, airflow-env.amazonaws.com) and/or IAM principal ARNs."
  type = object({
    services       = list(string)
    principal_arns = list(string)
  })

  validation {
    condition     = length(var.crawler_trust.services) + length(var.crawler_trust.principal_arns) > 0
    error_message = "crawler_trust must name at least one service or principal."
  }
}

variable "indexer_trust" {
  description = "Who may assume the indexer role (hosts running attest index / serve / audit)."
  type = object({
    services       = list(string)
    principal_arns = list(string)
  })

  validation {
    condition     = length(var.indexer_trust.services) + length(var.indexer_trust.principal_arns) > 0
    error_message = "indexer_trust must name at least one service or principal."
  }
}

variable "legal_export_trust" {
  description = "Who may assume the legal_export role (the people or hosts that run attest hold / export)."
  type = object({
    services       = list(string)
    principal_arns = list(string)
  })

  validation {
    condition     = length(var.legal_export_trust.services) + length(var.legal_export_trust.principal_arns) > 0
    error_message = "legal_export_trust must name at least one service or principal."
  }
}

variable "crawler_secret_arns" {
  description = "Secrets Manager secrets the crawler role may read."
  type        = list(string)
  default     = []
}

variable "indexer_secret_arns" {
  description = "Secrets Manager secrets the indexer role may read."
  type        = list(string)
  default     = []
}

variable "legal_export_secret_arns" {
  description = "Secrets Manager secrets the legal_export role may read."
  type        = list(string)
  default     = []
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary put on every role."
  type        = string
  default     = null
}
