provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project     = "attest"
      environment = var.environment
      managed-by  = "terraform"
    }
  }
}

# The second region of the evidence replica (used when replication_enabled).
provider "aws" {
  alias  = "replica"
  region = var.replica_region

  default_tags {
    tags = {
      project     = "attest"
      environment = var.environment
      managed-by  = "terraform"
    }
  }
}

# Used only when airflow_platform = "eks". The cluster's endpoint is private: run Terraform from
# inside the VPC (a bastion, VPN or CI runner there), see docs/DEPLOY.md.
provider "helm" {
  kubernetes = {
    host                   = module.airflow.eks_cluster_endpoint
    cluster_ca_certificate = try(base64decode(module.airflow.eks_cluster_ca), null)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--region", var.region, "--cluster-name", coalesce(module.airflow.eks_cluster_name, "none")]
    }
  }
}
