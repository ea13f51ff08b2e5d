"""The S3 store (archive/store/s3.py) against a real SeaweedFS: verified, immutable, locked.

Every test gets a new Object Lock bucket (``s3_bucket``), so versioning is on and each test can
count the versions it made: "nothing was overwritten" means "still exactly one version".
"""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from support.seaweed import SeaweedServer

from archive.errors import (
    ConfigError,
    ObjectExists,
    StorageError,
    StoreUnavailable,
)
from archive.store import StoredObject, file_sha256, open_store
from archive.store.s3 import S3Store

pytestmark = pytest.mark.e2e

PREFIX = "warcs"
INVALID_KEYS = ["../x", "/abs", "a//b", "", "a/./b", "a/"]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def versions(seaweedfs: SeaweedServer, bucket: str, key: str) -> list[str]:
    """Version ids of exactly ``key`` (delete markers included), newest first."""
    client = seaweedfs.client()
    try:
        listing = client.list_object_versions(Bucket=bucket, Prefix=key)
    finally:
        client.close()
    found = [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
    return [v["VersionId"] for v in found if v["Key"] == key]


def read(seaweedfs: SeaweedServer, bucket: str, key: str) -> bytes:
    client = seaweedfs.client()
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    finally:
        client.close()


@pytest.fixture
def store(s3_bucket: str) -> S3Store:
    return S3Store.from_uri(f"s3://{s3_bucket}/{PREFIX}")


@pytest.fixture
def warc(tmp_path: Path) -> Path:
    return write(tmp_path / "spool" / "a.warc.gz", b"WARC/1.1\r\n" + bytes(range(256)) * 512)


def test_put_file_stores_and_the_server_checksum_matches(
    store: S3Store, warc: Path, seaweedfs: SeaweedServer, s3_bucket: str
) -> None:
    sha = file_sha256(warc)
    assert sha == hashlib.sha256(warc.read_bytes()).hexdigest()

    stored = store.put_file("2026/11/a.warc.gz", warc, sha)

    full_key = f"{PREFIX}/2026/11/a.warc.gz"
    assert versions(seaweedfs, s3_bucket, full_key) == [stored.version_id]
    assert stored == StoredObject(
        "2026/11/a.warc.gz",
        warc.stat().st_size,
        sha,
        f"s3://{s3_bucket}/{full_key}",
        stored.version_id,
    )
    client = seaweedfs.client()
    try:
        head = client.head_object(Bucket=s3_bucket, Key=full_key, ChecksumMode="ENABLED")
    finally:
        client.close()
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == sha
    assert head["ContentLength"] == warc.stat().st_size
    assert head["ContentType"] == "application/warc"
    assert read(seaweedfs, s3_bucket, full_key) == warc.read_bytes()
    assert store.stat("2026/11/a.warc.gz") == stored
    assert store.stat("2026/11/missing.warc.gz") is None


def test_putting_the_same_bytes_again_is_a_no_op(
    store: S3Store, warc: Path, seaweedfs: SeaweedServer, s3_bucket: str
) -> None:
    first = store.put_file("a.warc.gz", warc, file_sha256(warc))
    made = versions(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz")

    again = store.put_file("a.warc.gz", warc, file_sha256(warc))

    assert again == first
    assert len(made) == 1
    assert versions(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz") == made


def test_different_bytes_under_an_existing_key_are_refused(
    store: S3Store, warc: Path, tmp_path: Path, seaweedfs: SeaweedServer, s3_bucket: str
) -> None:
    original = store.put_file("a.warc.gz", warc, file_sha256(warc))
    made = versions(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz")
    other = write(tmp_path / "other.warc.gz", b"other bytes")

    with pytest.raises(ObjectExists, match=rf"s3://{s3_bucket}/{PREFIX}/a\.warc\.gz"):
        store.put_file("a.warc.gz", other, file_sha256(other))

    assert store.stat("a.warc.gz") == original
    assert versions(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz") == made
    assert read(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz") == warc.read_bytes()


class RacingStore(S3Store):
    """Sees every key as absent on its first look, as if another writer won the race."""

    looked = False

    def stat(self, key: str, *, version: str | None = None) -> StoredObject | None:
        if not self.looked:
            self.looked = True
            return None
        return super().stat(key, version=version)


def test_conditional_put_refuses_to_overwrite_an_object_created_meanwhile(
    s3_bucket: str, warc: Path, tmp_path: Path, seaweedfs: SeaweedServer
) -> None:
    uri = f"s3://{s3_bucket}/{PREFIX}"
    original = S3Store.from_uri(uri).put_file("a.warc.gz", warc, file_sha256(warc))
    made = versions(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz")
    other = write(tmp_path / "other.warc.gz", b"other bytes")

    # The HEAD misses the object, so only If-None-Match: * stands between us and an overwrite.
    with pytest.raises(ObjectExists):
        RacingStore.from_uri(uri).put_file("a.warc.gz", other, file_sha256(other))
    # The same bytes, raced: the server refuses the PUT and the store sees they match.
    assert RacingStore.from_uri(uri).put_file("a.warc.gz", warc, file_sha256(warc)) == original

    assert versions(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz") == made
    assert read(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz") == warc.read_bytes()


def test_a_wrong_sha256_is_refused_by_the_server_and_leaves_nothing(
    store: S3Store, warc: Path, seaweedfs: SeaweedServer, s3_bucket: str
) -> None:
    wrong = hashlib.sha256(b"not these bytes").hexdigest()

    with pytest.raises(StorageError, match="BadDigest"):
        store.put_file("a.warc.gz", warc, wrong)

    assert store.stat("a.warc.gz") is None
    assert versions(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz") == []


def test_keys_lists_the_keys_under_the_store_prefix(
    store: S3Store, tmp_path: Path, seaweedfs: SeaweedServer, s3_bucket: str
) -> None:
    for key in ("b/2.warc.gz", "a/1.warc.gz", "a/2.warc.gz"):
        src = write(tmp_path / "src" / key, key.encode())
        store.put_file(key, src, file_sha256(src))
    client = seaweedfs.client()
    try:
        client.put_object(Bucket=s3_bucket, Key="elsewhere/x.warc.gz", Body=b"x")
    finally:
        client.close()

    assert list(store.keys()) == ["a/1.warc.gz", "a/2.warc.gz", "b/2.warc.gz"]
    assert list(store.keys("a/")) == ["a/1.warc.gz", "a/2.warc.gz"]
    assert list(store.keys("c/")) == []


def test_open_returns_the_stored_bytes(store: S3Store, warc: Path) -> None:
    store.put_file("a.warc.gz", warc, file_sha256(warc))

    with store.open("a.warc.gz") as body:
        assert body.read() == warc.read_bytes()


def overwrite(seaweedfs: SeaweedServer, bucket: str, key: str, data: bytes) -> str:
    """Put ``data`` under ``key`` as anyone with write access could: a new version."""
    client = seaweedfs.client()
    try:
        return str(client.put_object(Bucket=bucket, Key=key, Body=data)["VersionId"])
    finally:
        client.close()


def test_reads_by_version_get_the_stored_bytes_after_the_key_is_overwritten(
    store: S3Store, warc: Path, seaweedfs: SeaweedServer, s3_bucket: str
) -> None:
    stored = store.put_file("a.warc.gz", warc, file_sha256(warc))
    original = warc.read_bytes()
    tampered = original[:100] + bytes([original[100] ^ 1]) + original[101:]
    newer = overwrite(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz", tampered)
    assert newer != stored.version_id

    current = store.stat("a.warc.gz")
    assert current is not None
    assert current.version_id == newer
    assert store.stat("a.warc.gz", version=stored.version_id) == stored
    with store.open("a.warc.gz", version=stored.version_id) as body:
        assert body.read() == original
    with store.open("a.warc.gz") as body:
        assert body.read() == tampered
    assert store.read_range("a.warc.gz", 90, 20, version=stored.version_id) == original[90:110]
    with store.open_range("a.warc.gz", 90, 20, version=stored.version_id) as part:
        assert part.read(2) == original[90:92]
        part.seek(0)
        assert part.read() == original[90:110]
    with store.open_range("a.warc.gz", 90, 20) as part:
        assert part.read() == tampered[90:110]
    with (
        pytest.raises(StorageError, match="ends 10 bytes before"),
        store.open_range("a.warc.gz", len(original) - 10, 20, version=stored.version_id) as part,
    ):
        part.read()


def test_open_of_a_missing_key_is_a_storage_error(store: S3Store) -> None:
    with pytest.raises(StorageError, match="NoSuchKey"):
        store.open("missing.warc.gz")


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused(
    store: S3Store, warc: Path, key: str, seaweedfs: SeaweedServer, s3_bucket: str
) -> None:
    with pytest.raises(ConfigError, match="invalid object key"):
        store.put_file(key, warc, file_sha256(warc))
    with pytest.raises(ConfigError, match="invalid object key"):
        store.open(key)
    with pytest.raises(ConfigError, match="invalid object key"):
        store.stat(key)
    client = seaweedfs.client()
    try:
        assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    finally:
        client.close()


def test_open_store_picks_the_s3_store_for_s3_uris(
    s3_bucket: str, warc: Path, seaweedfs: SeaweedServer
) -> None:
    store = open_store(f"s3://{s3_bucket}/evidence/run-1/")
    assert isinstance(store, S3Store)
    assert store.uri == f"s3://{s3_bucket}/evidence/run-1"
    assert store.endpoint == seaweedfs.endpoint

    store.put_file("a.warc.gz", warc, file_sha256(warc))

    assert read(seaweedfs, s3_bucket, "evidence/run-1/a.warc.gz") == warc.read_bytes()
    assert store.object_uri("a.warc.gz") == f"s3://{s3_bucket}/evidence/run-1/a.warc.gz"


@pytest.mark.parametrize(
    "uri",
    [
        "s3:///no-bucket",
        "s3://Upper_Case/x",
        "s3://ab/x",  # too short for a bucket name
        "s3://user@bucket/x",
        "s3://bucket/../x",
        "s3://bucket/a//b",
        "s3://bucket/x?versionId=1",
    ],
)
def test_open_store_rejects_bad_s3_uris_naming_them(uri: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(uri)
    assert repr(uri) in str(info.value)


@pytest.mark.parametrize("days", ["0", "-1", "one"])
def test_a_bad_object_lock_setting_is_a_config_error(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch, days: str
) -> None:
    monkeypatch.setenv("ATTEST_S3_OBJECT_LOCK_DAYS", days)
    with pytest.raises(ConfigError, match="ATTEST_S3_OBJECT_LOCK_DAYS"):
        open_store(f"s3://{s3_bucket}/{PREFIX}")


def test_a_locked_warc_cannot_be_deleted(
    s3_bucket: str,
    warc: Path,
    seaweedfs: SeaweedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ATTEST_S3_OBJECT_LOCK_DAYS", "1")
    store = S3Store.from_uri(f"s3://{s3_bucket}/{PREFIX}")
    assert store.object_lock_days == 1
    before = datetime.now(UTC)

    store.put_file("a.warc.gz", warc, file_sha256(warc))

    full_key = f"{PREFIX}/a.warc.gz"
    [version] = versions(seaweedfs, s3_bucket, full_key)
    client = seaweedfs.client()
    try:
        retention = client.get_object_retention(Bucket=s3_bucket, Key=full_key)["Retention"]
        assert retention.get("Mode") == "COMPLIANCE"
        until = retention.get("RetainUntilDate")
        assert until is not None
        assert before + timedelta(hours=23) < until < before + timedelta(hours=25)
        for bypass in (False, True):
            with pytest.raises(ClientError) as info:
                client.delete_object(
                    Bucket=s3_bucket,
                    Key=full_key,
                    VersionId=version,
                    BypassGovernanceRetention=bypass,
                )
            assert info.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        client.close()
    assert versions(seaweedfs, s3_bucket, full_key) == [version]
    assert read(seaweedfs, s3_bucket, full_key) == warc.read_bytes()


def test_without_object_lock_days_no_retention_is_set(
    store: S3Store, warc: Path, seaweedfs: SeaweedServer, s3_bucket: str
) -> None:
    assert store.object_lock_days is None
    store.put_file("a.warc.gz", warc, file_sha256(warc))

    client = seaweedfs.client()
    try:
        head = client.head_object(Bucket=s3_bucket, Key=f"{PREFIX}/a.warc.gz")
    finally:
        client.close()
    assert "ObjectLockMode" not in head
    assert "ObjectLockRetainUntilDate" not in head


def test_a_wrong_secret_key_is_a_storage_error(
    s3_bucket: str, warc: Path, monkeypatch: pytest.MonkeyPatch, seaweedfs: SeaweedServer
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = S3Store.from_uri(f"s3://{s3_bucket}/{PREFIX}")

    with pytest.raises(StorageError) as info:
        store.put_file("a.warc.gz", warc, file_sha256(warc))
    assert isinstance(info.value.__cause__, ClientError)  # wrapped, not raised raw
    with pytest.raises(StorageError):
        list(store.keys())
    with pytest.raises(StorageError):
        store.open("a.warc.gz")

    assert versions(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz") == []


def test_a_stopped_server_is_store_unavailable_and_the_put_succeeds_after_restart(
    store: S3Store, warc: Path, tmp_path: Path, seaweedfs: SeaweedServer, s3_bucket: str
) -> None:
    kept = write(tmp_path / "kept.warc.gz", b"stored before the outage")
    store.put_file("kept.warc.gz", kept, file_sha256(kept))

    seaweedfs.stop()
    try:
        started = time.monotonic()
        with pytest.raises(StorageError) as info:
            store.put_file("a.warc.gz", warc, file_sha256(warc))
        assert time.monotonic() - started < 40
        assert isinstance(info.value, StoreUnavailable)
        assert isinstance(info.value.__cause__, BotoCoreError)
        with pytest.raises(StoreUnavailable):
            list(store.keys())
    finally:
        seaweedfs.start()

    stored = store.put_file("a.warc.gz", warc, file_sha256(warc))

    assert stored.sha256 == file_sha256(warc)
    assert read(seaweedfs, s3_bucket, f"{PREFIX}/a.warc.gz") == warc.read_bytes()
    assert read(seaweedfs, s3_bucket, f"{PREFIX}/kept.warc.gz") == kept.read_bytes()
    assert list(store.keys()) == ["a.warc.gz", "kept.warc.gz"]
