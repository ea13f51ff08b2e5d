"""What every object store shares: the types (:class:`StoredObject`, :class:`LegalHold`), the
:class:`Store` protocol the backends implement, key validation and the put-same-bytes rule
(:func:`validate_key`, :func:`same_or_raise`), a bounded range stream (:class:`RangeReader`)
and the length check of a range read (:func:`checked_range`), reads pinned to the versions the
index recorded (:class:`PinnedStore`), a local file's SHA-256 (:func:`file_sha256`) and helpers
over any store (:func:`copy_to`, :func:`open_object`). Backends (:mod:`.file`, :mod:`.s3`)
import this module and nothing of each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from archive.errors import ConfigError, NotFound, ObjectExists, StorageError

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


def checked_range(data: bytes, uri: str, offset: int, length: int) -> bytes:
    """``data``, read as ``length`` bytes at ``offset`` of the object ``uri``; a short read is
    a :class:`~archive.errors.StorageError` naming the object and range."""
    if len(data) != length:
        raise StorageError(f"{uri}: asked {length} bytes at {offset}, got {len(data)}")
    return data


def validate_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ConfigError(f"invalid object key {key!r}")
    return key


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
