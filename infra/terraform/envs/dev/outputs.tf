# What attest and Airflow read at run time, under the names they read it by, so that
# `terraform output -json` configures a worker (docs/DEPLOY.md). No output holds a password:
# the database and broker URLs are given as names of Secrets Manager secrets, which Airflow's
# secrets backend resolves (the *_SECRET form of its sensitive options), and ATTEST_INDEX has
# no password (libpq reads PGPASSWORD, from the attest_db_user secret).
# Keep this file identical in envs/dev and envs/prod (tests/infra checks the names).

output "ATTEST_STORE" {
  description = "attest's store: s3://bucket/prefix."
  value       = local.attest_environment["ATTEST_STORE"]
}

output "ATTEST_S3_ENDPOINT" {
  description = "S3 endpoint for non-AWS servers; empty on AWS (boto3 picks the endpoint of AWS_REGION)."
  value       = local.attest_environment["ATTEST_S3_ENDPOINT"]
}

output "ATTEST_S3_OBJECT_LOCK_DAYS" {
  description = "COMPLIANCE retention attest gives each object: the bucket's default days in COMPLIANCE mode, empty in GOVERNANCE mode (dev)."
  value       = local.attest_environment["ATTEST_S3_OBJECT_LOCK_DAYS"]
}

output "ATTEST_INDEX" {
  description = "The index database (PostgreSQL), without a password."
  value       = local.attest_environment["ATTEST_INDEX"]
}

output "ATTEST_EGRESS_ECHO_URL" {
  description = "Where each crawler asks its public egress IP (one of nat_egress_ips) for warcinfo."
  value       = local.attest_environment["ATTEST_EGRESS_ECHO_URL"]
}

output "AWS_REGION" {
  description = "The region of the bucket, read by attest's S3 client (archive/store/s3.py)."
  value       = local.attest_environment["AWS_REGION"]
}

output "AIRFLOW__SECRETS__BACKEND" {
  description = "Airflow's secrets backend: AWS Secrets Manager."
  value       = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
}

output "AIRFLOW__SECRETS__BACKEND_KWARGS" {
  description = "Its arguments: configuration options only (connections and variables stay in Airflow)."
  value = jsonencode({
    config_prefix      = local.airflow_config_prefix
    connections_prefix = null
    variables_prefix   = null
  })
}

output "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET" {
  description = "Secrets-backend key of the metadata database URL (null on MWAA, which has its own)."
  value       = local.eks ? module.database.airflow_config_keys["sql_alchemy_conn"] : null
}

output "AIRFLOW__CELERY__RESULT_BACKEND_SECRET" {
  description = "Secrets-backend key of the Celery result backend URL (null on MWAA)."
  value       = local.eks ? module.database.airflow_config_keys["result_backend"] : null
}

output "AIRFLOW__CELERY__BROKER_URL_SECRET" {
  description = "Secrets-backend key of the Celery broker URL (null on MWAA, which brings SQS)."
  value       = one([for b in module.broker : b.airflow_config_key])
}

output "AIRFLOW__CELERY__WORKER_CONCURRENCY" {
  description = "Task slots per Celery worker."
  value       = tostring(var.worker_concurrency)
}

output "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER" {
  description = "1: a worker reserves no task ahead of a free slot (docs/SCALING.md)."
  value       = "1"
}

output "nat_egress_ips" {
  description = "Public IPs the crawlers leave from (record them with the captures' provenance)."
  value       = module.network.nat_egress_ips
}

output "role_arns" {
  description = "ARNs of the crawler (Airflow workers), indexer and legal_export roles."
  value       = module.iam.role_arns
}

output "evidence_bucket" {
  description = "The evidence bucket, its Object Lock mode and days, and its replica (if any)."
  value = {
    name             = module.evidence_store.bucket_name
    object_lock_mode = module.evidence_store.object_lock_mode
    object_lock_days = module.evidence_store.object_lock_days
    kms_key_arn      = module.evidence_store.kms_key_arn
    log_bucket       = module.evidence_store.log_bucket_name
    replica_arn      = module.evidence_store.replica_bucket_arn
  }
}

output "secret_arns" {
  description = "ARNs (never values) of the secrets: attest's own, the database's and the broker's."
  value = merge(
    module.secrets.secret_arns,
    module.database.secret_arns,
    { database_master = module.database.master_user_secret_arn },
    { for b in module.broker : "broker_url" => b.broker_url_secret_arn },
  )
}

output "airflow" {
  description = "Where Airflow runs and how to reach it."
  value = {
    platform           = module.airflow.platform
    eks_cluster_name   = module.airflow.eks_cluster_name
    mwaa_webserver_url = module.airflow.mwaa_webserver_url
    mwaa_dag_bucket    = module.airflow.mwaa_dag_bucket
  }
}
