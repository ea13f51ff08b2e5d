"""The embedded default store: a directory of read-only files (``file:///abs/path``).

A put hard-links the file into place when it is on the same filesystem (as the spool usually
is), else copies it and checks the copy's SHA-256; either way the object appears whole or not
at all (a temporary name, then a rename). No versions, no legal holds (it says so).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NoReturn, cast
from urllib.parse import unquote, urlparse

from archive import failpoints
from archive.errors import ConfigError, DigestMismatch, HoldUnsupported, StorageError
from archive.store.base import (
    COPY_CHUNK,
    PART_SUFFIX,
    LegalHold,
    RangeReader,
    StoredObject,
    checked_range,
    file_sha256,
    same_or_raise,
    validate_key,
)


class FileStore:
    """A directory on a local or mounted filesystem."""

    def __init__(self, root: Path) -> None:
        if not root.is_absolute():
            raise ConfigError(f"file store path must be absolute, got {root}")
        self.root = root
        self.uri = root.as_uri()

    @classmethod
    def from_uri(cls, uri: str) -> FileStore:
        """The store for ``file:///abs/path`` (:data:`archive.store.STORE_SCHEMES`)."""
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"store URI {uri!r}: file URIs take no host (file:///abs/path)")
        root = Path(unquote(parsed.path))
        if not root.is_absolute():
            raise ConfigError(f"store URI {uri!r}: the path must be absolute (file:///abs/path)")
        return cls(root)

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
        return checked_range(data, self.object_uri(key), offset, length)

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
