"""Legal holds in the S3 store (archive/store/s3.py) against a real SeaweedFS.

A hold is set on the object's current version and read back; a held version cannot be deleted.
A bucket without Object Lock is refused before anything is asked of the object, even a
versioned one, where SeaweedFS would accept and report a hold that it does not enforce.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from support.seaweed import SeaweedServer

from archive.errors import HoldUnsupported, NotFound
from archive.store import file_sha256
from archive.store.s3 import S3Store

pytestmark = pytest.mark.e2e

KEY = "warcs/src/2026/11/28/a.warc.gz"


def put(store: S3Store, tmp_path: Path) -> None:
    path = tmp_path / "a.warc.gz"
    path.write_bytes(b"WARC/1.1\r\n" + bytes(range(256)) * 64)
    store.put_file(KEY, path, file_sha256(path))


def test_a_legal_hold_is_set_on_the_current_version_and_read_back(
    s3_bucket: str, seaweedfs: SeaweedServer, tmp_path: Path
) -> None:
    store = S3Store.from_uri(f"s3://{s3_bucket}/evidence")
    put(store, tmp_path)
    client = seaweedfs.client()
    head = client.head_object(Bucket=s3_bucket, Key=f"evidence/{KEY}")

    hold = store.set_legal_hold(KEY)

    assert (hold.key, hold.uri) == (KEY, f"s3://{s3_bucket}/evidence/{KEY}")
    assert (hold.version_id, hold.status, hold.previous) == (head["VersionId"], "ON", "OFF")
    where = {"Bucket": s3_bucket, "Key": f"evidence/{KEY}", "VersionId": head["VersionId"]}
    assert client.get_object_legal_hold(**where)["LegalHold"]["Status"] == "ON"
    with pytest.raises(ClientError) as refused:
        client.delete_object(**where)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    again = store.set_legal_hold(KEY)
    assert (again.status, again.previous) == ("ON", "ON")

    lifted = store.set_legal_hold(KEY, on=False)
    assert (lifted.status, lifted.previous) == ("OFF", "ON")
    assert client.get_object_legal_hold(**where)["LegalHold"]["Status"] == "OFF"


def test_a_missing_object_is_named(s3_bucket: str) -> None:
    store = S3Store.from_uri(f"s3://{s3_bucket}/evidence")
    with pytest.raises(NotFound, match=rf"s3://{s3_bucket}/evidence/{KEY}: no such object"):
        store.set_legal_hold(KEY)


@pytest.mark.parametrize("versioned", [False, True])
def test_a_bucket_without_object_lock_is_refused_naming_it(
    versioned: bool, s3_bucket: str, seaweedfs: SeaweedServer, tmp_path: Path
) -> None:
    bucket = f"nolock-{uuid.uuid4().hex}"
    client = seaweedfs.client()
    client.create_bucket(Bucket=bucket)
    if versioned:
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = S3Store.from_uri(f"s3://{bucket}/evidence")
    put(store, tmp_path)

    with pytest.raises(HoldUnsupported) as caught:
        store.set_legal_hold(KEY)

    assert f"bucket {bucket!r}" in str(caught.value)
    assert "does not have Object Lock enabled" in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)
    assert "ObjectLockLegalHoldStatus" not in client.head_object(
        Bucket=bucket, Key=f"evidence/{KEY}"
    ), "nothing was asked of the object"
