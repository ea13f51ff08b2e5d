terraform {
  required_version = ">= 1.11, < 2.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
      # aws.replica: the second region the evidence is replicated to (used when
      # replication_enabled); the environments always pass one.
      configuration_aliases = [aws.replica]
    }
  }
}
