output "role_arns" {
  description = "ARNs of the crawler, indexer and legal_export roles."
  value       = { for k, r in aws_iam_role.this : k => r.arn }
}

output "role_names" {
  description = "Names of the crawler, indexer and legal_export roles."
  value       = { for k, r in aws_iam_role.this : k => r.name }
}
