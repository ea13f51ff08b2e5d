terraform {
  required_version = ">= 1.11, < 2.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = ">= 3.0, < 4.0"
    }
  }

  # State lives in an S3 bucket of its own (versioned, SSE-KMS, locked down), given at init:
  #   terraform init -backend-config=backend.hcl      (see backend.hcl.example)
  # The state holds one secret, the broker's celery password (docs/DEPLOY.md): keep it private.
  backend "s3" {}
}
