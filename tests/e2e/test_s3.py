"""Capturing into a real S3 server (SeaweedFS): checksums, Object Lock, outages, interruptions."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from support.seaweed import SeaweedServer

from archive.warc.read import verify_warc
from demoweb import FixtureWeb
from demoweb.http import FixtureServer
from demoweb.news import NewsSite

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def attest(args: list[str], home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, ATTEST_HOME=str(home), ATTEST_ALLOW_NETWORKS="127.0.0.0/8", ATTEST_RETRIES="0"
    )
    env.pop("ATTEST_STORE", None)
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def crawl_args(web: FixtureWeb, store: str) -> list[str]:
    return [
        "crawl",
        web.url("ngo", "/"),
        "--max-pages",
        "15",
        "--depth",
        "2",
        "--store",
        store,
        "--json",
    ]


def test_warcs_land_in_s3_verified_and_locked(
    fixture_web: FixtureWeb, seaweedfs: SeaweedServer, s3_bucket: str, tmp_path: Path
) -> None:
    store = f"s3://{s3_bucket}/evidence"
    result = attest(
        crawl_args(fixture_web, store), tmp_path / "home", ATTEST_S3_OBJECT_LOCK_DAYS="1"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["warcs"]
    client = seaweedfs.client()
    for warc in summary["warcs"]:
        key = "evidence/" + warc["key"]
        assert warc["uri"] == f"s3://{s3_bucket}/{key}"
        assert key.startswith("evidence/warcs/adhoc/")
        head = client.head_object(Bucket=s3_bucket, Key=key, ChecksumMode="ENABLED")
        assert base64.b64decode(head["ChecksumSHA256"]).hex() == warc["sha256"]
        retention = client.get_object_retention(Bucket=s3_bucket, Key=key)["Retention"]
        assert retention["Mode"] == "COMPLIANCE"
        body = client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == warc["sha256"]
        local = tmp_path / "copy.warc.gz"
        local.write_bytes(body)
        assert verify_warc(local).ok
        # Evidence cannot be deleted, not even by the account that stored it.
        with pytest.raises(ClientError) as denied:
            client.delete_object(Bucket=s3_bucket, Key=key, VersionId=head["VersionId"])
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    run_files = [
        o["Key"]
        for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="evidence/runs/")["Contents"]
    ]
    assert any(k.endswith(f"{summary['run_id']}/ledger.jsonl") for k in run_files)
    assert not list((tmp_path / "home" / "spool").rglob("*.warc.gz*"))


def test_store_outage_keeps_warcs_in_the_spool_until_a_later_run(
    fixture_web: FixtureWeb, seaweedfs: SeaweedServer, s3_bucket: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    store = f"s3://{s3_bucket}/outage"
    seaweedfs.stop()
    try:
        result = attest(crawl_args(fixture_web, store), home)
    finally:
        seaweedfs.start()
    assert result.returncode == 1, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["warcs"] == []
    assert summary["pending"], "the summary says what is waiting"
    waiting = sorted((home / "spool").rglob("*.warc.gz"))
    assert waiting, "the WARCs stay in the spool"
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in waiting}
    recovered = attest(["recover", "--store", store], home)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    client = seaweedfs.client()
    keys = [
        o["Key"]
        for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="outage/warcs/")["Contents"]
        if o["Key"].endswith(".warc.gz")  # each has its CDXJ beside it: it was indexed
    ]
    assert sorted(Path(k).name for k in keys) == sorted(digests)
    assert f"logged (capture) and indexed {len(keys)} WARC(s)" in recovered.stdout
    for key in keys:
        body = client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digests[Path(key).name]
    assert not list((home / "spool").rglob("*.warc.gz*"))


@pytest.mark.parametrize("failpoint", ["ship.before-put@1", "ship.after-put@1"])
def test_killed_during_upload_then_recovered_once(
    failpoint: str,
    fixture_web: FixtureWeb,
    seaweedfs: SeaweedServer,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    store = f"s3://{s3_bucket}/killed"
    env = dict(
        os.environ,
        ATTEST_HOME=str(home),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_FAILPOINT=failpoint,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", *crawl_args(fixture_web, store)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    waiting = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (home / "spool").rglob("*.warc.gz")
    }
    assert waiting
    recovered = attest(["recover", "--store", store], home)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    client = seaweedfs.client()
    listed = client.list_object_versions(Bucket=s3_bucket, Prefix="killed/warcs/")
    versions = [v["Key"] for v in listed.get("Versions", []) if v["Key"].endswith(".warc.gz")]
    assert sorted(Path(k).name for k in versions) == sorted(waiting), (
        "each WARC stored once, never twice"
    )
    assert f"logged (capture) and indexed {len(versions)} WARC(s)" in recovered.stdout
    assert not list((home / "spool").rglob("*.warc.gz*"))


def data_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_store_killed_mid_upload_then_a_later_run_uploads(
    seaweedfs: SeaweedServer, s3_bucket: str, tmp_path: Path
) -> None:
    # Pages with large photos, so the WARC's PUT takes long enough to be cut in the middle.
    site = NewsSite(articles=12, photos=2, photo_kb=2000)
    server = FixtureServer(site).start()
    home = tmp_path / "home"
    store = f"s3://{s3_bucket}/midput"
    env = dict(
        os.environ, ATTEST_HOME=str(home), ATTEST_ALLOW_NETWORKS="127.0.0.0/8", ATTEST_RETRIES="0"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "crawl",
            server.origin + "/",
            "--max-pages",
            "14",
            "--store",
            store,
            "--json",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Kill the server once the WARC's bytes have started arriving in its volume files.
        baseline = data_size(seaweedfs.data_dir)
        deadline = time.monotonic() + 120
        while data_size(seaweedfs.data_dir) < baseline + 4_000_000 and time.monotonic() < deadline:
            time.sleep(0.002)
        seaweedfs.kill()
        out, err = proc.communicate(timeout=180)
    finally:
        seaweedfs.start()
        server.stop()
    assert proc.returncode == 1, err[-3000:]
    summary = json.loads(out)
    (pending,) = summary["pending"]
    assert "put " in pending["reason"], "the server died during the upload itself"
    waiting = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in home.glob("spool/*/*.warc.gz")
    }
    assert waiting
    assert sum(p.stat().st_size for p in home.glob("spool/*/*.warc.gz")) > 20_000_000
    recovered = attest(["recover", "--store", store], home)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    client = seaweedfs.client()
    listed = client.list_object_versions(Bucket=s3_bucket, Prefix="midput/warcs/")
    warcs = [v for v in listed.get("Versions", []) if v["Key"].endswith(".warc.gz")]
    names = [Path(v["Key"]).name for v in warcs]
    assert sorted(names) == sorted(waiting), "each WARC stored once, whole"
    for version in warcs:
        body = client.get_object(Bucket=s3_bucket, Key=version["Key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == waiting[Path(version["Key"]).name]
