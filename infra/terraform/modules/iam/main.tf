# The roles attest runs as, each granted exactly the S3 calls its code makes (archive/store/s3.py)
# on the keys it writes, under the store prefix only:
#
#   key (under <prefix>/)                      written by                         role
#   warcs/<source>/<yyyy>/<mm>/<dd>/*.warc.gz  ship (capture task, attest crawl)  crawler
#   runs/...                                    run ledgers, DAG run reports       crawler
#   warcs/.../*.warc.gz.cdxj                    index step                         crawler, indexer
#   custody/segments/*.jsonl                    custody log seals                  all three
#
# Every write is a PutObject with If-None-Match (never an overwrite) and, with
# ATTEST_S3_OBJECT_LOCK_DAYS, a COMPLIANCE retention date, hence s3:PutObjectRetention. Reads are
# HeadObject/GetObject (s3:GetObject) and ListObjectsV2 (s3:ListBucket, scoped by s3:prefix).
# Legal holds (attest hold) are PutObjectLegalHold/GetObjectLegalHold after a
# GetObjectLockConfiguration check, for the legal_export role alone. No role may delete, bypass
# retention or change the bucket: those actions are never granted here and are also denied by
# the bucket policy (evidence_store).
#
# The Airflow workers run the whole DAG (capture, then index, verify, report), so the crawler
# role also writes the CDXJ indexes; the indexer role is for hosts that only index and serve
# (attest index, attest serve, attest audit).

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  p        = "${var.bucket_arn}/${var.store_prefix}"
  kms_s3   = "s3.${var.region}.amazonaws.com"
  kms_sm   = "secretsmanager.${var.region}.amazonaws.com"
  warcs    = "${local.p}/warcs/*.warc.gz"
  cdxj     = "${local.p}/warcs/*.warc.gz.cdxj"
  runs     = "${local.p}/runs/*"
  segments = "${local.p}/custody/segments/*.jsonl"

  roles = {
    crawler      = var.crawler_trust
    indexer      = var.indexer_trust
    legal_export = var.legal_export_trust
  }
  secrets = {
    crawler      = var.crawler_secret_arns
    indexer      = var.indexer_secret_arns
    legal_export = var.legal_export_secret_arns
  }
  policies = {
    crawler      = data.aws_iam_policy_document.crawler.json
    indexer      = data.aws_iam_policy_document.indexer.json
    legal_export = data.aws_iam_policy_document.legal_export.json
  }
}

# --- trust -----------------------------------------------------------------------------------

data "aws_iam_policy_document" "trust" {
  for_each = local.roles

  dynamic "statement" {
    for_each = length(each.value.services) > 0 ? [1] : []

    content {
      sid     = "Services"
      effect  = "Allow"
      actions = ["sts:AssumeRole", "sts:TagSession"]

      principals {
        type        = "Service"
        identifiers = each.value.services
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }

  dynamic "statement" {
    for_each = length(each.value.principal_arns) > 0 ? [1] : []

    content {
      sid     = "Principals"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]

      principals {
        type        = "AWS"
        identifiers = each.value.principal_arns
      }
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.roles

  name                 = "${var.name}-${replace(each.key, "_", "-")}"
  description          = "attest ${each.key}: least-privilege access to the evidence store"
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "store" {
  for_each = local.roles

  name   = "attest-evidence-store"
  role   = aws_iam_role.this[each.key].id
  policy = local.policies[each.key]
}

# --- the statements shared by the roles ------------------------------------------------------

data "aws_iam_policy_document" "common" {
  for_each = local.roles

  statement {
    sid       = "ListStorePrefix"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.store_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadStore"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${local.p}/*"]
  }

  statement {
    sid       = "UseEvidenceKeyThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_s3]
    }
  }

  dynamic "statement" {
    for_each = length(local.secrets[each.key]) > 0 ? [1] : []

    content {
      sid       = "ReadOwnSecrets"
      effect    = "Allow"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = local.secrets[each.key]
    }
  }

  dynamic "statement" {
    for_each = length(local.secrets[each.key]) > 0 ? [1] : []

    content {
      sid       = "DecryptSecretsThroughSecretsManager"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [var.secrets_kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [local.kms_sm]
      }
    }
  }
}

# --- per role --------------------------------------------------------------------------------

data "aws_iam_policy_document" "crawler" {
  source_policy_documents = [data.aws_iam_policy_document.common["crawler"].json]

  statement {
    sid       = "WriteCapturesIndexesReportsAndCustody"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:PutObjectRetention"]
    resources = [local.warcs, local.cdxj, local.runs, local.segments]
  }
}

data "aws_iam_policy_document" "indexer" {
  source_policy_documents = [data.aws_iam_policy_document.common["indexer"].json]

  statement {
    sid       = "WriteIndexesAndCustody"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:PutObjectRetention"]
    resources = [local.cdxj, local.segments]
  }
}

data "aws_iam_policy_document" "legal_export" {
  source_policy_documents = [data.aws_iam_policy_document.common["legal_export"].json]

  statement {
    sid       = "CheckObjectLock"
    effect    = "Allow"
    actions   = ["s3:GetBucketObjectLockConfiguration"]
    resources = [var.bucket_arn]
  }

  statement {
    sid       = "LegalHoldsOnWarcs"
    effect    = "Allow"
    actions   = ["s3:PutObjectLegalHold", "s3:GetObjectLegalHold"]
    resources = [local.warcs]
  }

  statement {
    sid       = "WriteCustody"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:PutObjectRetention"]
    resources = [local.segments]
  }
}
