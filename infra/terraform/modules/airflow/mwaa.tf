# Amazon MWAA. MWAA brings its own metadata database and Celery broker (SQS): with it, the
# database module still holds attest's index, and the broker module is not needed. Workers run
# with the environment's execution role, which is the crawler role plus MWAA's own permissions.

locals {
  mwaa_name   = "${var.name}-airflow"
  mwaa_bucket = "airflow-${var.name}-${local.account_id}"
}

data "aws_iam_policy_document" "mwaa_key" {
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  count = local.mwaa

  statement {
    sid       = "AccountIAMDelegation"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypts"
    effect    = "Allow"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:airflow-${local.mwaa_name}-*"]
    }
  }
}

resource "aws_kms_key" "mwaa" {
  count                   = local.mwaa
  description             = "attest ${var.name} MWAA environment, its DAG bucket and logs"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.mwaa_key[0].json
}

# --- the DAG bucket (MWAA's "source" bucket: dags/, requirements, plugins, startup script) ----

resource "aws_s3_bucket" "mwaa" {
  #checkov:skip=CKV_AWS_144:Holds deployable code (DAGs, requirements, startup script) rebuilt from the repository, not evidence.
  count         = local.mwaa
  bucket        = local.mwaa_bucket
  force_destroy = false
}

resource "aws_s3_bucket_versioning" "mwaa" {
  count  = local.mwaa
  bucket = aws_s3_bucket.mwaa[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "mwaa" {
  count  = local.mwaa
  bucket = aws_s3_bucket.mwaa[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.mwaa[0].arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "mwaa" {
  count                   = local.mwaa
  bucket                  = aws_s3_bucket.mwaa[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_logging" "mwaa" {
  count         = local.mwaa
  bucket        = aws_s3_bucket.mwaa[0].id
  target_bucket = var.log_bucket_name
  target_prefix = "s3-access/${local.mwaa_bucket}/"
}

resource "aws_s3_bucket_notification" "mwaa" {
  count       = local.mwaa
  bucket      = aws_s3_bucket.mwaa[0].id
  eventbridge = true
}

resource "aws_s3_bucket_lifecycle_configuration" "mwaa" {
  count  = local.mwaa
  bucket = aws_s3_bucket.mwaa[0].id

  rule {
    id     = "expire-old-code-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 90
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.mwaa]
}

data "aws_iam_policy_document" "mwaa_bucket" {
  count = local.mwaa

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.mwaa[0].arn, "${aws_s3_bucket.mwaa[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "mwaa" {
  count  = local.mwaa
  bucket = aws_s3_bucket.mwaa[0].id
  policy = data.aws_iam_policy_document.mwaa_bucket[0].json

  depends_on = [aws_s3_bucket_public_access_block.mwaa]
}

resource "aws_s3_object" "startup" {
  count  = local.mwaa
  bucket = aws_s3_bucket.mwaa[0].id
  key    = "startup.sh"
  content = templatefile("${path.module}/templates/startup.sh.tftpl", {
    environment         = var.attest_environment
    index_db_secret_arn = var.index_db_secret_arn
  })
  content_type = "text/x-shellscript"
  kms_key_id   = aws_kms_key.mwaa[0].arn

  depends_on = [aws_s3_bucket_versioning.mwaa]
}

# --- MWAA's own permissions, added to the crawler role -----------------------------------------

data "aws_iam_policy_document" "mwaa_execution" {
  count = local.mwaa

  statement {
    sid       = "PublishMetrics"
    effect    = "Allow"
    actions   = ["airflow:PublishMetrics"]
    resources = ["arn:${local.partition}:airflow:${local.region}:${local.account_id}:environment/${local.mwaa_name}"]
  }

  statement {
    sid       = "ReadDagBucket"
    effect    = "Allow"
    actions   = ["s3:GetObject*", "s3:GetBucket*", "s3:List*"]
    resources = [aws_s3_bucket.mwaa[0].arn, "${aws_s3_bucket.mwaa[0].arn}/*"]
  }

  statement {
    sid    = "Logs"
    effect = "Allow"
    actions = [
      "logs:CreateLogStream",
      "logs:CreateLogGroup",
      "logs:PutLogEvents",
      "logs:GetLogEvents",
      "logs:GetLogRecord",
      "logs:GetLogGroupFields",
      "logs:GetQueryResults",
    ]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:airflow-${local.mwaa_name}-*"]
  }

  statement {
    sid       = "DescribeLogGroups"
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }

  statement {
    sid       = "Metrics"
    effect    = "Allow"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["AmazonMWAA"]
    }
  }

  statement {
    sid    = "CeleryQueues"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = ["arn:${local.partition}:sqs:${local.region}:*:airflow-celery-*"]
  }

  statement {
    sid       = "EnvironmentKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"]
    resources = [aws_kms_key.mwaa[0].arn]

    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com", "s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "mwaa_execution" {
  count  = local.mwaa
  name   = "mwaa-execution"
  role   = var.worker_role_name
  policy = data.aws_iam_policy_document.mwaa_execution[0].json
}

# MWAA needs its components to reach each other: a self-referencing group (nothing else inbound).
resource "aws_security_group" "mwaa" {
  count       = local.mwaa
  name        = "${var.name}-mwaa"
  description = "MWAA components: traffic between themselves only"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-mwaa" }
}

resource "aws_vpc_security_group_ingress_rule" "mwaa_self" {
  count                        = local.mwaa
  security_group_id            = aws_security_group.mwaa[0].id
  description                  = "MWAA components to each other"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.mwaa[0].id
}

resource "aws_vpc_security_group_egress_rule" "mwaa_self" {
  count                        = local.mwaa
  security_group_id            = aws_security_group.mwaa[0].id
  description                  = "MWAA components to each other"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.mwaa[0].id
}

resource "aws_mwaa_environment" "this" {
  count = local.mwaa

  name                             = local.mwaa_name
  airflow_version                  = var.mwaa_airflow_version
  environment_class                = var.mwaa_environment_class
  execution_role_arn               = var.worker_role_arn
  kms_key                          = aws_kms_key.mwaa[0].arn
  source_bucket_arn                = aws_s3_bucket.mwaa[0].arn
  dag_s3_path                      = "dags/"
  startup_script_s3_path           = aws_s3_object.startup[0].key
  startup_script_s3_object_version = aws_s3_object.startup[0].version_id

  min_workers           = var.min_workers
  max_workers           = var.max_workers
  webserver_access_mode = "PRIVATE_ONLY"

  airflow_configuration_options = {
    "celery.worker_autoscale" = "${var.worker_concurrency},${var.worker_concurrency}"
    "core.load_examples"      = "False"
  }

  network_configuration {
    security_group_ids = [aws_security_group.mwaa[0].id, var.workers_security_group_id]
    subnet_ids         = slice(var.private_subnet_ids, 0, 2)
  }

  logging_configuration {
    dag_processing_logs {
      enabled   = true
      log_level = "INFO"
    }
    scheduler_logs {
      enabled   = true
      log_level = "INFO"
    }
    task_logs {
      enabled   = true
      log_level = "INFO"
    }
    webserver_logs {
      enabled   = true
      log_level = "INFO"
    }
    worker_logs {
      enabled   = true
      log_level = "INFO"
    }
  }

  depends_on = [aws_iam_role_policy.mwaa_execution]
}
