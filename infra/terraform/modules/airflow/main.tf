# Airflow 3 with CeleryExecutor, on one of two platforms (var.platform; see README.md):
#   eks  - the official apache-airflow Helm chart on an EKS cluster of this module (eks.tf)
#   mwaa - Amazon Managed Workflows for Apache Airflow (mwaa.tf)
# Either way the Celery workers run in the private subnets, as the crawler role, with attest's
# settings in their environment.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  eks        = var.platform == "eks" ? 1 : 0
  mwaa       = var.platform == "mwaa" ? 1 : 0
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
}
