# attest in production: evidence under COMPLIANCE-mode Object Lock, replicated to a second
# region, Airflow with CeleryExecutor, PostgreSQL and Redis, workers behind NAT.

locals {
  name                  = "attest-${var.environment}"
  airflow_config_prefix = "${local.name}/airflow/config"
  eks                   = var.airflow_platform == "eks"
  bucket_arn            = "arn:${data.aws_partition.current.partition}:s3:::${var.evidence_bucket_name}"

  # Who runs the Celery workers, and so assumes the crawler role.
  worker_services = local.eks ? ["pods.eks.amazonaws.com"] : ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]

  # attest's settings (settings.py), as every worker and attest process needs them.
  attest_environment = {
    ATTEST_STORE               = module.evidence_store.store_uri
    ATTEST_S3_ENDPOINT         = var.s3_endpoint
    ATTEST_S3_OBJECT_LOCK_DAYS = module.evidence_store.attest_object_lock_days
    ATTEST_INDEX               = module.database.attest_index_url
    ATTEST_EGRESS_ECHO_URL     = var.egress_echo_url
    AWS_REGION                 = var.region
  }
}

data "aws_partition" "current" {}

module "evidence_store" {
  source = "../../modules/evidence_store"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  bucket_name           = var.evidence_bucket_name
  store_prefix          = var.store_prefix
  object_lock_mode      = "COMPLIANCE"
  object_lock_days      = var.object_lock_days
  archive_after_days    = var.archive_after_days
  archive_storage_class = var.archive_storage_class
  replication_enabled   = var.replication_enabled
  workload_role_arns    = values(module.iam.role_arns)
  legal_hold_role_arns  = [module.iam.role_arns["legal_export"]]
}

module "network" {
  source = "../../modules/network"

  name                = local.name
  cidr_block          = var.vpc_cidr
  availability_zones  = var.availability_zones
  single_nat_gateway  = var.single_nat_gateway
  crawl_egress_ports  = var.crawl_egress_ports
  flow_log_bucket_arn = module.evidence_store.log_bucket_arn
}

module "secrets" {
  source = "../../modules/secrets"

  name = local.name
}

module "database" {
  source = "../../modules/database"

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.data_subnet_ids
  client_security_group_ids = [module.network.workers_security_group_id]
  instance_class            = var.db_instance_class
  multi_az                  = var.db_multi_az
  backup_retention_days     = var.db_backup_retention_days
  deletion_protection       = var.db_deletion_protection
  secrets_kms_key_arn       = module.secrets.kms_key_arn
  airflow_config_prefix     = local.airflow_config_prefix
  password_version          = var.db_password_version
}

# The Celery broker: on EKS only (MWAA brings its own).
module "broker" {
  source = "../../modules/broker"
  count  = local.eks ? 1 : 0

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.data_subnet_ids
  client_security_group_ids = [module.network.workers_security_group_id]
  node_type                 = var.broker_node_type
  num_cache_clusters        = var.broker_nodes
  secrets_kms_key_arn       = module.secrets.kms_key_arn
  airflow_config_prefix     = local.airflow_config_prefix
  multi_az                  = var.broker_nodes > 1
  password_version          = var.broker_password_version
}

module "iam" {
  source = "../../modules/iam"

  name                = local.name
  region              = var.region
  bucket_arn          = local.bucket_arn
  store_prefix        = var.store_prefix
  kms_key_arn         = module.evidence_store.kms_key_arn
  secrets_kms_key_arn = module.secrets.kms_key_arn

  crawler_trust      = { services = local.worker_services, principal_arns = [] }
  indexer_trust      = { services = [], principal_arns = var.indexer_principal_arns }
  legal_export_trust = { services = [], principal_arns = var.legal_export_principal_arns }

  crawler_secret_arns = concat(
    [module.database.secret_arns["attest_db_user"], module.database.secret_arns["sql_alchemy_conn"], module.database.secret_arns["result_backend"]],
    [for b in module.broker : b.broker_url_secret_arn],
  )
  indexer_secret_arns = [module.database.secret_arns["attest_db_user"], module.secrets.secret_arns["api_tokens"]]
  legal_export_secret_arns = [
    module.database.secret_arns["attest_db_user"],
    module.secrets.secret_arns["signing_key"],
    module.secrets.secret_arns["tsa_credentials"],
  ]
}

module "airflow" {
  source = "../../modules/airflow"

  name                      = local.name
  platform                  = var.airflow_platform
  vpc_id                    = module.network.vpc_id
  private_subnet_ids        = module.network.private_subnet_ids
  workers_security_group_id = module.network.workers_security_group_id
  worker_role_arn           = module.iam.role_arns["crawler"]
  worker_role_name          = module.iam.role_names["crawler"]
  attest_environment        = local.attest_environment
  index_db_secret_arn       = module.database.secret_arns["attest_db_user"]
  log_bucket_name           = module.evidence_store.log_bucket_name

  worker_concurrency       = var.worker_concurrency
  min_workers              = var.min_workers
  max_workers              = var.max_workers
  mwaa_airflow_version     = var.mwaa_airflow_version
  mwaa_environment_class   = var.mwaa_environment_class
  node_instance_types      = var.node_instance_types
  airflow_image_repository = var.airflow_image_repository
  airflow_image_tag        = var.airflow_image_tag
}
