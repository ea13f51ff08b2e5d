"""SeaweedFS fixture (placeholder until the S3 harness lands)."""
