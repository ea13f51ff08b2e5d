"""The shared deployment's parts: WARCs in S3 (SeaweedFS), the index in PostgreSQL, replay
by pywb reading the WARCs from S3 through attest serve.

Each test makes its own bucket and its own PostgreSQL database and drops the database after.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support.cli import run_attest
from support.replay import replay_venv, warc_timestamp
from support.seaweed import SeaweedServer
from support.serve import AttestServer

from demoweb import FixtureWeb

pytestmark = pytest.mark.e2e

ADMIN_DSN = os.environ.get("ATTEST_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_index() -> Iterator[str]:
    name = f"attest_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_s3_store_postgres_index_and_replay_from_s3(
    fixture_web: FixtureWeb, seaweedfs: SeaweedServer, s3_bucket: str, pg_index: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    replay_venv()
    env = dict(
        os.environ,
        ATTEST_HOME=str(tmp_path / "home"),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_STORE=f"s3://{s3_bucket}/evidence",
        ATTEST_INDEX=pg_index,
        **seaweedfs.env(),
    )
    env.pop("ATTEST_TOKENS", None)
    press = fixture_web.url("ngo", "/press/")
    proc = run_attest(["crawl", press, "--max-pages", "8", "--depth", "1", "--json"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["indexed"] == len(summary["warcs"]) >= 1
    client = seaweedfs.client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    for warc in summary["warcs"]:
        assert f"evidence/{warc['key']}.cdxj" in keys, "no CDXJ beside the WARC in S3"
    assert any(k.startswith("evidence/custody/segments/") for k in keys)

    with psycopg.connect(pg_index) as conn:
        rows = conn.execute(
            "SELECT url, ts, record_type, warc_key FROM captures WHERE record_type = 'response'"
        ).fetchall()
        chain = conn.execute("SELECT action FROM custody_log ORDER BY seq").fetchall()
    assert press in {r[0] for r in rows}
    assert sum(w["records"] for w in summary["warcs"]) > len(rows) > 0
    assert [a for (a,) in chain].count("capture") == len(summary["warcs"])
    assert [a for (a,) in chain].count("index") == len(summary["warcs"])

    found = run_attest(["find", press, "--json"], env)
    assert found.returncode == 0, found.stderr
    entry = json.loads(found.stdout.splitlines()[0])
    with AttestServer(env, workdir=tmp_path) as server:
        answer = server.get(
            f"/web/{entry['timestamp']}id_/{press}", {"Accept-Encoding": "identity"}
        )
        assert answer.status == 200, server.log_tail()
        assert b"releases" in answer.body.lower() or b"press" in answer.body.lower()
        assert answer.headers["Memento-Datetime"]
        hits = json.loads(server.get("/search?q=press").text)["hits"]
        assert hits, "PostgreSQL full-text search found nothing"
    verify = run_attest(["custody", "verify"], env)
    assert verify.returncode == 0, verify.stdout
    rebuilt = run_attest(["index", "--rebuild", "--json"], env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    with psycopg.connect(pg_index) as conn:
        again = conn.execute(
            "SELECT url, ts, record_type, warc_key FROM captures WHERE record_type = 'response'"
        ).fetchall()
    assert sorted(again) == sorted(rows)
    assert warc_timestamp(entry["datetime"]) == entry["timestamp"]
