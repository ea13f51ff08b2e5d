"""Indexing stored WARCs: a CDXJ file beside each, its rows in the index database.

``index_warc`` is the one step ``attest crawl`` runs after upload, ``attest index`` runs on
demand, and the DAG's index task runs. It is idempotent: a WARC already in the ``warcs`` table
is skipped, rows are unique per (WARC, offset), and the CDXJ object, being derived
deterministically from immutable bytes, is the same object when written again.

``rebuild`` empties the index tables (never the custody log's) and indexes every WARC in the
store again: the index is derived data, the store is the evidence.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from archive.cdxj import WarcIndex, read_warc_index
from archive.custody import CustodyLog, utc_iso
from archive.errors import AttestError, ObjectExists, StorageError
from archive.indexdb import IndexDB
from archive.store import FileStore, Store, copy_to, file_sha256

log = logging.getLogger(__name__)

WARC_PREFIX = "warcs/"
CDXJ_SUFFIX = ".cdxj"


@dataclass
class IndexResult:
    key: str
    rows: int = 0
    added: int = 0
    texts: int = 0
    skipped: bool = False
    cdxj_key: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return dict(vars(self))


def is_warc_key(key: str) -> bool:
    return key.startswith(WARC_PREFIX) and key.endswith((".warc.gz", ".warc"))


def warc_keys(store: Store) -> Iterator[str]:
    for key in store.keys(WARC_PREFIX):
        if is_warc_key(key):
            yield key


@contextmanager
def local_copy(store: Store, key: str) -> Iterator[Path]:
    """A path to the object's bytes: the file itself for a file store, else a temporary copy."""
    if isinstance(store, FileStore):
        yield store.root / key
        return
    with tempfile.TemporaryDirectory(prefix="attest-index-") as tmp:
        target = Path(tmp) / "warc"
        copy_to(store, key, target)
        yield target


def index_warc(
    db: IndexDB,
    store: Store,
    key: str,
    *,
    custody: CustodyLog | None = None,
    sha256: str | None = None,
    force: bool = False,
) -> IndexResult:
    result = IndexResult(key=key)
    if not force and db.is_indexed(key):
        result.skipped = True
        return result
    with local_copy(store, key) as path:
        index = read_warc_index(path, key)
        size = path.stat().st_size
        if sha256 is None:
            sha256 = file_sha256(path)
    result.rows = len(index.rows)
    result.texts = len(index.texts)
    result.cdxj_key = _store_cdxj(store, key, index)
    result.added = db.load(
        index, sha256=sha256, size=size, cdxj_key=result.cdxj_key, indexed_at=utc_iso()
    )
    if custody is not None:
        custody.append(
            "index",
            store.object_uri(key),
            {"sha256": sha256, "rows": result.rows, "added": result.added, "cdxj": result.cdxj_key,
             "run_id": index.run_id, "source": index.source},
        )  # fmt: skip
    log.info("indexed %s", key, extra={"rows": result.rows, "added": result.added})
    return result


def _store_cdxj(store: Store, key: str, index: WarcIndex) -> str | None:
    cdxj_key = key + CDXJ_SUFFIX
    with tempfile.TemporaryDirectory(prefix="attest-cdxj-") as tmp:
        path = Path(tmp) / "index.cdxj"
        path.write_bytes(index.cdxj())
        try:
            store.put_file(cdxj_key, path, file_sha256(path))
        except ObjectExists:
            # Written by an earlier attest whose CDXJ differed; stored objects are never replaced.
            log.warning("%s exists with other bytes; kept as it is", cdxj_key)
    return cdxj_key


def index_keys(
    db: IndexDB,
    store: Store,
    keys: Iterable[str],
    *,
    custody: CustodyLog | None = None,
    force: bool = False,
    progress: object = None,
) -> list[IndexResult]:
    """Index each key; a WARC that fails is reported and the others still indexed."""
    results = []
    for key in keys:
        try:
            results.append(index_warc(db, store, key, custody=custody, force=force))
        except (AttestError, OSError) as exc:
            reason = str(exc)
            log.error("cannot index %s: %s", key, reason)
            results.append(IndexResult(key=key, error=reason))
            if isinstance(exc, StorageError):
                continue
        if callable(progress):
            progress(results[-1])
    if custody is not None:
        custody.seal()
    return results


def rebuild(
    db: IndexDB, store: Store, *, custody: CustodyLog | None = None, progress: object = None
) -> list[IndexResult]:
    """Empty the index and index every WARC in the store again (the custody log stays)."""
    db.drop_index()
    return index_keys(
        db, store, list(warc_keys(store)), custody=custody, force=True, progress=progress
    )
