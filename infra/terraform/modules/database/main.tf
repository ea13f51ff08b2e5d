# PostgreSQL on RDS: one instance, two databases (SCALING.md): `airflow` (Airflow's metadata and
# Celery results) and `attest` (the index, ATTEST_INDEX). Private (data subnets, reachable only
# from the workers' security group), encrypted with a key of its own, TLS enforced, backed up.
#
# No password is ever in Terraform's state: the master password is managed by RDS in Secrets
# Manager (manage_master_user_password), and the passwords of the `airflow` and `attest` roles
# are generated as ephemeral values and written to Secrets Manager as write-only values. The
# roles themselves are created once with those passwords (docs/DEPLOY.md, "Bootstrap the
# databases"); bumping password_version generates new ones (rotation).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  identifier  = "${var.name}-postgres"
  log_exports = ["postgresql", "upgrade"]
  host        = aws_db_instance.this.address
  port        = aws_db_instance.this.port
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  statement {
    sid       = "AccountIAMDelegation"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypts"
    effect    = "Allow"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:log-group:/aws/rds/instance/${local.identifier}/*"]
    }
  }
}

resource "aws_kms_key" "db" {
  description             = "attest ${var.name} PostgreSQL storage, snapshots, Performance Insights and logs"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_security_group" "db" {
  name        = "${var.name}-postgres"
  description = "attest PostgreSQL: reachable from the workers only"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-postgres" }
}

resource "aws_vpc_security_group_ingress_rule" "db_from_clients" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from attest workers"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-postgres"
  subnet_ids = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name   = "${var.name}-postgres${var.engine_major_version}"
  family = "postgres${var.engine_major_version}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }
}

resource "aws_cloudwatch_log_group" "db" {
  for_each          = toset(local.log_exports)
  name              = "/aws/rds/instance/${local.identifier}/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.db.arn
}

data "aws_iam_policy_document" "monitoring_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_trust.json
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier     = local.identifier
  engine         = "postgres"
  engine_version = var.engine_major_version
  instance_class = var.instance_class

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.db.arn

  db_name                       = "airflow"
  username                      = "attest_admin"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.secrets_kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  publicly_accessible    = false
  multi_az               = var.multi_az
  network_type           = "IPV4"

  iam_database_authentication_enabled = true

  backup_retention_period   = var.backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.identifier}-final"

  auto_minor_version_upgrade      = true
  allow_major_version_upgrade     = false
  enabled_cloudwatch_logs_exports = local.log_exports
  monitoring_interval             = 60
  monitoring_role_arn             = aws_iam_role.monitoring.arn

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.db.arn
  performance_insights_retention_period = 7

  depends_on = [aws_cloudwatch_log_group.db]
}

# --- the application roles' passwords (never in state) ----------------------------------------

ephemeral "aws_secretsmanager_random_password" "airflow" {
  password_length     = 48
  exclude_punctuation = true
}

ephemeral "aws_secretsmanager_random_password" "attest" {
  password_length     = 48
  exclude_punctuation = true
}

locals {
  # Airflow's secrets backend reads [database] sql_alchemy_conn and [celery] result_backend from
  # <config_prefix>/<option> (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET=sql_alchemy_conn).
  db_secrets = {
    sql_alchemy_conn = {
      name        = "${var.airflow_config_prefix}/sql_alchemy_conn"
      description = "Airflow [database] sql_alchemy_conn (with the airflow role's password)"
    }
    result_backend = {
      name        = "${var.airflow_config_prefix}/result_backend"
      description = "Airflow [celery] result_backend: Celery results in the airflow database"
    }
    airflow_db_user = {
      name        = "${var.name}/postgres/airflow"
      description = "The airflow PostgreSQL role: {username, password} (bootstrap and rotation)"
    }
    attest_db_user = {
      name        = "${var.name}/postgres/attest"
      description = "The attest PostgreSQL role of the index (ATTEST_INDEX): {username, password}; workers export the password as PGPASSWORD"
    }
  }
}

resource "aws_secretsmanager_secret" "db" {
  #checkov:skip=CKV2_AWS_57:Rotated by Terraform: bumping password_version writes new generated passwords (write-only, never in state); the roles are then altered by the runbook in docs/DEPLOY.md.
  for_each = local.db_secrets

  name                    = each.value.name
  description             = each.value.description
  kms_key_id              = var.secrets_kms_key_arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "sql_alchemy_conn" {
  secret_id                = aws_secretsmanager_secret.db["sql_alchemy_conn"].id
  secret_string_wo         = "postgresql://airflow:${ephemeral.aws_secretsmanager_random_password.airflow.random_password}@${local.host}:${local.port}/airflow?sslmode=require"
  secret_string_wo_version = var.password_version
}

resource "aws_secretsmanager_secret_version" "result_backend" {
  secret_id                = aws_secretsmanager_secret.db["result_backend"].id
  secret_string_wo         = "db+postgresql://airflow:${ephemeral.aws_secretsmanager_random_password.airflow.random_password}@${local.host}:${local.port}/airflow?sslmode=require"
  secret_string_wo_version = var.password_version
}

resource "aws_secretsmanager_secret_version" "airflow_db_user" {
  secret_id                = aws_secretsmanager_secret.db["airflow_db_user"].id
  secret_string_wo         = jsonencode({ username = "airflow", password = ephemeral.aws_secretsmanager_random_password.airflow.random_password })
  secret_string_wo_version = var.password_version
}

resource "aws_secretsmanager_secret_version" "attest_db_user" {
  secret_id                = aws_secretsmanager_secret.db["attest_db_user"].id
  secret_string_wo         = jsonencode({ username = "attest", password = ephemeral.aws_secretsmanager_random_password.attest.random_password })
  secret_string_wo_version = var.password_version
}
