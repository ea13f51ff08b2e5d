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

import importlib
from urllib.parse import urlparse

from archive.errors import ConfigError
from archive.store.base import (
    COPY_CHUNK,
    LegalHold,
    PinnedStore,
    RangeReader,
    Store,
    StoredObject,
    copy_to,
    file_sha256,
    open_object,
    same_or_raise,
    validate_key,
)
from archive.store.file import FileStore

__all__ = [
    "COPY_CHUNK",
    "STORE_SCHEMES",
    "FileStore",
    "LegalHold",
    "PinnedStore",
    "RangeReader",
    "Store",
    "StoredObject",
    "copy_to",
    "file_sha256",
    "open_object",
    "open_store",
    "same_or_raise",
    "validate_key",
]

#: The store backend for each URI scheme (as Scrapy's ``FEED_STORAGES``): a class with a
#: ``from_uri(uri)`` constructor, imported when a URI of its scheme is opened (boto3 only then).
STORE_SCHEMES: dict[str, str] = {
    "file": "archive.store.file.FileStore",
    "s3": "archive.store.s3.S3Store",
}


def open_store(uri: str) -> Store:
    """The store for a URI: ``file:///abs/path`` or ``s3://bucket/prefix``."""
    parsed = urlparse(uri)
    if parsed.query or parsed.fragment:
        raise ConfigError(f"store URI {uri!r}: no query or fragment allowed")
    path = STORE_SCHEMES.get(parsed.scheme)
    if path is None:
        schemes = " or ".join(f"{s}://" for s in STORE_SCHEMES)
        raise ConfigError(f"store URI {uri!r}: scheme must be {schemes}")
    module, _, name = path.rpartition(".")
    backend = getattr(importlib.import_module(module), name)
    store: Store = backend.from_uri(uri)
    return store
