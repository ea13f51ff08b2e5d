output "kms_key_arn" {
  description = "The KMS key of the secrets (also used by the database and broker modules' secrets)."
  value       = aws_kms_key.secrets.arn
}

output "secret_arns" {
  description = "ARNs of attest's secrets (api_tokens, signing_key, tsa_credentials); never their values."
  value       = { for k, s in aws_secretsmanager_secret.attest : k => s.arn }
}

output "secret_names" {
  description = "Names of attest's secrets."
  value       = { for k, s in aws_secretsmanager_secret.attest : k => s.name }
}
