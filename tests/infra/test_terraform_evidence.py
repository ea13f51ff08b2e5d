"""The evidence guarantees of infra/terraform, read from its HCL (see docs/DEPLOY.md).

Object Lock with COMPLIANCE in prod, versioning, SSE-KMS, no public access, TLS only, and
roles that can never delete evidence, bypass retention or reconfigure the bucket.
"""

from __future__ import annotations

import re
from typing import Any

from conftest import ENV_NAMES, TERRAFORM, Config, as_list, one, statements

EVIDENCE_BUCKETS = ("evidence", "replica")
# What no workload role may be granted, and what the bucket policy must deny them.
FORBIDDEN_TO_WORKLOADS = {
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:BypassGovernanceRetention",
    "s3:PutBucketObjectLockConfiguration",
}


def _locals(config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in config.blocks.get("locals", []):
        out.update(block)
    return out


def _allow_actions(document: dict[str, Any]) -> list[str]:
    return [
        action
        for st in statements(document)
        if st.get("effect", "Allow") == "Allow"
        for action in as_list(st.get("actions"))
    ]


def _role_documents(iam: Config) -> dict[str, dict[str, Any]]:
    docs = iam.data("aws_iam_policy_document")
    common = docs["common"]
    return {
        role: {"statement": [*statements(common), *statements(docs[role])]}
        for role in ("crawler", "indexer", "legal_export")
    }


# --- the bucket --------------------------------------------------------------------------------


def test_object_lock_is_enabled_on_the_evidence_buckets(modules: dict[str, Config]) -> None:
    store = modules["evidence_store"]
    buckets = store.resources("aws_s3_bucket")
    for name in EVIDENCE_BUCKETS:
        assert buckets[name]["object_lock_enabled"] is True, name
        assert buckets[name]["force_destroy"] is False, name
        lock = one(one(store.resources("aws_s3_bucket_object_lock_configuration")[name]["rule"]))
        retention = one(lock["default_retention"])
        assert retention["mode"] == "${var.object_lock_mode}"
        assert retention["days"] == "${var.object_lock_days}"


def test_prod_is_compliance_mode_and_dev_governance_by_default(envs: dict[str, Config]) -> None:
    prod = envs["prod"].labelled("module")["evidence_store"]
    assert prod["object_lock_mode"] == "COMPLIANCE"  # a literal: no variable can weaken it
    assert "object_lock_mode" not in envs["prod"].labelled("variable")
    dev = envs["dev"].labelled("module")["evidence_store"]
    assert dev["object_lock_mode"] == "${var.object_lock_mode}"
    assert envs["dev"].labelled("variable")["object_lock_mode"]["default"] == "GOVERNANCE"


def test_retention_days_are_validated(modules: dict[str, Config], envs: dict[str, Config]) -> None:
    days = modules["evidence_store"].labelled("variable")["object_lock_days"]
    assert "default" not in days
    assert "var.object_lock_days >= 1" in one(days["validation"])["condition"]
    prod_days = envs["prod"].labelled("variable")["object_lock_days"]
    assert "var.object_lock_days >= 365" in one(prod_days["validation"])["condition"]
    mode = modules["evidence_store"].labelled("variable")["object_lock_mode"]
    # python-hcl2 7 drops the quotes of strings inside expressions
    assert "[COMPLIANCE, GOVERNANCE]" in one(mode["validation"])["condition"]


def test_attest_retention_setting_matches_the_bucket(modules: dict[str, Config]) -> None:
    """ATTEST_S3_OBJECT_LOCK_DAYS is the bucket's days in COMPLIANCE mode; attest always asks
    COMPLIANCE, so in GOVERNANCE mode (dev) it is empty and the bucket's default applies."""
    out = modules["evidence_store"].labelled("output")["attest_object_lock_days"]["value"]
    assert out == ('${var.object_lock_mode == "COMPLIANCE" ? tostring(var.object_lock_days) : ""}')


def test_versioning_is_enabled_everywhere(all_configs: list[Config]) -> None:
    found = 0
    for config in all_configs:
        for name, res in config.resources("aws_s3_bucket_versioning").items():
            assert one(res["versioning_configuration"])["status"] == "Enabled", (config.path, name)
            found += 1
        for name in config.resources("aws_s3_bucket"):
            assert name in config.resources("aws_s3_bucket_versioning"), (config.path, name)
    assert found >= 4  # evidence, logs, replica, MWAA DAG bucket


def test_every_bucket_is_kms_encrypted_and_not_public(all_configs: list[Config]) -> None:
    for config in all_configs:
        sse = config.resources("aws_s3_bucket_server_side_encryption_configuration")
        pab = config.resources("aws_s3_bucket_public_access_block")
        for name in config.resources("aws_s3_bucket"):
            rule = one(one(sse[name]["rule"])["apply_server_side_encryption_by_default"])
            assert rule["sse_algorithm"] == "aws:kms", (config.path, name)
            assert rule["kms_master_key_id"].startswith("${aws_kms_key."), (config.path, name)
            block = pab[name]
            for setting in (
                "block_public_acls",
                "block_public_policy",
                "ignore_public_acls",
                "restrict_public_buckets",
            ):
                assert block[setting] is True, (config.path, name, setting)


def test_the_evidence_key_is_dedicated_and_rotated(
    modules: dict[str, Config], all_configs: list[Config]
) -> None:
    store = modules["evidence_store"]
    sse = store.resources("aws_s3_bucket_server_side_encryption_configuration")["evidence"]
    rule = one(one(sse["rule"])["apply_server_side_encryption_by_default"])
    assert rule["kms_master_key_id"] == "${aws_kms_key.evidence.arn}"
    for config in all_configs:
        for name, key in config.resources("aws_kms_key").items():
            assert key["enable_key_rotation"] is True, (config.path, name)


def test_every_bucket_policy_denies_insecure_transport(all_configs: list[Config]) -> None:
    for config in all_configs:
        docs = config.data("aws_iam_policy_document")
        for name, policy in config.resources("aws_s3_bucket_policy").items():
            doc_name = re.fullmatch(
                r"\$\{data\.aws_iam_policy_document\.(\w+)(\[0\])?\.json\}", policy["policy"]
            )
            assert doc_name, (config.path, name)
            tls = [
                st
                for st in statements(docs[doc_name.group(1)])
                if st.get("effect") == "Deny"
                and any(
                    c["variable"] == "aws:SecureTransport" and c["values"] == ["false"]
                    for c in as_list(st.get("condition"))
                )
            ]
            assert tls, (config.path, name)
            assert "s3:*" in as_list(tls[0]["actions"])
        for name in config.resources("aws_s3_bucket"):
            assert name in config.resources("aws_s3_bucket_policy"), (config.path, name)


def test_bucket_policy_denies_workloads_deletes_bypass_and_lock_changes(
    modules: dict[str, Config],
) -> None:
    store = modules["evidence_store"]
    denied = set(_locals(store)["denied_to_workloads"])
    assert denied >= FORBIDDEN_TO_WORKLOADS | {"s3:PutBucketVersioning", "s3:PutBucketPolicy"}
    for doc in ("evidence_bucket", "replica_bucket"):
        sts = {st.get("sid"): st for st in statements(store.data("aws_iam_policy_document")[doc])}
        deny = sts["DenyWorkloadDeleteBypassOrReconfigure"]
        assert deny["effect"] == "Deny"
        assert "local.denied_to_workloads" in str(deny["actions"])
        (cond,) = as_list(deny["condition"])
        assert (cond["test"], cond["variable"]) == ("ArnLike", "aws:PrincipalArn")
    sts = {
        st.get("sid"): st
        for st in statements(store.data("aws_iam_policy_document")["evidence_bucket"])
    }
    # Keys are created with If-None-Match only; legal holds are the legal_export role's alone.
    assert {c["variable"] for c in sts["DenyWorkloadOverwrites"]["condition"]} >= {
        "s3:if-none-match"
    }
    assert "ArnNotLike" in {c["test"] for c in sts["DenyLegalHoldsExceptLegalExport"]["condition"]}


def test_archived_warcs_keep_their_retention(modules: dict[str, Config]) -> None:
    """The lifecycle only transitions (never expires) evidence, under the WARC prefix."""
    lifecycle = modules["evidence_store"].resources("aws_s3_bucket_lifecycle_configuration")
    for rule in as_list(lifecycle["evidence"]["rule"]):
        assert "expiration" not in rule, rule
        assert "noncurrent_version_expiration" not in rule, rule
    archive = next(r for r in as_list(lifecycle["evidence"]["rule"]) if r["id"] == "archive-warcs")
    assert one(archive["filter"])["prefix"] == "${var.store_prefix}/warcs/"
    assert one(archive["transition"])["storage_class"] == "${var.archive_storage_class}"


def test_access_logs_go_to_a_separate_bucket(modules: dict[str, Config]) -> None:
    logging = modules["evidence_store"].resources("aws_s3_bucket_logging")["evidence"]
    assert logging["target_bucket"] == "${aws_s3_bucket.logs.id}"


def test_replication_keeps_delete_markers_out(modules: dict[str, Config]) -> None:
    repl = modules["evidence_store"].resources("aws_s3_bucket_replication_configuration")
    rule = one(repl["evidence"]["rule"])
    assert one(rule["delete_marker_replication"])["status"] == "Disabled"


# --- IAM --------------------------------------------------------------------------------------


def test_no_role_has_wildcard_actions(all_configs: list[Config]) -> None:
    for config in all_configs:
        for name, doc in config.data("aws_iam_policy_document").items():
            for action in _allow_actions(doc):
                assert action not in ("*", "s3:*"), (config.path, name, action)
    # and on the evidence bucket no wildcard at all, however partial
    for config in all_configs:
        if config.path.name not in ("iam", "evidence_store"):
            continue
        for name, doc in config.data("aws_iam_policy_document").items():
            for action in _allow_actions(doc):
                if action.startswith("s3:"):
                    assert "*" not in action, (config.path, name, action)


def test_crawler_can_write_with_retention_and_never_delete_or_bypass(
    modules: dict[str, Config],
) -> None:
    docs = _role_documents(modules["iam"])
    crawler = set(_allow_actions(docs["crawler"]))
    assert {"s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:ListBucket"} <= crawler
    for role, doc in docs.items():
        granted = set(_allow_actions(doc))
        assert not granted & FORBIDDEN_TO_WORKLOADS, role
        assert not {a for a in granted if a.startswith("s3:Delete")}, role
        assert not {a for a in granted if a.startswith("s3:PutBucket")}, role
        assert "s3:PutLifecycleConfiguration" not in granted, role


def test_only_legal_export_places_legal_holds(modules: dict[str, Config]) -> None:
    docs = _role_documents(modules["iam"])
    assert "s3:PutObjectLegalHold" in _allow_actions(docs["legal_export"])
    assert "s3:GetBucketObjectLockConfiguration" in _allow_actions(docs["legal_export"])
    for role in ("crawler", "indexer"):
        assert "s3:PutObjectLegalHold" not in _allow_actions(docs[role]), role


def test_indexer_writes_only_derived_objects(modules: dict[str, Config]) -> None:
    """The indexer reads everything and writes CDXJ indexes and custody segments, never WARCs."""
    iam = modules["iam"]
    local = _locals(iam)
    writes = [
        st
        for st in statements(iam.data("aws_iam_policy_document")["indexer"])
        if "s3:PutObject" in as_list(st.get("actions"))
    ]
    assert [st["resources"] for st in writes] == [["${local.cdxj}", "${local.segments}"]]
    assert local["cdxj"].endswith("/warcs/*.warc.gz.cdxj}") or local["cdxj"].endswith(
        "/warcs/*.warc.gz.cdxj"
    )


def test_s3_grants_are_scoped_to_the_store_prefix(modules: dict[str, Config]) -> None:
    iam = modules["iam"]
    assert _locals(iam)["p"] == "${var.bucket_arn}/${var.store_prefix}"
    for st in statements(iam.data("aws_iam_policy_document")["common"]):
        actions = as_list(st.get("actions"))
        if "s3:ListBucket" in actions:
            (cond,) = as_list(st["condition"])
            assert (cond["variable"], cond["values"]) == ("s3:prefix", ["${var.store_prefix}/*"])
        elif any(a.startswith("s3:") for a in actions):
            assert all(r.startswith("${local.p}/") for r in as_list(st["resources"])), st


# --- secrets ----------------------------------------------------------------------------------

SECRETISH = re.compile(r"password|secret|token|private_key|credential|auth", re.IGNORECASE)
NOT_A_SECRET = re.compile(r"(_arns?|_version|_names?|_prefix|_days)$")
SECRET_VALUE = re.compile(
    r"AKIA[0-9A-Z]{16}|-----BEGIN|(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
)


def test_no_secret_in_variable_defaults(all_configs: list[Config]) -> None:
    for config in all_configs:
        for name, var in config.labelled("variable").items():
            default = var.get("default")
            if SECRETISH.search(name) and not NOT_A_SECRET.search(name):
                assert default in (None, ""), (config.path, name)
                assert var.get("sensitive") is True, (config.path, name)
            assert not SECRET_VALUE.search(str(default)), (config.path, name)


def test_no_output_carries_a_secret_value(all_configs: list[Config]) -> None:
    for config in all_configs:
        for name, out in config.labelled("output").items():
            value = str(out.get("value"))
            assert "random_password" not in value, (config.path, name)
            assert "secret_string" not in value, (config.path, name)
            assert not re.search(r"\.password\b|passwords", value), (config.path, name)


def test_generated_passwords_only_reach_secrets_manager_and_their_service(
    all_configs: list[Config],
) -> None:
    """Database passwords are ephemeral and write-only; the broker's goes to its user and secret."""
    for config in all_configs:
        text = "\n".join(p.read_text() for p in config.path.glob("*.tf"))
        for line in text.splitlines():
            if "ephemeral.aws_secretsmanager_random_password" in line:
                assert re.match(r"\s*(secret_string_wo|auth_token_wo)\s*=", line), line
            if "random_password.celery.result" in line:
                assert re.match(r"\s*(passwords|secret_string_wo)\s*=", line), line


def test_the_database_password_is_managed_by_rds(modules: dict[str, Config]) -> None:
    db = modules["database"].resources("aws_db_instance")["this"]
    assert db["manage_master_user_password"] is True
    assert "password" not in db
    assert db["storage_encrypted"] is True
    assert db["publicly_accessible"] is False
    assert db["deletion_protection"] == "${var.deletion_protection}"


def test_the_broker_encrypts_in_transit_and_at_rest(modules: dict[str, Config]) -> None:
    group = modules["broker"].resources("aws_elasticache_replication_group")["this"]
    assert group["transit_encryption_enabled"] is True
    assert group["transit_encryption_mode"] == "required"
    assert group["at_rest_encryption_enabled"] is True
    assert group["user_group_ids"]
    default = modules["broker"].resources("aws_elasticache_user")["default"]
    assert default["access_string"].startswith("off ")


# --- pinning ----------------------------------------------------------------------------------


def test_terraform_and_providers_are_pinned(all_configs: list[Config]) -> None:
    for config in all_configs:
        (block,) = config.blocks["terraform"]
        assert block["required_version"] == ">= 1.11, < 2.0", config.path
        providers = one(block["required_providers"])
        for name, spec in providers.items():
            if name.startswith("__"):  # comments
                continue
            assert re.fullmatch(r">= \d+\.\d+, < \d+\.0", spec["version"]), (config.path, name)


def test_environments_keep_state_in_an_s3_backend() -> None:
    for env in ENV_NAMES:
        text = (TERRAFORM / "envs" / env / "versions.tf").read_text()
        assert 'backend "s3" {}' in text, env
        assert (TERRAFORM / "envs" / env / "backend.hcl.example").is_file()
