output "bucket_name" {
  description = "The evidence bucket."
  value       = aws_s3_bucket.evidence.id
}

output "bucket_arn" {
  description = "ARN of the evidence bucket."
  value       = aws_s3_bucket.evidence.arn
}

output "store_prefix" {
  description = "The key prefix attest writes under."
  value       = var.store_prefix
}

output "store_uri" {
  description = "attest's store URI (ATTEST_STORE)."
  value       = "s3://${aws_s3_bucket.evidence.id}/${var.store_prefix}"
}

output "kms_key_arn" {
  description = "The evidence bucket's KMS key (SSE-KMS)."
  value       = aws_kms_key.evidence.arn
}

output "object_lock_mode" {
  description = "Default Object Lock mode of the bucket."
  value       = aws_s3_bucket_object_lock_configuration.evidence.rule[0].default_retention[0].mode
}

output "object_lock_days" {
  description = "Default Object Lock retention of the bucket, in days."
  value       = aws_s3_bucket_object_lock_configuration.evidence.rule[0].default_retention[0].days
}

output "attest_object_lock_days" {
  description = "ATTEST_S3_OBJECT_LOCK_DAYS: the bucket's days in COMPLIANCE mode (attest always asks COMPLIANCE); empty in GOVERNANCE mode, where the bucket's default retention alone applies."
  value       = var.object_lock_mode == "COMPLIANCE" ? tostring(var.object_lock_days) : ""
}

output "log_bucket_name" {
  description = "The access-log bucket."
  value       = aws_s3_bucket.logs.id
}

output "log_bucket_arn" {
  description = "ARN of the access-log bucket (also the VPC flow log destination)."
  value       = aws_s3_bucket.logs.arn
}

output "replica_bucket_arn" {
  description = "ARN of the cross-region replica, or null when replication is off."
  value       = one(aws_s3_bucket.replica[*].arn)
}
