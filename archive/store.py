"""Object stores for finished WARC files, chosen by URI scheme.

``file:///abs/path`` (the embedded default) and ``s3://bucket/prefix`` (boto3; SeaweedFS, MinIO
or AWS) share one small protocol, in the manner of Scrapy's ``STORE_SCHEMES``. Keys are
immutable: :meth:`Store.put_file` never replaces an existing object. Putting the same bytes
again is a no-op (so an interrupted upload can simply be retried); different bytes under an
existing key raise :class:`~archive.errors.ObjectExists`.

Every put is verified before it returns: the S3 store compares the server's SHA-256 checksum of
the whole object with ours, the file store re-reads what it stored. (When the file is on the
store's filesystem, as the spool usually is, storing it is a hard link rather than a copy.)

Legal holds (:meth:`Store.set_legal_hold`) are S3 Object Lock's: a held object version cannot
be deleted or replaced until the hold is lifted, whatever its retention. A file store has no
such thing and says so (:class:`~archive.errors.HoldUnsupported`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn, Protocol
from urllib.parse import unquote, urlparse

from archive import failpoints
from archive.errors import (
    ConfigError,
    DigestMismatch,
    HoldUnsupported,
    ObjectExists,
    StorageError,
)

COPY_CHUNK = 1024 * 1024
PART_SUFFIX = ".part"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str  # lowercase hex
    uri: str


@dataclass(frozen=True)
class LegalHold:
    """A legal hold's state on one object version, as the store reported it after the change."""

    key: str
    uri: str
    version_id: str | None
    status: str  # "ON" or "OFF", read back from the store
    previous: str  # the status before: "ON" or "OFF" (never set counts as OFF)


class Store(Protocol):
    """Where finished WARCs (and later indexes and custody segments) live."""

    uri: str

    def put_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        """Upload ``path`` under ``key`` and verify it; never overwrites different bytes."""
        ...

    def stat(self, key: str) -> StoredObject | None: ...

    def open(self, key: str) -> BinaryIO: ...

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes of the object from ``offset`` (one WARC record)."""
        ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def object_uri(self, key: str) -> str: ...

    def require_legal_holds(self) -> None:
        """:class:`~archive.errors.HoldUnsupported` unless this store can hold objects."""
        ...

    def set_legal_hold(self, key: str, *, on: bool = True) -> LegalHold:
        """Place (``on``) or lift a legal hold on the object's current version, read back;
        :class:`~archive.errors.HoldUnsupported` when the store has no legal holds."""
        ...


def file_sha256(path: Path, *, fsync: bool = False) -> str:
    """SHA-256 (hex) of a file's bytes; with ``fsync``, also make sure they are on disk."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(COPY_CHUNK):
            digest.update(chunk)
        if fsync:
            os.fsync(handle.fileno())
    return digest.hexdigest()


def validate_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ConfigError(f"invalid object key {key!r}")
    return key


class FileStore:
    """A directory on a local or mounted filesystem."""

    def __init__(self, root: Path) -> None:
        if not root.is_absolute():
            raise ConfigError(f"file store path must be absolute, got {root}")
        self.root = root
        self.uri = root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def object_uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return StoredObject(key, path.stat().st_size, file_sha256(path), path.as_uri())

    def put_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        final = self._path(key)
        existing = self.stat(key)
        if existing is not None:
            return _same_or_raise(existing, sha256, self.object_uri(key))
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}{PART_SUFFIX}")
        linked = False
        try:
            # Inside the try: a file where a directory of the key should be is a StorageError.
            final.parent.mkdir(parents=True, exist_ok=True)
            linked = _hard_link(path, tmp)
            if linked:
                # The spool and the store share a filesystem: the upload is a hard link (no
                # copy), and its check a re-read of the bytes the store now holds, before the
                # key is published.
                reread = file_sha256(tmp, fsync=True)
                if reread != sha256:
                    raise DigestMismatch(f"{path}: changed while uploading (sha256 {reread})")
            else:
                _copy_checked(path, tmp, sha256)
            os.chmod(tmp, 0o444)
            failpoints.failpoint("store.file-before-link")
            try:
                # link() fails if the key appeared meanwhile: never overwrite.
                os.link(tmp, final)
            except FileExistsError:
                existing = self.stat(key)
                if existing is None:
                    # A directory (keys "a/b" and "a" cannot both live on a filesystem).
                    raise StorageError(
                        f"{self.object_uri(key)} exists and is not a regular file"
                    ) from None
                return _same_or_raise(existing, sha256, self.object_uri(key))
            _fsync_dir(final.parent)
            if linked and _same_file(final, tmp):
                # The key names the very inode just re-read and found equal to ``sha256``.
                return StoredObject(key, final.stat().st_size, sha256, final.as_uri())
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot store {key}: {exc}") from exc
        finally:
            # NotADirectoryError: the key's parent is a file, so tmp was never created.
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                tmp.unlink()
        stored = self.stat(key)
        if stored is None or stored.sha256 != sha256:
            raise DigestMismatch(
                f"{self.object_uri(key)}: re-read after upload does not match {sha256}"
            )
        return stored

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except OSError as exc:
            raise StorageError(f"{self.object_uri(key)}: {exc}") from exc

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        with self.open(key) as handle:
            handle.seek(offset)
            data = handle.read(length)
        if len(data) != length:
            raise StorageError(
                f"{self.object_uri(key)}: asked {length} bytes at {offset}, got {len(data)}"
            )
        return data

    def require_legal_holds(self) -> NoReturn:
        raise HoldUnsupported(
            f"{self.uri} is a file store, which has no legal holds: use an S3 store whose "
            f"bucket has Object Lock enabled (s3://bucket/prefix)"
        )

    def set_legal_hold(self, key: str, *, on: bool = True) -> LegalHold:
        self.require_legal_holds()

    def keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not _is_partial(path.name):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key


def _hard_link(src: Path, dst: Path) -> bool:
    """Link ``src`` as ``dst`` if that is possible here: same filesystem, and a file of ours
    (its mode becomes the store's read-only one). False when a copy is needed instead."""
    try:
        if src.stat().st_uid != os.geteuid():
            return False
        os.link(src, dst)
    except OSError:  # another filesystem (EXDEV), no hard links there, link limit...
        return False
    return True


def _copy_checked(src: Path, dst: Path, sha256: str) -> None:
    """Copy ``src`` to a new file ``dst`` (fsynced), checking the bytes against ``sha256``."""
    digest = hashlib.sha256()
    with open(src, "rb") as source, open(dst, "xb") as target:
        while chunk := source.read(COPY_CHUNK):
            digest.update(chunk)
            target.write(chunk)
        target.flush()
        os.fsync(target.fileno())
    if digest.hexdigest() != sha256:
        raise DigestMismatch(f"{src}: changed while uploading (sha256 {digest.hexdigest()})")


def _same_file(a: Path, b: Path) -> bool:
    sa, sb = a.stat(), b.stat()
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _is_partial(name: str) -> bool:
    """An upload in progress (``.<name>.<hex>.part``), not a key: keys may end in ``.part``."""
    return name.startswith(".") and name.endswith(PART_SUFFIX)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_or_raise(existing: StoredObject, sha256: str, uri: str) -> StoredObject:
    if existing.sha256 == sha256:
        return existing
    raise ObjectExists(f"{uri} already exists with sha256 {existing.sha256}, not {sha256}")


def open_store(uri: str) -> Store:
    """The store for a URI: ``file:///abs/path`` or ``s3://bucket/prefix``."""
    parsed = urlparse(uri)
    if parsed.query or parsed.fragment:
        raise ConfigError(f"store URI {uri!r}: no query or fragment allowed")
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"store URI {uri!r}: file URIs take no host (file:///abs/path)")
        root = Path(unquote(parsed.path))
        if not root.is_absolute():
            raise ConfigError(f"store URI {uri!r}: the path must be absolute (file:///abs/path)")
        return FileStore(root)
    if parsed.scheme == "s3":
        from archive.store_s3 import S3Store

        return S3Store.from_uri(uri)
    raise ConfigError(f"store URI {uri!r}: scheme must be file:// or s3://")


def copy_to(store: Store, key: str, target: Path) -> None:
    with store.open(key) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, COPY_CHUNK)
