"""The custody log sealed into a real S3 store (SeaweedFS): a sealed segment put again under its
key (a second version, as anyone with write access can make in a versioned bucket) is named by
verification, and the first version is what the log is checked against and restored from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.seaweed import SeaweedServer

from archive.custody.log import CustodyLog
from archive.index.db import IndexDB
from archive.store.s3 import S3Store

pytestmark = pytest.mark.e2e

PREFIX = "evidence"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[IndexDB]:
    database = IndexDB(str(tmp_path / "index.sqlite"))
    yield database
    database.close()


def test_a_sealed_segment_written_again_is_named_and_its_first_version_is_the_log(
    s3_bucket: str, seaweedfs: SeaweedServer, db: IndexDB, tmp_path: Path
) -> None:
    store = S3Store.from_uri(f"s3://{s3_bucket}/{PREFIX}")
    log = CustodyLog(db, store)
    for i in range(4):
        log.append("read", f"urn:test:{i}", {"n": i}, actor="investigator")
    key = log.seal()
    assert key is not None
    assert log.check().ok
    client = seaweedfs.client()
    try:
        original = client.get_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}")["Body"].read()
        forged = original.replace(b'"investigator"', b'"mallory"')
        client.put_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}", Body=forged)
    finally:
        client.close()

    verdict = log.check()
    assert not verdict.ok
    assert any(
        p.startswith(f"{key}: the store holds 2 versions of this sealed segment")
        for p in verdict.problems
    )
    # The entries are checked against the first version: they match the database.
    assert not [p for p in verdict.problems if "differs" in p]

    with IndexDB(str(tmp_path / "new.sqlite")) as fresh:
        restored = CustodyLog(fresh, store)
        assert [e.actor for e in restored.entries()] == ["investigator"] * 4
