# attest's own secrets, in Secrets Manager under <name>/attest/...: the service tokens file
# (ATTEST_TOKENS), the evidence-signing key (ATTEST_SIGNING_KEY) and the timestamp authorities'
# credentials. Terraform creates the secrets (names, key, policy) but never their values: those
# are put with `aws secretsmanager put-secret-value` (docs/DEPLOY.md), so no value is ever in a
# variable, the plan or the state. The key also encrypts the database and broker modules'
# generated secrets and the Airflow configuration secrets.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  attest_secrets = {
    api_tokens = {
      name        = "${var.name}/attest/api-tokens"
      description = "ATTEST_TOKENS: JSON list of {actor, role, sha256} service tokens for attest serve"
    }
    signing_key = {
      name        = "${var.name}/attest/signing-key"
      description = "ATTEST_SIGNING_KEY: the organisation's ECDSA private key (PEM) that signs evidence bundles"
    }
    tsa_credentials = {
      name        = "${var.name}/attest/tsa-credentials"
      description = "Credentials of the RFC 3161 timestamp authorities (ATTEST_TSA_URLS), when they need any"
    }
  }
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is this key (a key policy cannot name another); the account statement delegates to IAM, where role policies scope use to this key ARN and kms:ViaService.
  statement {
    sid       = "AccountIAMDelegation"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "secrets" {
  description             = "attest ${var.name} Secrets Manager secrets"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/${var.name}-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}

resource "aws_secretsmanager_secret" "attest" {
  #checkov:skip=CKV2_AWS_57:Values are issued by people, not generated: the signing key and API tokens are rotated by the runbook in docs/DEPLOY.md (a new key must be published to verifiers), which a rotation Lambda cannot do.
  for_each = local.attest_secrets

  name                    = each.value.name
  description             = each.value.description
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = var.recovery_window_in_days
}
