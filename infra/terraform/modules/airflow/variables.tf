variable "name" {
  description = "Name prefix (e.g. attest-prod)."
  type        = string
}

variable "platform" {
  description = "Where Airflow runs: \"eks\" (the official apache-airflow Helm chart on EKS: the exact Airflow version attest is tested with, CeleryExecutor on the Redis broker and RDS metadata DB of this deployment) or \"mwaa\" (Amazon MWAA: managed, its own metadata DB and SQS-based Celery broker, Airflow versions as AWS offers them)."
  type        = string

  validation {
    condition     = contains(["eks", "mwaa"], var.platform)
    error_message = "platform must be \"eks\" or \"mwaa\"."
  }
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (egress through NAT only) the workers run in."
  type        = list(string)
}

variable "workers_security_group_id" {
  description = "The workers' security group (no inbound; web egress for captures)."
  type        = string
}

variable "worker_role_arn" {
  description = "ARN of the role the Celery workers run as (the iam module's crawler role)."
  type        = string
}

variable "worker_role_name" {
  description = "Name of that role (MWAA's execution permissions are attached to it)."
  type        = string
}

variable "attest_environment" {
  description = "attest's settings for every Airflow process (ATTEST_*, AWS_REGION): no secrets, only names and URLs."
  type        = map(string)
}

variable "index_db_secret_arn" {
  description = "Secret holding the attest PostgreSQL role's {username, password}; exported to the workers as PGPASSWORD."
  type        = string
}

variable "log_bucket_name" {
  description = "Access-log bucket (evidence_store's) for the MWAA DAG bucket's access logs."
  type        = string
}

variable "log_retention_days" {
  description = "Days Airflow's CloudWatch logs are kept."
  type        = number
  default     = 365
}

# --- workers (both platforms) -----------------------------------------------------------------

variable "worker_concurrency" {
  description = "Task slots per Celery worker (SCALING.md: about 400 MB of memory per HTTP capture slot)."
  type        = number
  default     = 16

  validation {
    condition     = var.worker_concurrency >= 1 && var.worker_concurrency <= 64
    error_message = "worker_concurrency must be between 1 and 64."
  }
}

variable "min_workers" {
  description = "Celery workers always running (MWAA min_workers; EKS worker replicas)."
  type        = number
  default     = 1

  validation {
    condition     = var.min_workers >= 1
    error_message = "min_workers must be at least 1."
  }
}

variable "max_workers" {
  description = "Upper bound of Celery workers (MWAA max_workers; EKS node group max size)."
  type        = number
  default     = 4
}

# --- MWAA -------------------------------------------------------------------------------------

variable "mwaa_airflow_version" {
  description = "MWAA's Airflow version: the newest 3.x MWAA offers in the region (attest is tested on 3.3.2)."
  type        = string
  default     = "3.0.6"

  validation {
    condition     = startswith(var.mwaa_airflow_version, "3.")
    error_message = "attest needs Airflow 3."
  }
}

variable "mwaa_environment_class" {
  description = "MWAA environment class (mw1.small ... mw1.2xlarge): the size of each worker."
  type        = string
  default     = "mw1.medium"
}

# --- EKS --------------------------------------------------------------------------------------

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "node_instance_types" {
  description = "Instance types of the worker nodes (SCALING.md: 2 cores, 24 GB hold 40 HTTP slots)."
  type        = list(string)
  default     = ["r7g.large"]
}

variable "node_ami_type" {
  description = "AMI type of the worker nodes (must match the instance types' architecture)."
  type        = string
  default     = "AL2023_ARM_64_STANDARD"
}

variable "node_disk_gb" {
  description = "Root volume of each node: holds the workers' spools (ATTEST_HOME)."
  type        = number
  default     = 100
}

variable "chart_version" {
  description = "Version of the official apache-airflow Helm chart."
  type        = string
  default     = "1.18.0"
}

variable "airflow_version" {
  description = "The Airflow version in the image (attest pins apache-airflow==3.3.2 in pyproject.toml)."
  type        = string
  default     = "3.3.2"
}

variable "airflow_image_repository" {
  description = "Container image with Airflow 3.3.2 and attest installed (built from this repository; see docs/DEPLOY.md)."
  type        = string
  default     = ""
}

variable "airflow_image_tag" {
  description = "Tag of that image (pin a digest-addressed release tag)."
  type        = string
  default     = ""
}

variable "worker_cpu" {
  description = "CPU request of each Celery worker pod."
  type        = string
  default     = "1500m"
}

variable "worker_memory" {
  description = "Memory request and limit of each Celery worker pod."
  type        = string
  default     = "12Gi"
}

variable "airflow_secret_names" {
  description = "Kubernetes secrets the chart reads (created from Secrets Manager, docs/DEPLOY.md): metadata connection, broker URL, result backend."
  type = object({
    metadata       = string
    broker_url     = string
    result_backend = string
    index_db       = string
  })
  default = {
    metadata       = "airflow-metadata"
    broker_url     = "airflow-broker-url"
    result_backend = "airflow-result-backend"
    index_db       = "attest-index-db"
  }
}
