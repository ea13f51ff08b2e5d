# Redis on ElastiCache: Celery's broker (queued task messages only, SCALING.md). Private (data
# subnets, reachable from the workers' security group only), TLS required in transit, encrypted
# at rest with a key of its own, and RBAC: the `default` user is switched off and Celery logs in
# as its own user, which may not run administrative commands. Airflow reads the whole broker URL
# from Secrets Manager (AIRFLOW__CELERY__BROKER_URL_SECRET=broker_url).
#
# The celery user's password is the one secret in Terraform's state: aws_elasticache_user's
# `passwords` (and authentication_mode.passwords) are stored in state (the database passwords
# are write-only, and are not). Recent 6.x releases added a top-level write-only `passwords_wo`
# (hashicorp/terraform-provider-aws#45988, April 2026; it conflicts with authentication_mode and
# is being reworked in #48905); moving to it needs the provider floor raised to that release.
# Until then keep the state bucket encrypted and restricted (docs/DEPLOY.md); rotate with
# password_version.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

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
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:log-group:/aws/elasticache/${var.name}-broker*"]
    }
  }
}

resource "aws_kms_key" "broker" {
  description             = "attest ${var.name} Redis broker (at rest) and its logs"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_security_group" "broker" {
  name        = "${var.name}-broker"
  description = "attest Redis broker: reachable from the workers only"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-broker" }
}

resource "aws_vpc_security_group_ingress_rule" "broker_from_clients" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.broker.id
  description                  = "Redis (TLS) from attest workers"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = each.value
}

resource "aws_elasticache_subnet_group" "this" {
  name       = "${var.name}-broker"
  subnet_ids = var.subnet_ids
}

resource "aws_cloudwatch_log_group" "slow_log" {
  name              = "/aws/elasticache/${var.name}-broker/slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.broker.arn
}

resource "random_password" "celery" {
  length  = 64
  special = false

  keepers = {
    version = var.password_version
  }
}

# ElastiCache needs a user named "default" in every group: it is switched off here.
resource "aws_elasticache_user" "default" {
  user_id       = "${var.name}-default"
  user_name     = "default"
  engine        = "redis"
  access_string = "off ~* -@all"

  authentication_mode {
    type = "no-password-required"
  }
}

resource "aws_elasticache_user" "celery" {
  user_id   = "${var.name}-celery"
  user_name = "celery"
  engine    = "redis"
  # Every command Celery's Redis transport uses, and none of the administrative ones
  # (CONFIG, ACL, DEBUG, SHUTDOWN, REPLICAOF, MONITOR, ...).
  access_string = "on ~* &* +@all -@admin"

  authentication_mode {
    type      = "password"
    passwords = [random_password.celery.result]
  }
}

resource "aws_elasticache_user_group" "this" {
  user_group_id = "${var.name}-broker"
  engine        = "redis"
  user_ids      = [aws_elasticache_user.default.user_id, aws_elasticache_user.celery.user_id]
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = "${var.name}-broker"
  description          = "attest ${var.name} Celery broker"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379

  num_cache_clusters         = var.num_cache_clusters
  automatic_failover_enabled = var.multi_az
  multi_az_enabled           = var.multi_az

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.broker.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.broker.arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  user_group_ids             = [aws_elasticache_user_group.this.user_group_id]

  auto_minor_version_upgrade = true
  snapshot_retention_limit   = var.snapshot_retention_days
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.slow_log.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}

resource "aws_secretsmanager_secret" "broker_url" {
  #checkov:skip=CKV2_AWS_57:Rotated by Terraform: bumping password_version sets a new celery password on ElastiCache and in this secret in one apply; see docs/DEPLOY.md.
  name                    = "${var.airflow_config_prefix}/broker_url"
  description             = "Airflow [celery] broker_url: rediss:// URL of the ElastiCache broker with the celery user's password"
  kms_key_id              = var.secrets_kms_key_arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "broker_url" {
  secret_id                = aws_secretsmanager_secret.broker_url.id
  secret_string_wo         = "rediss://celery:${random_password.celery.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379/0?ssl_cert_reqs=required"
  secret_string_wo_version = var.password_version
}
