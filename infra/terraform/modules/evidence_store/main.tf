# The evidence bucket: every WARC, CDXJ index, custody segment and run report attest stores.
# Integrity is enforced by S3 itself, not by attest: Object Lock (default retention on every
# object version), versioning, SSE-KMS with a key of its own, no public access, TLS only, and a
# bucket policy that denies the workload roles every way of removing or unlocking evidence.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  prefix_arn = "arn:${local.partition}:s3:::${var.bucket_name}/${var.store_prefix}"
  # What no workload role may ever do to the bucket or its objects.
  denied_to_workloads = [
    "s3:BypassGovernanceRetention",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutReplicationConfiguration",
  ]
}

# --- the bucket's key ------------------------------------------------------------------------

data "aws_iam_policy_document" "evidence_key" {
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  # Key administration and use are delegated to IAM policies of this account (the workload
  # roles' policies name this key); no other account or service principal is trusted.
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
    sid       = "WorkloadsNeverManageTheKey"
    effect    = "Deny"
    actions   = ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy", "kms:CreateGrant"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:PrincipalArn"
      values   = var.workload_role_arns
    }
  }
}

resource "aws_kms_key" "evidence" {
  description             = "attest evidence bucket ${var.bucket_name} (SSE-KMS)"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.evidence_key.json
}

resource "aws_kms_alias" "evidence" {
  name          = "alias/${var.bucket_name}"
  target_key_id = aws_kms_key.evidence.key_id
}

# --- the bucket ------------------------------------------------------------------------------

resource "aws_s3_bucket" "evidence" {
  bucket = var.bucket_name
  # Object Lock can only be turned on when a bucket is created, and never off afterwards.
  object_lock_enabled = true
  force_destroy       = false
}

resource "aws_s3_bucket_versioning" "evidence" {
  bucket = aws_s3_bucket.evidence.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "evidence" {
  bucket = aws_s3_bucket.evidence.id

  rule {
    default_retention {
      mode = var.object_lock_mode
      days = var.object_lock_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.evidence]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "evidence" {
  bucket = aws_s3_bucket.evidence.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.evidence.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "evidence" {
  bucket                  = aws_s3_bucket.evidence.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "evidence" {
  bucket = aws_s3_bucket.evidence.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_logging" "evidence" {
  bucket        = aws_s3_bucket.evidence.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3-access/${var.bucket_name}/"
}

# Object-created events go to EventBridge, for alerting and audit pipelines.
resource "aws_s3_bucket_notification" "evidence" {
  bucket      = aws_s3_bucket.evidence.id
  eventbridge = true
}

resource "aws_s3_bucket_lifecycle_configuration" "evidence" {
  bucket = aws_s3_bucket.evidence.id

  # Old WARCs (and the CDXJ files beside them) move to an archive class. A transition keeps the
  # object version, its retention date and its legal hold; only the storage class changes.
  rule {
    id     = "archive-warcs"
    status = "Enabled"

    filter {
      prefix = "${var.store_prefix}/warcs/"
    }

    transition {
      days          = var.archive_after_days
      storage_class = var.archive_storage_class
    }

    noncurrent_version_transition {
      noncurrent_days = var.archive_after_days
      storage_class   = var.archive_storage_class
    }
  }

  # attest uploads with single PUTs; this only clears parts another tool may leave behind.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.evidence]
}

data "aws_iam_policy_document" "evidence_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.evidence.arn, "${aws_s3_bucket.evidence.arn}/*"]

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

  statement {
    sid       = "DenyWorkloadDeleteBypassOrReconfigure"
    effect    = "Deny"
    actions   = local.denied_to_workloads
    resources = [aws_s3_bucket.evidence.arn, "${aws_s3_bucket.evidence.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:PrincipalArn"
      values   = var.workload_role_arns
    }
  }

  statement {
    sid       = "DenyLegalHoldsExceptLegalExport"
    effect    = "Deny"
    actions   = ["s3:PutObjectLegalHold"]
    resources = ["${aws_s3_bucket.evidence.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:PrincipalArn"
      values   = var.workload_role_arns
    }

    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values   = var.legal_hold_role_arns
    }
  }

  # attest creates every key with If-None-Match: *, so a workload can never replace an object
  # (not even by adding a newer version over it).
  statement {
    sid       = "DenyWorkloadOverwrites"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.evidence.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:PrincipalArn"
      values   = var.workload_role_arns
    }

    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
  }

  statement {
    sid       = "DenyOtherEncryption"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.evidence.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  statement {
    sid       = "DenyOtherKmsKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.evidence.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.evidence.arn]
    }
  }

  # An explicit retention on upload (attest's ATTEST_S3_OBJECT_LOCK_DAYS) may not be shorter
  # than the bucket's default (one day of slack for the time between the client's clock and
  # S3's evaluation).
  statement {
    sid       = "DenyShorterRetention"
    effect    = "Deny"
    actions   = ["s3:PutObject", "s3:PutObjectRetention"]
    resources = ["${aws_s3_bucket.evidence.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:object-lock-remaining-retention-days"
      values   = [tostring(max(var.object_lock_days - 1, 1))]
    }
  }

  # In COMPLIANCE mode, nothing may be uploaded under the weaker GOVERNANCE mode.
  dynamic "statement" {
    for_each = var.object_lock_mode == "COMPLIANCE" ? [1] : []

    content {
      sid       = "DenyGovernanceModeUploads"
      effect    = "Deny"
      actions   = ["s3:PutObject", "s3:PutObjectRetention"]
      resources = ["${aws_s3_bucket.evidence.arn}/*"]

      principals {
        type        = "*"
        identifiers = ["*"]
      }

      condition {
        test     = "Null"
        variable = "s3:object-lock-mode"
        values   = ["false"]
      }

      condition {
        test     = "StringNotEquals"
        variable = "s3:object-lock-mode"
        values   = ["COMPLIANCE"]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "evidence" {
  bucket = aws_s3_bucket.evidence.id
  policy = data.aws_iam_policy_document.evidence_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.evidence]
}
