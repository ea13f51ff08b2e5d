"""Object stores for finished WARC files, chosen by URI scheme.

``file:///abs/path`` (the embedded default) and ``s3://bucket/prefix`` (boto3; SeaweedFS, MinIO
or AWS) share one small protocol, in the manner of Scrapy's ``STORE_SCHEMES``. Keys are
immutable: :meth:`Store.put_file` never replaces an existing object. Putting the same bytes
again is a no-op (so an interrupted upload can simply be retried); different bytes under an
existing key raise :class:`~archive.errors.ObjectExists`.

Every put is verified before it returns: the S3 store compares the server's SHA-256 checksum of
the whole object with ours, the file store re-reads what it stored. (When the file is on the
store's filesystem, as the spool usually is, storing it is a hard link rather than a copy.)

Evidence is pinned to the object version it was stored as: S3 keeps every version of a key
(a versioned bucket, as Object Lock requires), so a later PUT under the same key, by anyone,
adds a version and leaves the original readable. :attr:`StoredObject.version_id` is the version
a put created (or found); every read takes an optional ``version`` and reads exactly it, and
:class:`PinnedStore` applies the versions the index recorded to every read of a store. A file
store has no versions (``version_id`` None): its objects are read-only files that a put never
replaces.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn, Protocol, cast
from urllib.parse import unquote, urlparse

from archive import failpoints
from archive.errors import (
    ConfigError,
    DigestMismatch,
    HoldUnsupported,
    NotFound,
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
    #: The object version (S3 ``VersionId``) these bytes are; None where the store has no
    #: versions (a file store, an S3 bucket without versioning).
    version_id: str | None = None


@dataclass(frozen=True)
class LegalHold:
    """A legal hold's state on one object version, as the store reported it after the change."""

    key: str
    uri: str
    version_id: str | None
    status: str  # "ON" or "OFF", read back from the store
    previous: str  # the status before: "ON" or "OFF" (never set counts as OFF)


class Store(Protocol):
    """Where finished WARCs (and later indexes and custody segments) live.

    ``version``: read (or hold) that version of the object, not the current one; a store
    without versions refuses any version but None (:class:`~archive.errors.StorageError`).
    """

    uri: str

    def put_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        """Upload ``path`` under ``key`` and verify it; never overwrites different bytes."""
        ...

    def stat(self, key: str, *, version: str | None = None) -> StoredObject | None: ...

    def current(self, key: str) -> StoredObject | None:
        """The key's current version (whatever a :class:`PinnedStore` pins it to)."""
        ...

    def versions(self, key: str) -> list[StoredObject]:
        """Every version of the key, oldest first (one, where the store has no versions); a
        second version of an immutable key means it was put again by someone else."""
        ...

    def open(self, key: str, *, version: str | None = None) -> BinaryIO: ...

    def read_range(
        self, key: str, offset: int, length: int, *, version: str | None = None
    ) -> bytes:
        """``length`` bytes of the object from ``offset`` (one WARC record)."""
        ...

    def open_range(
        self, key: str, offset: int, length: int, *, version: str | None = None
    ) -> BinaryIO:
        """A stream of ``length`` bytes of the object from ``offset``, read as it is consumed
        (a record too large to hold in memory); :class:`~archive.errors.StorageError` when the
        object ends before."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The object as a file on this machine, if the store is a local directory."""
        ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def object_uri(self, key: str) -> str: ...

    def require_legal_holds(self) -> None:
        """:class:`~archive.errors.HoldUnsupported` unless this store can hold objects."""
        ...

    def set_legal_hold(self, key: str, *, on: bool = True, version: str | None = None) -> LegalHold:
        """Place (``on``) or lift a legal hold on the object's ``version`` (default: its
        current one), read back; :class:`~archive.errors.HoldUnsupported` when the store has
        no legal holds."""
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

    def _unversioned(self, key: str, version: str | None) -> None:
        if version is not None:
            raise StorageError(
                f"{self.object_uri(key)}: a file store has no object versions (asked for {version})"
            )

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def current(self, key: str) -> StoredObject | None:
        return self.stat(key)

    def versions(self, key: str) -> list[StoredObject]:
        found = self.stat(key)
        return [found] if found is not None else []

    def stat(self, key: str, *, version: str | None = None) -> StoredObject | None:
        self._unversioned(key, version)
        path = self._path(key)
        if not path.is_file():
            return None
        return StoredObject(key, path.stat().st_size, file_sha256(path), path.as_uri())

    def put_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        final = self._path(key)
        existing = self.stat(key)
        if existing is not None:
            return same_or_raise(existing, sha256, self.object_uri(key))
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
                return same_or_raise(existing, sha256, self.object_uri(key))
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

    def open(self, key: str, *, version: str | None = None) -> BinaryIO:
        self._unversioned(key, version)
        try:
            return open(self._path(key), "rb")
        except OSError as exc:
            raise StorageError(f"{self.object_uri(key)}: {exc}") from exc

    def read_range(
        self, key: str, offset: int, length: int, *, version: str | None = None
    ) -> bytes:
        with self.open(key, version=version) as handle:
            handle.seek(offset)
            data = handle.read(length)
        if len(data) != length:
            raise StorageError(
                f"{self.object_uri(key)}: asked {length} bytes at {offset}, got {len(data)}"
            )
        return data

    def open_range(
        self, key: str, offset: int, length: int, *, version: str | None = None
    ) -> BinaryIO:
        handle = self.open(key, version=version)
        handle.seek(offset)
        return cast(BinaryIO, RangeReader(handle, length, self.object_uri(key), offset))

    def require_legal_holds(self) -> NoReturn:
        raise HoldUnsupported(
            f"{self.uri} is a file store, which has no legal holds: use an S3 store whose "
            f"bucket has Object Lock enabled (s3://bucket/prefix)"
        )

    def set_legal_hold(self, key: str, *, on: bool = True, version: str | None = None) -> LegalHold:
        self.require_legal_holds()

    def keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not _is_partial(path.name):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key


class RangeReader:
    """``length`` bytes of an object stream from where it stands, then end of file; a stream
    that ends early is a :class:`~archive.errors.StorageError` naming the object and range.

    It can go back to its start while it has read no more than its first :attr:`PEEK` bytes
    (a reader that peeks at a file's magic bytes, as :mod:`archive.warc.read` does), and forward
    by reading."""

    PEEK = 64

    def __init__(self, stream: BinaryIO, length: int, uri: str, offset: int = 0) -> None:
        self._stream = stream
        self._length = length
        self._uri = uri
        self._offset = offset
        self._taken = 0  # bytes taken from the stream
        self._pos = 0  # where the reader stands (behind ``_taken`` only when it went back)
        self._head = bytearray()  # the first PEEK bytes taken

    def read(self, size: int = -1) -> bytes:
        out = b""
        if self._pos < self._taken:  # replaying the head after going back
            end = self._taken if size < 0 else min(self._taken, self._pos + size)
            out = bytes(self._head[self._pos : end])
            self._pos = end
            if size >= 0:
                size -= len(out)
                if size == 0:
                    return out
        left = self._length - self._taken
        want = left if size < 0 else min(size, left)
        parts = []
        got = 0
        while got < want:
            chunk = self._stream.read(want - got)
            if not chunk:
                raise StorageError(
                    f"{self._uri}: the object ends {left - got} bytes before the end of the "
                    f"range {self._offset}+{self._length}"
                )
            parts.append(chunk)
            got += len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if self._taken < self.PEEK:
            self._head += data[: self.PEEK - self._taken]
        self._taken += len(data)
        self._pos = self._taken
        return out + data

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or offset < 0:
            raise OSError("a range reader seeks to a position from its start only")
        if offset <= self._taken and self._taken <= self.PEEK:
            self._pos = offset
        elif offset >= self._pos and self._pos == self._taken:
            while self._pos < min(offset, self._length):
                self.read(min(offset, self._length) - self._pos)
        elif offset != self._pos:
            raise OSError("a range reader cannot go back past its first bytes")
        return self._pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def same_or_raise(existing: StoredObject, sha256: str, uri: str) -> StoredObject:
    if existing.sha256 == sha256:
        return existing
    raise ObjectExists(f"{uri} already exists with sha256 {existing.sha256}, not {sha256}")


class PinnedStore:
    """A store whose reads take, for each key, the version ``version_of(key)`` names (the one
    the index recorded), unless a read names a version itself: a later version put under the
    same key is never what evidence is read from. Everything else is the wrapped store's."""

    def __init__(self, store: Store, version_of: Callable[[str], str | None]) -> None:
        self.inner = store
        self.uri = store.uri
        self._version_of = version_of

    def _version(self, key: str, version: str | None) -> str | None:
        return version if version is not None else self._version_of(key)

    def put_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        return self.inner.put_file(key, path, sha256)

    def stat(self, key: str, *, version: str | None = None) -> StoredObject | None:
        return self.inner.stat(key, version=self._version(key, version))

    def current(self, key: str) -> StoredObject | None:
        return self.inner.current(key)

    def versions(self, key: str) -> list[StoredObject]:
        return self.inner.versions(key)

    def open(self, key: str, *, version: str | None = None) -> BinaryIO:
        return self.inner.open(key, version=self._version(key, version))

    def read_range(
        self, key: str, offset: int, length: int, *, version: str | None = None
    ) -> bytes:
        return self.inner.read_range(key, offset, length, version=self._version(key, version))

    def open_range(
        self, key: str, offset: int, length: int, *, version: str | None = None
    ) -> BinaryIO:
        return self.inner.open_range(key, offset, length, version=self._version(key, version))

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        return self.inner.keys(prefix)

    def object_uri(self, key: str) -> str:
        return self.inner.object_uri(key)

    def require_legal_holds(self) -> None:
        self.inner.require_legal_holds()

    def set_legal_hold(self, key: str, *, on: bool = True, version: str | None = None) -> LegalHold:
        return self.inner.set_legal_hold(key, on=on, version=self._version(key, version))


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
        from archive.store.s3 import S3Store

        return S3Store.from_uri(uri)
    raise ConfigError(f"store URI {uri!r}: scheme must be file:// or s3://")


def copy_to(store: Store, key: str, target: Path, *, version: str | None = None) -> None:
    with store.open(key, version=version) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, COPY_CHUNK)


@contextlib.contextmanager
def open_object(
    store: Store, key: str, *, version: str | None = None
) -> Iterator[tuple[BinaryIO, int]]:
    """The object's bytes as a stream (a file of a file store, else read as it is consumed),
    positioned at its start and able to peek at its first bytes; and its size."""
    path = store.local_path(key)
    if path is not None:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after the yield
        except FileNotFoundError:
            raise NotFound(f"{store.object_uri(key)}: no such object in the store") from None
        with handle:
            yield handle, os.fstat(handle.fileno()).st_size
        return
    found = store.stat(key, version=version)
    if found is None:
        what = f" version {version}" if version else ""
        raise NotFound(f"{store.object_uri(key)}{what}: no such object in the store")
    with store.open_range(key, 0, found.size, version=version) as stream:
        yield stream, found.size
