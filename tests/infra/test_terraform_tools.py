"""infra/terraform passes ``terraform fmt -check`` and checkov's policy scan, offline.

Both tools must be present: a missing one fails the test (it is never skipped). Terraform is
the machine's (``/usr/local/bin/terraform``, 1.11); checkov lives in ``.venv-checkov``
(``setup.sh``), apart from the main venv whose Airflow pins clash with its own. checkov runs
with no API key, no download and no update check, so it needs no network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from conftest import ROOT, TERRAFORM

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_PYTHON = ROOT / ".venv-checkov" / "bin" / "python"
# Offline: no API key, no download of policies or guidelines (and no update check, see _tool_env).
CHECKOV_ARGS = ("--framework", "terraform", "--skip-download", "--output", "json")
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z0-9]+_\d+)(?::(.*))?")
# Checks that are never waived: public access, object lock, versioning and TLS-only access by
# id; encryption by checkov's own category (any check in ENCRYPTION).
NEVER_WAIVED = {
    "CKV_AWS_19", "CKV_AWS_145",  # S3 encryption at rest
    "CKV_AWS_20", "CKV_AWS_57", "CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56",
    "CKV2_AWS_6",  # S3 public access
    "CKV_AWS_143",  # S3 object lock
    "CKV_AWS_21",  # S3 versioning
    "CKV_AWS_31", "CKV_AWS_30",  # ElastiCache transit encryption (+ auth)
}  # fmt: skip


def _tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "PRISMA_"))}
    env["CKV_SKIP_PACKAGE_UPDATE_CHECK"] = "true"
    env["TF_CLI_CONFIG_FILE"] = os.devnull
    env["CHECKPOINT_DISABLE"] = "1"
    return env


def _terraform() -> str:
    found = shutil.which("terraform") or (
        "/usr/local/bin/terraform" if Path("/usr/local/bin/terraform").exists() else None
    )
    assert found, "terraform (>= 1.11) is not installed: it is needed for `terraform fmt`"
    return found


def run_checkov() -> dict[str, Any]:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run ./setup.sh"
    done = subprocess.run(
        [str(CHECKOV), "--directory", str(TERRAFORM), *CHECKOV_ARGS],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=_tool_env(),
        cwd=ROOT,
    )
    assert done.stdout.strip(), f"checkov printed nothing (rc={done.returncode}): {done.stderr}"
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    (terraform,) = [r for r in reports if r.get("check_type") == "terraform"]
    assert isinstance(terraform, dict)
    return terraform


def test_terraform_fmt_check_passes() -> None:
    done = subprocess.run(
        [_terraform(), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_tool_env(),
    )
    assert done.returncode == 0, f"terraform fmt would change:\n{done.stdout}{done.stderr}"


def test_checkov_passes_with_no_failures() -> None:
    report = run_checkov()
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert not skipped & NEVER_WAIVED, skipped & NEVER_WAIVED
    encryption = _encryption_checks(skipped)
    assert not encryption, f"encryption checks are never waived: {encryption}"


def _encryption_checks(check_ids: set[str]) -> set[str]:
    """Which of these checks checkov files under the ENCRYPTION category."""
    script = (
        "import json, sys\n"
        "from checkov.terraform.checks.resource.registry import resource_registry as r\n"
        "from checkov.terraform.checks.data.registry import data_registry as d\n"
        "ids = set(json.loads(sys.argv[1]))\n"
        "found = set()\n"
        "for registry in (r, d):\n"
        "    for checks in registry.checks.values():\n"
        "        for check in checks:\n"
        "            if check.id in ids and any(c.name == 'ENCRYPTION' for c in check.categories):\n"
        "                found.add(check.id)\n"
        "print(json.dumps(sorted(found)))\n"
    )
    done = subprocess.run(
        [str(CHECKOV_PYTHON), "-c", script, json.dumps(sorted(check_ids))],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=_tool_env(),
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_every_waiver_is_inline_and_justified() -> None:
    waivers = 0
    for tf in sorted(TERRAFORM.rglob("*.tf")):
        for number, line in enumerate(tf.read_text().splitlines(), 1):
            if "checkov:skip" not in line:
                continue
            match = SKIP_COMMENT.search(line)
            assert match, f"{tf}:{number}: malformed waiver"
            check_id, reason = match.group(1), (match.group(2) or "").strip()
            assert len(reason) >= 30, f"{tf}:{number}: {check_id} is waived without a reason"
            assert check_id not in NEVER_WAIVED, f"{tf}:{number}: {check_id} is never waived"
            waivers += 1
    assert waivers > 0
    assert not (TERRAFORM / ".checkov.yaml").exists()  # no waiver outside the code
