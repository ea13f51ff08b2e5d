output "primary_endpoint" {
  description = "Host of the broker's primary node."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "security_group_id" {
  description = "The broker's security group."
  value       = aws_security_group.broker.id
}

output "broker_url_secret_arn" {
  description = "ARN of the broker URL secret (never its value)."
  value       = aws_secretsmanager_secret.broker_url.arn
}

output "airflow_config_key" {
  description = "Airflow config key of the broker URL in the secrets backend (AIRFLOW__CELERY__BROKER_URL_SECRET)."
  value       = "broker_url"
}
