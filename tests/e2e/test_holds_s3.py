"""``attest hold`` and ``attest audit`` on a real crawl into SeaweedFS (Object Lock bucket).

Two crawls of the NGO press page, a second apart, give two WARCs holding a capture of the same
URL each. No retention is configured (no ``ATTEST_S3_OBJECT_LOCK_DAYS``), so a refused delete
is the legal hold's doing. A capture's hold covers its WARC only; a claim about the URL covers
both. Each hold is in the custody log, and the log still verifies.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from support.cli import run_attest
from support.seaweed import SeaweedServer

from demoweb import FixtureWeb

pytestmark = pytest.mark.e2e

PREFIX = "evidence"


def custody(home: Path, action: str | None = None) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "index.sqlite") as conn:
        rows = conn.execute(
            "SELECT seq, actor, action, object, details FROM custody_log ORDER BY seq"
        ).fetchall()
    entries = [
        {"seq": s, "actor": a, "action": act, "object": o, "details": json.loads(d)}
        for s, a, act, o, d in rows
    ]
    return [e for e in entries if action is None or e["action"] == action]


def legal_hold(client: Any, bucket: str, key: str) -> str:
    try:
        return str(
            client.get_object_legal_hold(Bucket=bucket, Key=key)["LegalHold"].get("Status", "OFF")
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchObjectLegalHold":
            return "OFF"
        raise


def test_hold_captures_and_claims_then_audit(
    fixture_web: FixtureWeb, seaweedfs: SeaweedServer, s3_bucket: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = dict(
        os.environ,
        ATTEST_HOME=str(home),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_STORE=f"s3://{s3_bucket}/{PREFIX}",
        ATTEST_ACTOR="counsel@test",
        **seaweedfs.env(),
    )
    for name in ("ATTEST_INDEX", "ATTEST_TOKENS", "ATTEST_S3_OBJECT_LOCK_DAYS"):
        env.pop(name, None)
    press = fixture_web.url("ngo", "/press/")
    warcs: list[str] = []
    for run in range(2):
        if run:
            time.sleep(1.1)
        proc = run_attest(["crawl", press, "--max-pages", "1", "--depth", "0", "--json"], env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads(proc.stdout)
        assert len(summary["warcs"]) == 1
        warcs.append(summary["warcs"][0]["key"])
    with sqlite3.connect(home / "index.sqlite") as conn:
        captures = conn.execute(
            "SELECT record_id, warc_key FROM captures WHERE url = ? AND record_type = 'response' "
            "ORDER BY ts",
            (press,),
        ).fetchall()
    assert [k for _, k in captures] == warcs
    first_id = captures[0][0]
    first_uuid = first_id.removeprefix("<urn:uuid:").removesuffix(">")
    client = seaweedfs.client()
    objects = [f"{PREFIX}/{k}" for k in warcs]
    uris = [f"s3://{s3_bucket}/{o}" for o in objects]

    # One capture: its WARC is held, verified by reading the hold back, and cannot be deleted.
    held = run_attest(["hold", first_uuid], env)
    assert held.returncode == 0, held.stderr
    assert f"held {uris[0]}" in held.stdout
    assert [legal_hold(client, s3_bucket, o) for o in objects] == ["ON", "OFF"]
    version = client.head_object(Bucket=s3_bucket, Key=objects[0])["VersionId"]
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=s3_bucket, Key=objects[0], VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    (entry,) = custody(home, "hold")
    assert entry["object"] == uris[0]
    assert entry["actor"] == "counsel@test"
    stored = json.loads(run_attest(["find", press, "--json"], env).stdout.splitlines()[0])
    assert entry["details"] == {
        "legal_hold": "ON", "previous": "OFF", "version_id": version, "captures": [first_id],
        "sha256": custody(home, "capture")[0]["details"]["sha256"],
    }  # fmt: skip
    assert stored["recordid"] == first_id

    # Holding again is harmless, and recorded again.
    again = run_attest(["hold", first_id, "--json"], env)
    assert again.returncode == 0, again.stderr
    assert [h["previous"] for h in json.loads(again.stdout)["holds"]] == ["ON"]
    assert len(custody(home, "hold")) == 2

    # A claim about the URL: both captures, so both WARCs.
    case = tmp_path / "press.yaml"
    case.write_text(
        yaml.safe_dump(
            {
                "id": "press-case",
                "title": "The press page",
                "claims": [
                    {"id": "C1", "text": "The NGO said so.", "source": "ngo",
                     "evidence": [{"url": press}]},
                ],
            }
        )
    )  # fmt: skip
    claim = run_attest(["hold", "--case", str(case), "C1", "--note", "order 7/2026"], env)
    assert claim.returncode == 0, claim.stderr
    assert [legal_hold(client, s3_bucket, o) for o in objects] == ["ON", "ON"]
    by_claim = custody(home, "hold")[2:]
    assert [e["object"] for e in by_claim] == sorted(uris)
    for e in by_claim:
        assert e["details"]["case"] == "press-case"
        assert e["details"]["claims"] == ["C1"]
        assert e["details"]["note"] == "order 7/2026"
    version2 = client.head_object(Bucket=s3_bucket, Key=objects[1])["VersionId"]
    with pytest.raises(ClientError):
        client.delete_object(Bucket=s3_bucket, Key=objects[1], VersionId=version2)

    # An unknown capture is named, and nothing changes.
    before = custody(home)
    unknown = str(uuid.uuid4())
    missing = run_attest(["hold", first_uuid, unknown], env)
    assert missing.returncode == 1
    assert f"no capture {unknown} in the index" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert custody(home) == before

    # A bucket without Object Lock is named; nothing is recorded.
    plain = f"plain-{uuid.uuid4().hex}"
    client.create_bucket(Bucket=plain)
    nolock = run_attest(["hold", first_uuid, "--store", f"s3://{plain}/{PREFIX}"], env)
    assert nolock.returncode == 2
    assert f"bucket '{plain}'" in nolock.stderr
    assert "does not have Object Lock enabled" in nolock.stderr
    assert custody(home) == before

    # The chain holds, and the pipeline's own check of the stored WARCs passes and is logged.
    chain = run_attest(["custody", "verify"], env)
    assert chain.returncode == 0, chain.stdout + chain.stderr
    audit = run_attest(["audit"], env)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    verified = custody(home, "verify")
    assert sorted(e["object"] for e in verified) == sorted(uris)
    assert all(e["details"]["ok"] and e["details"]["expected_from"] == "capture" for e in verified)

    # Releasing the capture keeps its WARC held: the claim still holds it. Recorded either way.
    kept = run_attest(["hold", "--release", first_uuid], env)
    assert kept.returncode == 0, kept.stderr
    assert f"kept {uris[0]}" in kept.stdout
    assert "still held for case press-case claim C1: legal hold stays ON" in kept.stdout
    assert legal_hold(client, s3_bucket, objects[0]) == "ON"
    (release,) = custody(home, "release")
    assert release["object"] == uris[0]
    assert (release["details"]["legal_hold"], release["details"]["previous"]) == ("ON", "ON")
    assert release["details"]["kept_for"] == ["case press-case claim C1"]

    # Releasing the claim too lifts both holds: nothing else holds them.
    lifted = run_attest(["hold", "--release", "--case", str(case), "C1"], env)
    assert lifted.returncode == 0, lifted.stderr
    assert f"released {uris[0]}" in lifted.stdout
    assert f"released {uris[1]}" in lifted.stdout
    assert [legal_hold(client, s3_bucket, o) for o in objects] == ["OFF", "OFF"]
    releases = custody(home, "release")[1:]
    assert sorted(e["object"] for e in releases) == sorted(uris)
    assert all(
        (e["details"]["legal_hold"], e["details"]["previous"]) == ("OFF", "ON") for e in releases
    )
    assert all("kept_for" not in e["details"] for e in releases)
    assert run_attest(["custody", "verify"], env).returncode == 0


def test_an_overwritten_warc_is_read_as_stored_never_held_and_named_by_audit(
    fixture_web: FixtureWeb, seaweedfs: SeaweedServer, s3_bucket: str, tmp_path: Path
) -> None:
    """Someone with write access puts a WARC's bytes again under its key, one byte changed
    (same length): a new version. Reads still get the version stored at capture; a hold is
    refused (it would sit on the tampered version); the audit names the key."""
    home = tmp_path / "home"
    env = dict(
        os.environ,
        ATTEST_HOME=str(home),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_STORE=f"s3://{s3_bucket}/{PREFIX}",
        **seaweedfs.env(),
    )
    for name in ("ATTEST_INDEX", "ATTEST_TOKENS", "ATTEST_S3_OBJECT_LOCK_DAYS"):
        env.pop(name, None)
    press = fixture_web.url("ngo", "/press/")
    proc = run_attest(["crawl", press, "--max-pages", "1", "--depth", "0", "--json"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (warc,) = json.loads(proc.stdout)["warcs"]
    key = f"{PREFIX}/{warc['key']}"
    uri = f"s3://{s3_bucket}/{key}"
    (capture,) = custody(home, "capture")
    stored_version = capture["details"]["version_id"]
    client = seaweedfs.client()
    assert client.head_object(Bucket=s3_bucket, Key=key)["VersionId"] == stored_version
    found = json.loads(run_attest(["find", press, "--json"], env).stdout.splitlines()[0])
    page = run_attest(["get", press, "--at", found["timestamp"]], env)
    assert page.returncode == 0, page.stderr

    original = client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    # One byte of the page's own record changed: what an attacker wants replayed.
    at = int(found["offset"]) + int(found["length"]) // 2
    tampered = original[:at] + bytes([original[at] ^ 0x55]) + original[at + 1 :]
    newer = client.put_object(Bucket=s3_bucket, Key=key, Body=tampered)["VersionId"]
    assert newer != stored_version
    before = custody(home)

    again = run_attest(["get", press, "--at", found["timestamp"]], env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == page.stdout  # the version stored at capture, not the new one

    held = run_attest(["hold", found["recordid"]], env)
    assert held.returncode == 1, held.stdout + held.stderr
    assert "not holding" in held.stderr
    assert f"{uri}: its current version {newer}" in held.stderr
    assert f"the version indexed ({stored_version})" in held.stderr
    assert "Traceback" not in held.stderr
    assert custody(home, "hold") == []
    for version in (stored_version, newer):
        assert legal_hold_of(client, s3_bucket, key, version) == "OFF"

    audit = run_attest(["audit", "--json"], env)
    assert audit.returncode == 1, audit.stdout + audit.stderr
    (verdict,) = json.loads(audit.stdout)
    assert verdict["ok"] is False
    assert verdict["version_id"] == stored_version
    assert verdict["current_version"] == newer
    assert verdict["sha256"] == capture["details"]["sha256"]  # the stored version is intact
    assert any(p.startswith("overwritten: ") for p in verdict["problems"])
    (logged,) = [e for e in custody(home, "verify") if e not in before]
    assert logged["details"]["current_version"] == newer
    assert run_attest(["custody", "verify"], env).returncode == 0


def legal_hold_of(client: Any, bucket: str, key: str, version: str) -> str:
    try:
        found = client.get_object_legal_hold(Bucket=bucket, Key=key, VersionId=version)
        return str(found["LegalHold"].get("Status", "OFF"))
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchObjectLegalHold":
            return "OFF"
        raise
