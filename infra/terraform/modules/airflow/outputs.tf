output "platform" {
  description = "Where Airflow runs: eks or mwaa."
  value       = var.platform
}

output "uses_own_metadata_and_broker" {
  description = "True when Airflow uses this deployment's RDS metadata database and ElastiCache broker (eks); false on MWAA, which brings its own."
  value       = var.platform == "eks"
}

output "eks_cluster_name" {
  description = "The EKS cluster (eks only)."
  value       = one(aws_eks_cluster.this[*].name)
}

output "eks_cluster_endpoint" {
  description = "The EKS API endpoint, inside the VPC (eks only)."
  value       = one(aws_eks_cluster.this[*].endpoint)
}

output "eks_cluster_ca" {
  description = "The EKS cluster's CA certificate, base64 (eks only)."
  value       = one(aws_eks_cluster.this[*].certificate_authority[0].data)
}

output "mwaa_webserver_url" {
  description = "MWAA's (private) web server URL (mwaa only)."
  value       = one(aws_mwaa_environment.this[*].webserver_url)
}

output "mwaa_dag_bucket" {
  description = "MWAA's DAG bucket: upload dags/, requirements and plugins there (mwaa only)."
  value       = one(aws_s3_bucket.mwaa[*].id)
}
