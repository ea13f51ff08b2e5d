"""The file store and store URIs (archive/store/__init__.py): keys are immutable, every put is verified."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from archive.errors import ConfigError, DigestMismatch, ObjectExists, StorageError
from archive.store import FileStore, StoredObject, copy_to, file_sha256, open_store

INVALID_KEYS = ["../x", "/abs", "a//b", "", "a/../b", "./a", "a/.", "a/"]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


@pytest.fixture
def warc(tmp_path: Path) -> Path:
    return write(tmp_path / "spool" / "a.warc.gz", b"WARC/1.1\r\n" + bytes(range(256)) * 64)


def test_put_file_stores_the_bytes_and_reports_their_sha256(store: FileStore, warc: Path) -> None:
    sha = file_sha256(warc)
    assert sha == hashlib.sha256(warc.read_bytes()).hexdigest()

    stored = store.put_file("2026/11/a.warc.gz", warc, sha)

    target = store.root / "2026" / "11" / "a.warc.gz"
    assert stored == StoredObject("2026/11/a.warc.gz", warc.stat().st_size, sha, target.as_uri())
    assert target.read_bytes() == warc.read_bytes()
    assert store.stat("2026/11/a.warc.gz") == stored
    assert store.object_uri("2026/11/a.warc.gz") == target.as_uri()


def test_stored_objects_are_read_only(store: FileStore, warc: Path) -> None:
    store.put_file("a.warc.gz", warc, file_sha256(warc))

    mode = (store.root / "a.warc.gz").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_putting_the_same_bytes_again_is_a_no_op(store: FileStore, warc: Path) -> None:
    first = store.put_file("a.warc.gz", warc, file_sha256(warc))
    before = (store.root / "a.warc.gz").stat()

    again = store.put_file("a.warc.gz", warc, file_sha256(warc))

    assert again == first
    after = (store.root / "a.warc.gz").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list(store.keys()) == ["a.warc.gz"]


def test_different_bytes_under_an_existing_key_are_refused(
    store: FileStore, warc: Path, tmp_path: Path
) -> None:
    original = store.put_file("a.warc.gz", warc, file_sha256(warc))
    other = write(tmp_path / "spool" / "b.warc.gz", b"other bytes")

    with pytest.raises(ObjectExists, match=r"a\.warc\.gz"):
        store.put_file("a.warc.gz", other, file_sha256(other))

    assert store.stat("a.warc.gz") == original
    assert (store.root / "a.warc.gz").read_bytes() == warc.read_bytes()
    assert list(store.keys()) == ["a.warc.gz"]


def test_a_wrong_sha256_is_refused_and_leaves_nothing(store: FileStore, warc: Path) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()

    with pytest.raises(DigestMismatch):
        store.put_file("a.warc.gz", warc, wrong)

    assert store.stat("a.warc.gz") is None
    assert list(store.keys()) == []
    assert [p.name for p in store.root.iterdir()] == []  # no partial upload left behind


def test_keys_lists_stored_keys_by_prefix(store: FileStore, tmp_path: Path) -> None:
    for key in ("b/2.warc.gz", "a/1.warc.gz", "a/2.warc.gz", "notes.part"):
        src = write(tmp_path / "src" / key, key.encode())
        store.put_file(key, src, file_sha256(src))
    # An upload in progress is not a key.
    write(store.root / "a" / ".3.warc.gz.0123abcd.part", b"half")

    assert list(store.keys()) == ["a/1.warc.gz", "a/2.warc.gz", "b/2.warc.gz", "notes.part"]
    assert list(store.keys("a/")) == ["a/1.warc.gz", "a/2.warc.gz"]
    assert list(store.keys("c/")) == []


def test_keys_of_a_store_not_yet_created_is_empty(tmp_path: Path) -> None:
    assert list(FileStore(tmp_path / "nothing-here").keys()) == []


def test_open_returns_the_stored_bytes(store: FileStore, warc: Path, tmp_path: Path) -> None:
    store.put_file("a.warc.gz", warc, file_sha256(warc))

    with store.open("a.warc.gz") as handle:
        assert handle.read() == warc.read_bytes()
    copy_to(store, "a.warc.gz", tmp_path / "copy.warc.gz")
    assert (tmp_path / "copy.warc.gz").read_bytes() == warc.read_bytes()


def test_open_of_a_missing_key_is_a_storage_error(store: FileStore) -> None:
    with pytest.raises(StorageError, match=r"missing\.warc\.gz"):
        store.open("missing.warc.gz")
    assert store.stat("missing.warc.gz") is None


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused(store: FileStore, warc: Path, tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match="invalid object key"):
        store.put_file(key, warc, file_sha256(warc))
    with pytest.raises(ConfigError, match="invalid object key"):
        store.open(key)
    with pytest.raises(ConfigError, match="invalid object key"):
        store.stat(key)
    assert not store.root.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spool"]


def test_a_key_where_a_directory_is_is_a_storage_error(store: FileStore, warc: Path) -> None:
    store.put_file("a/b.warc.gz", warc, file_sha256(warc))

    with pytest.raises(StorageError, match="not a regular file"):
        store.put_file("a", warc, file_sha256(warc))


def test_a_key_below_a_stored_object_is_a_storage_error(store: FileStore, warc: Path) -> None:
    store.put_file("a", warc, file_sha256(warc))

    with pytest.raises(StorageError, match="cannot store a/b"):
        store.put_file("a/b", warc, file_sha256(warc))
    assert list(store.keys()) == ["a"]


def test_file_store_needs_an_absolute_path() -> None:
    with pytest.raises(ConfigError, match="absolute"):
        FileStore(Path("relative/store"))


def test_open_store_picks_the_file_store_for_file_uris(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    assert isinstance(store, FileStore)
    assert store.root == tmp_path
    assert store.uri == tmp_path.as_uri()

    assert isinstance(localhost := open_store(f"file://localhost{tmp_path}"), FileStore)
    assert localhost.root == tmp_path


def test_open_store_decodes_percent_escapes(tmp_path: Path) -> None:
    root = tmp_path / "with space#hash"
    store = open_store(root.as_uri())
    assert isinstance(store, FileStore)
    assert store.root == root


@pytest.mark.parametrize(
    "uri",
    [
        "file:relative/store",  # relative path
        "file:./store",
        "file:",
        "file://evidence-host/srv/store",  # file URIs take no host
        "file://relative/store",  # looks relative, parses as host "relative"
        "ftp://example.org/store",  # unknown scheme
        "http://127.0.0.1/store",
        "/srv/store",  # a path, not a URI
        "relative/store",
        "file:///srv/store?x=1",  # query or fragment
        "file:///srv/store#part",
    ],
)
def test_open_store_rejects_bad_uris_naming_them(uri: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(uri)
    assert repr(uri) in str(info.value)
