output "address" {
  description = "The database host."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "The database port."
  value       = aws_db_instance.this.port
}

output "security_group_id" {
  description = "The database's security group."
  value       = aws_security_group.db.id
}

output "attest_index_url" {
  description = "ATTEST_INDEX: the attest database, without a password (libpq takes it from PGPASSWORD)."
  value       = "postgresql://attest@${aws_db_instance.this.address}:${aws_db_instance.this.port}/attest?sslmode=require"
}

output "master_user_secret_arn" {
  description = "The RDS-managed secret of the master user (rotated by RDS)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "secret_arns" {
  description = "ARNs of the database secrets (sql_alchemy_conn, result_backend, airflow_db_user, attest_db_user)."
  value       = { for k, s in aws_secretsmanager_secret.db : k => s.arn }
}

output "airflow_config_keys" {
  description = "Airflow config keys in the secrets backend, for the *_SECRET settings."
  value = {
    sql_alchemy_conn = "sql_alchemy_conn"
    result_backend   = "result_backend"
  }
}
