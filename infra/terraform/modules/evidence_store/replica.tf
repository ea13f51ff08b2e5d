# Optional replica of the evidence in a second region (provider aws.replica): same Object Lock
# mode and default retention, its own KMS key there. Each new object version is copied with its
# retention date and legal hold; delete markers are not replicated, so nothing done to the
# source can hide an object in the replica.

locals {
  replica_count = var.replication_enabled ? 1 : 0
}

data "aws_region" "replica" {
  provider = aws.replica
}

data "aws_iam_policy_document" "replica_key" {
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  count = local.replica_count

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
}

resource "aws_kms_key" "replica" {
  count    = local.replica_count
  provider = aws.replica

  description             = "attest evidence replica ${var.bucket_name}-replica (SSE-KMS)"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.replica_key[0].json
}

resource "aws_s3_bucket" "replica" {
  #checkov:skip=CKV_AWS_144:This is the cross-region replica; replicating it again would only add a third copy.
  #checkov:skip=CKV_AWS_18:Written only by S3 replication; S3 access logs cannot cross regions to the primary's log bucket. Reads of the replica are a disaster-recovery step.
  count    = local.replica_count
  provider = aws.replica

  bucket              = "${var.bucket_name}-replica"
  object_lock_enabled = true
  force_destroy       = false
}

resource "aws_s3_bucket_versioning" "replica" {
  count    = local.replica_count
  provider = aws.replica
  bucket   = aws_s3_bucket.replica[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "replica" {
  count    = local.replica_count
  provider = aws.replica
  bucket   = aws_s3_bucket.replica[0].id

  rule {
    default_retention {
      mode = var.object_lock_mode
      days = var.object_lock_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.replica]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "replica" {
  count    = local.replica_count
  provider = aws.replica
  bucket   = aws_s3_bucket.replica[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.replica[0].arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "replica" {
  count                   = local.replica_count
  provider                = aws.replica
  bucket                  = aws_s3_bucket.replica[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "replica" {
  count    = local.replica_count
  provider = aws.replica
  bucket   = aws_s3_bucket.replica[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_notification" "replica" {
  count       = local.replica_count
  provider    = aws.replica
  bucket      = aws_s3_bucket.replica[0].id
  eventbridge = true
}

resource "aws_s3_bucket_lifecycle_configuration" "replica" {
  count    = local.replica_count
  provider = aws.replica
  bucket   = aws_s3_bucket.replica[0].id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.replica]
}

data "aws_iam_policy_document" "replica_bucket" {
  count = local.replica_count

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.replica[0].arn, "${aws_s3_bucket.replica[0].arn}/*"]

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
    actions   = concat(local.denied_to_workloads, ["s3:PutObject", "s3:PutObjectLegalHold"])
    resources = [aws_s3_bucket.replica[0].arn, "${aws_s3_bucket.replica[0].arn}/*"]

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
}

resource "aws_s3_bucket_policy" "replica" {
  count    = local.replica_count
  provider = aws.replica
  bucket   = aws_s3_bucket.replica[0].id
  policy   = data.aws_iam_policy_document.replica_bucket[0].json

  depends_on = [aws_s3_bucket_public_access_block.replica]
}

# --- replication -----------------------------------------------------------------------------

data "aws_iam_policy_document" "replication_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "replication" {
  count              = local.replica_count
  name               = "${var.bucket_name}-replication"
  assume_role_policy = data.aws_iam_policy_document.replication_trust.json
}

data "aws_iam_policy_document" "replication" {
  count = local.replica_count

  statement {
    sid       = "ReadReplicationConfiguration"
    effect    = "Allow"
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [aws_s3_bucket.evidence.arn]
  }

  statement {
    sid    = "ReadSourceVersions"
    effect = "Allow"
    actions = [
      "s3:GetObjectVersionForReplication",
      "s3:GetObjectVersionAcl",
      "s3:GetObjectVersionTagging",
      "s3:GetObjectRetention",
      "s3:GetObjectLegalHold",
    ]
    resources = ["${aws_s3_bucket.evidence.arn}/*"]
  }

  statement {
    sid       = "WriteReplicas"
    effect    = "Allow"
    actions   = ["s3:ReplicateObject", "s3:ReplicateTags"]
    resources = ["${aws_s3_bucket.replica[0].arn}/*"]
  }

  statement {
    sid       = "DecryptSource"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.evidence.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "EncryptReplica"
    effect    = "Allow"
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.replica[0].arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.replica.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "replication" {
  count  = local.replica_count
  name   = "replicate-evidence"
  role   = aws_iam_role.replication[0].id
  policy = data.aws_iam_policy_document.replication[0].json
}

resource "aws_s3_bucket_replication_configuration" "evidence" {
  count = local.replica_count
  # Both buckets are versioned and locked: each version's retention date and legal hold are
  # replicated with it.
  role   = aws_iam_role.replication[0].arn
  bucket = aws_s3_bucket.evidence.id

  rule {
    id     = "evidence-to-replica"
    status = "Enabled"

    filter {}

    delete_marker_replication {
      status = "Disabled"
    }

    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }

    destination {
      bucket        = aws_s3_bucket.replica[0].arn
      storage_class = var.replica_storage_class

      encryption_configuration {
        replica_kms_key_id = aws_kms_key.replica[0].arn
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.evidence, aws_s3_bucket_versioning.replica]
}
