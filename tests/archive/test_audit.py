"""In-system verification (archive/custody/audit.py, ``attest audit``) on a file store.

The archive is stored and logged as a crawl leaves it (tests/support/storedarchive.py); the
tests then damage stored objects the way storage fails (a flipped bit, a record rewritten with
valid gzip, a lost object) and check that each failure is found, named and recorded in the
custody log as a ``verify`` entry, while the chain still verifies.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import run_attest
from support.indexwarcs import sample_warc
from support.storedarchive import LATER_KEY, SAMPLE_KEY, StoredArchive, stored_archive

from archive.custody.audit import audit_warcs, indexed_warc_keys
from archive.custody.log import CustodyLog, Entry
from archive.index.db import IndexDB
from archive.ingest.indexer import index_warc
from archive.store import FileStore, file_sha256


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[StoredArchive]:
    stored = stored_archive(tmp_path)
    yield stored
    stored.db.close()


def verify_entries(custody: CustodyLog) -> list[Entry]:
    return [e for e in custody.entries() if e.action == "verify"]


def writable(path: Path) -> Path:
    os.chmod(path, 0o644)  # the file store keeps objects read-only
    return path


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(writable(path).read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def env_for(archive: StoredArchive) -> dict[str, str]:
    env = dict(os.environ, ATTEST_HOME=str(archive.home), ATTEST_ACTOR="auditor@test")
    for name in ("ATTEST_STORE", "ATTEST_INDEX"):
        env.pop(name, None)
    return env


def test_intact_warcs_verify_and_each_gets_a_verify_entry(archive: StoredArchive) -> None:
    results = audit_warcs(
        archive.store, archive.db, archive.custody, actor="auditor", context={"via": "test"}
    )

    assert [r.key for r in results] == [SAMPLE_KEY, LATER_KEY] == indexed_warc_keys(archive.db)
    for result in results:
        assert result.ok, result.problems
        assert result.sha256 == result.expected_sha256 == file_sha256(archive.path(result.key))
        assert result.expected_from == "capture"
        assert result.size == result.expected_size == archive.path(result.key).stat().st_size
    assert results[0].records == len(archive.sample.records)
    entries = verify_entries(archive.custody)
    assert [e.object for e in entries] == [archive.store.object_uri(k) for k in archive.keys]
    for entry, result in zip(entries, results, strict=True):
        assert entry.actor == "auditor"
        assert entry.details["ok"] is True
        assert entry.details["via"] == "test"
        assert entry.details["sha256"] == result.sha256
        assert entry.details["expected_from"] == "capture"
        assert "problems" not in entry.details
    assert archive.custody.verify() == []
    sealed = archive.custody.last_sealed()
    assert sealed == entries[-1].seq, "the audit seals its entries into the store"


def test_a_flipped_byte_in_a_stored_warc_is_found_and_recorded(archive: StoredArchive) -> None:
    post = archive.db.by_record_id(archive.sample.post.response.record_id)
    assert post is not None
    flip_byte(archive.path(SAMPLE_KEY), post.offset + post.length // 2)

    bad, good = audit_warcs(archive.store, archive.db, archive.custody)

    # A flipped bit inside a gzip member: the object's SHA-256 is no longer the one recorded
    # at capture, and the member fails gzip's own CRC check, so reading stops there (what
    # follows cannot be located reliably); the other WARC is unaffected.
    assert not bad.ok
    assert bad.sha256 != bad.expected_sha256
    assert bad.problems[0].startswith(f"sha256: the stored object's is {bad.sha256}")
    assert f"recorded at capture {bad.expected_sha256}" in bad.problems[0]
    assert any(
        p.startswith(f"format at offset {post.offset}: gzip data is corrupt") for p in bad.problems
    ), bad.problems
    assert bad.records < len(archive.sample.records)
    assert good.ok
    bad_entry, good_entry = verify_entries(archive.custody)
    assert bad_entry.object == archive.store.object_uri(SAMPLE_KEY)
    assert bad_entry.details["ok"] is False
    assert bad_entry.details["problems"] == bad.problems
    assert bad_entry.details["problem_count"] == len(bad.problems)
    assert good_entry.details["ok"] is True
    assert archive.custody.verify() == [], "a failed check is recorded; the chain still holds"


def test_a_record_rewritten_with_valid_gzip_fails_its_digests(archive: StoredArchive) -> None:
    post = archive.db.by_record_id(archive.sample.post.response.record_id)
    assert post is not None
    path = writable(archive.path(SAMPLE_KEY))
    data = path.read_bytes()
    member = gzip.decompress(data[post.offset : post.offset + post.length])
    assert b"Loading..." in member
    forged = gzip.compress(member.replace(b"Loading...", b"Deleted..."), mtime=0)
    path.write_bytes(data[: post.offset] + forged + data[post.offset + post.length :])

    (bad,) = audit_warcs(archive.store, archive.db, archive.custody, [SAMPLE_KEY])

    rid = archive.sample.post.response.record_id
    assert f"block-digest at offset {post.offset} record {rid}" in " ".join(bad.problems)
    assert f"payload-digest at offset {post.offset} record {rid}" in " ".join(bad.problems)
    assert bad.problems[0].startswith("sha256:")
    assert bad.records == len(archive.sample.records), "intact gzip: every record is read"
    (entry,) = verify_entries(archive.custody)
    assert entry.details["ok"] is False


def test_a_missing_object_is_a_recorded_failure(archive: StoredArchive) -> None:
    writable(archive.path(LATER_KEY)).unlink()

    results = audit_warcs(archive.store, archive.db, archive.custody)

    assert [r.ok for r in results] == [True, False]
    assert results[1].problems == [
        f"missing: the store has no object {archive.store.object_uri(LATER_KEY)}"
    ]
    assert results[1].sha256 is None
    assert verify_entries(archive.custody)[1].details["ok"] is False


def test_without_a_record_of_its_upload_a_warc_gets_a_capture_entry_as_first_indexed(
    tmp_path: Path,
) -> None:
    # A WARC stored by other means (no run's ship report beside it) and indexed by
    # `attest index`: its capture entry says where its values come from.
    sample = sample_warc(tmp_path)
    store = FileStore(tmp_path / "store")
    store.put_file(SAMPLE_KEY, sample.path, file_sha256(sample.path))
    with IndexDB(str(tmp_path / "index.sqlite")) as db:
        custody = CustodyLog(db, store)
        index_warc(db, store, SAMPLE_KEY, custody=custody)
        entries = custody.for_object(store.object_uri(SAMPLE_KEY))
        (result,) = audit_warcs(store, db, custody)
    assert [e.action for e in entries] == ["capture", "index"]
    assert entries[0].details["sha256"] == file_sha256(sample.path)
    assert "first indexed" in entries[0].details["recorded_from"]
    assert result.ok, result.problems
    assert result.expected_from == "capture"
    assert result.expected_sha256 == result.sha256 == file_sha256(sample.path)


def test_attest_audit_exits_1_when_a_warc_fails_and_logs_every_check(
    archive: StoredArchive,
) -> None:
    env = env_for(archive)
    ok = run_attest(["audit"], env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("OK file://") == 2
    assert "verified 2 WARC(s): 2 ok, 0 FAILED" in ok.stdout

    flip_byte(archive.path(LATER_KEY), 200)
    failed = run_attest(["audit", "--json"], env)
    assert failed.returncode == 1, failed.stderr
    verdicts = {r["key"]: r for r in json.loads(failed.stdout)}
    assert verdicts[SAMPLE_KEY]["ok"] is True
    assert verdicts[LATER_KEY]["ok"] is False
    assert verdicts[LATER_KEY]["problems"][0].startswith("sha256:")

    one = run_attest(["audit", archive.store.object_uri(SAMPLE_KEY)], env)
    assert one.returncode == 0, one.stderr
    assert "verified 1 WARC(s)" in one.stdout

    entries = verify_entries(archive.custody)
    assert [(e.object.rsplit("/", 1)[1], e.details["ok"]) for e in entries] == [
        ("sample-00000.warc.gz", True),
        ("later-00000.warc.gz", True),
        ("sample-00000.warc.gz", True),
        ("later-00000.warc.gz", False),
        ("sample-00000.warc.gz", True),
    ]
    assert {e.actor for e in entries} == {"auditor@test"}
    assert {e.details["via"] for e in entries} == {"attest audit"}
    custody = run_attest(["custody", "verify"], env)
    assert custody.returncode == 0, custody.stdout + custody.stderr


def test_attest_audit_refuses_a_warc_not_in_the_store(archive: StoredArchive) -> None:
    before = sum(1 for _ in archive.custody.entries())
    proc = run_attest(["audit", "warcs/src/none.warc.gz"], env_for(archive))
    assert proc.returncode == 2
    assert "warcs/src/none.warc.gz: no such object" in proc.stderr
    assert sum(1 for _ in archive.custody.entries()) == before
