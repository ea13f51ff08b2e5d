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
import multiprocessing
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archive.cdxj import read_warc_index
from archive.custody import CustodyLog, utc_iso
from archive.errors import AttestError, ObjectExists
from archive.indexdb import IndexDB, row_values
from archive.store import FileStore, Store, copy_to, file_sha256, open_store

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


@dataclass
class ParsedWarc:
    """A WARC read into what the index needs, ready to load (picklable, for worker processes)."""

    key: str
    values: list[tuple[Any, ...]]
    texts: dict[str, str]
    run_id: str | None
    source: str | None
    warcinfo: dict[str, str]
    cdxj: bytes
    size: int
    sha256: str


def parse_warc(store: Store, key: str, *, sha256: str | None = None) -> ParsedWarc:
    """Read a stored WARC into rows, texts and its CDXJ (no database, no writes)."""
    with local_copy(store, key) as path:
        index = read_warc_index(path, key)
        size = path.stat().st_size
        if sha256 is None:
            sha256 = file_sha256(path)
    return ParsedWarc(
        key=key, values=[row_values(r) for r in index.rows], texts=index.texts,
        run_id=index.run_id, source=index.source, warcinfo=index.warcinfo, cdxj=index.cdxj(),
        size=size, sha256=sha256,
    )  # fmt: skip


def _parse_in_worker(store_uri: str, key: str) -> ParsedWarc:
    return parse_warc(open_store(store_uri), key)


def load_parsed(
    db: IndexDB, store: Store, parsed: ParsedWarc, *, custody: CustodyLog | None = None
) -> IndexResult:
    """Store the CDXJ beside the WARC, load the rows, log the index event."""
    result = IndexResult(key=parsed.key, rows=len(parsed.values), texts=len(parsed.texts))
    result.cdxj_key = _store_cdxj(store, parsed.key, parsed.cdxj)
    result.added = db.load_values(
        parsed.key, parsed.values, parsed.texts,
        warc={"sha256": parsed.sha256, "size": parsed.size, "run_id": parsed.run_id,
              "source": parsed.source, "warcinfo": parsed.warcinfo, "cdxj_key": result.cdxj_key,
              "indexed_at": utc_iso()},
    )  # fmt: skip
    if custody is not None:
        custody.append(
            "index",
            store.object_uri(parsed.key),
            {"sha256": parsed.sha256, "rows": result.rows, "added": result.added,
             "cdxj": result.cdxj_key, "run_id": parsed.run_id, "source": parsed.source},
        )  # fmt: skip
    log.info("indexed %s", parsed.key, extra={"rows": result.rows, "added": result.added})
    return result


def index_warc(
    db: IndexDB,
    store: Store,
    key: str,
    *,
    custody: CustodyLog | None = None,
    sha256: str | None = None,
    force: bool = False,
) -> IndexResult:
    if not force and db.is_indexed(key):
        return IndexResult(key=key, skipped=True)
    return load_parsed(db, store, parse_warc(store, key, sha256=sha256), custody=custody)


def _store_cdxj(store: Store, key: str, cdxj: bytes) -> str | None:
    cdxj_key = key + CDXJ_SUFFIX
    with tempfile.TemporaryDirectory(prefix="attest-cdxj-") as tmp:
        path = Path(tmp) / "index.cdxj"
        path.write_bytes(cdxj)
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
    progress: Callable[[IndexResult], None] | None = None,
    workers: int = 1,
) -> list[IndexResult]:
    """Index each key; a WARC that fails is reported and the others still indexed.

    With ``workers`` > 1, WARCs are read in that many processes while this one loads the
    database (SQLite takes one writer): reading is most of the work, and it runs on every core.
    """
    results: list[IndexResult] = []
    todo = []
    for key in keys:
        if not force and db.is_indexed(key):
            results.append(IndexResult(key=key, skipped=True))
            if progress is not None:
                progress(results[-1])
        else:
            todo.append(key)

    def failed(key: str, exc: BaseException) -> None:
        log.error("cannot index %s: %s", key, exc)
        results.append(IndexResult(key=key, error=str(exc)))

    if workers <= 1 or len(todo) <= 1:
        for key in todo:
            try:
                results.append(load_parsed(db, store, parse_warc(store, key), custody=custody))
            except (AttestError, OSError) as exc:
                failed(key, exc)
            if progress is not None:
                progress(results[-1])
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending: dict[Future[ParsedWarc], str] = {}
            queue = list(reversed(todo))
            while queue or pending:
                # At most two WARCs per worker in flight: memory stays bounded.
                while queue and len(pending) < 2 * workers:
                    key = queue.pop()
                    pending[pool.submit(_parse_in_worker, store.uri, key)] = key
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    key = pending.pop(future)
                    try:
                        results.append(load_parsed(db, store, future.result(), custody=custody))
                    except (AttestError, OSError) as exc:
                        failed(key, exc)
                    if progress is not None:
                        progress(results[-1])
    if custody is not None:
        custody.seal()
    return results


def rebuild(
    db: IndexDB,
    store: Store,
    *,
    custody: CustodyLog | None = None,
    progress: Callable[[IndexResult], None] | None = None,
    workers: int = 1,
) -> list[IndexResult]:
    """Empty the index and index every WARC in the store again (the custody log stays)."""
    db.drop_index()
    return index_keys(
        db, store, list(warc_keys(store)), custody=custody, force=True, progress=progress,
        workers=workers,
    )  # fmt: skip
