"""Indexing stored WARCs: a CDXJ file beside each, its rows in the index database.

``index_warc`` is the one step ``attest crawl`` runs after upload, ``attest index`` runs on
demand, and the DAG's index task runs. It is idempotent: a WARC already in the ``warcs`` table
is skipped, rows are unique per (WARC, offset), and the CDXJ object, being derived
deterministically from immutable bytes, is the same object when written again.

``rebuild`` empties the index tables (never the custody log's) and indexes every WARC in the
store again: the index is derived data, the store is the evidence.

A WARC is read as the object version that was stored (the ``capture`` custody entry names it,
and its SHA-256), streamed from the store with every record's digests recomputed
(:func:`archive.index.cdxj.read_warc_index`); the whole object's SHA-256 must be the one recorded at
upload, else nothing of it is indexed. A record that fails its own checks is left out and
recorded as an index problem (``IndexDB.problems``), and its WARC's other records are indexed:
the result says how many, and ``attest index`` exits non-zero.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.custody.log import CustodyLog, utc_iso
from archive.errors import AttestError, ConfigError, DigestMismatch, ObjectExists
from archive.index.cdxj import read_warc_index
from archive.index.db import IndexDB, row_values
from archive.ingest.ship import ShippedWarc, record_capture, upload_record
from archive.store import Store, file_sha256, open_object, open_store, validate_key
from archive.warc.read import Problem

log = logging.getLogger(__name__)

WARC_PREFIX = "warcs/"
CDXJ_SUFFIX = ".cdxj"


#: Problems of one WARC written into its ``index`` custody entry (the index keeps them all).
MAX_PROBLEMS_LOGGED = 20


@dataclass
class IndexResult:
    key: str
    rows: int = 0
    added: int = 0
    texts: int = 0
    skipped: bool = False
    cdxj_key: str | None = None
    error: str | None = None
    version_id: str | None = None
    #: Records left out because a check failed (``Problem`` fields, as dicts)
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems

    def as_dict(self) -> dict[str, object]:
        return dict(vars(self))


def is_warc_key(key: str) -> bool:
    return key.startswith(WARC_PREFIX) and key.endswith((".warc.gz", ".warc"))


def warc_keys(store: Store) -> Iterator[str]:
    for key in store.keys(WARC_PREFIX):
        if is_warc_key(key):
            yield key


def resolve_warc_key(store: Store, given: str) -> str:
    """The key of a stored WARC given by its URI in this store, or by its key.

    :class:`ConfigError` naming ``given`` when it is in another store, is not a valid key, is
    not a WARC's key, or is not in the store.
    """
    key = given
    base = store.uri.rstrip("/") + "/"
    if given.startswith(base):
        key = given[len(base) :]
    elif "://" in given:
        raise ConfigError(f"{given}: not in the store {store.uri}")
    try:
        validate_key(key)
    except ConfigError:
        raise ConfigError(f"{given}: not a valid WARC key (no '..', no leading '/')") from None
    if not is_warc_key(key):
        raise ConfigError(
            f"{given}: not a WARC in the store (keys look like warcs/<source>/.../*.warc.gz)"
        )
    if store.stat(key) is None:
        raise ConfigError(f"{given}: no such object in {store.uri}")
    return key


#: What a ``capture`` entry records of a WARC when it was not its upload that was recorded.
FIRST_INDEXED = "the WARC as first indexed (no record of its upload was found)"


@dataclass(frozen=True)
class Upload:
    """What was recorded of a WARC's upload: the SHA-256 of the whole object, its version, and
    whether that file was verified record by record before it was uploaded (the spool does it
    for every WARC it ships; a WARC first seen by the index was not)."""

    sha256: str | None = None
    version: str | None = None
    verified: bool = False


def recorded_upload(custody: CustodyLog | None, store: Store, key: str) -> Upload:
    """The WARC's upload, from its first ``capture`` custody entry; empty when none is known.

    A WARC stored while the custody log could not be written (its run's index step failed)
    has no ``capture`` entry: it gets one now, from what its run's ship report in the store
    says of the upload (:func:`archive.ingest.ship.upload_record`), if that report is found."""
    if custody is None:
        return Upload()
    uri = store.object_uri(key)
    for entry in custody.for_object(uri):
        if entry.action == "capture":
            sha256 = entry.details.get("sha256")
            verified = entry.details.get("verified_before_upload") is True
            return Upload(sha256, entry.details.get("version_id"), bool(sha256) and verified)
    found = upload_record(store, key)
    if found is None:
        return Upload()
    shipped, report_key = found
    record_capture(
        custody,
        ShippedWarc(
            filename=key.rsplit("/", 1)[-1],
            key=key,
            uri=uri,
            sha256=str(shipped["sha256"]),
            size=int(shipped["size"]),
            records=shipped.get("records"),
            version_id=shipped.get("version_id"),
        ),
        shipped.get("run_id"),
        verified=True,  # the ship report lists what the spool verified and uploaded
        recorded_from=store.object_uri(report_key),
    )
    return Upload(str(shipped["sha256"]), shipped.get("version_id"), verified=True)


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
    version_id: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    #: How its records were checked: each one's digests, or the whole file against the upload
    checked: str = "records"


def problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "offset": problem.offset,
        "record_id": problem.record_id,
        "record_type": problem.record_type,
        "target_uri": problem.target_uri,
        "check": problem.check,
        "detail": problem.detail,
    }


def parse_warc(
    store: Store,
    key: str,
    *,
    sha256: str | None = None,
    version: str | None = None,
    verified: bool = False,
) -> ParsedWarc:
    """Read a stored WARC into rows, texts and its CDXJ (no database, no writes).

    ``version``: the object version to read (default: the current one); ``sha256``: what the
    whole object must hash to (the upload's), else :class:`DigestMismatch` and nothing read is
    used. ``verified``: that file's every record was verified before upload (as the spool does),
    so bytes with the same SHA-256 need no record digest recomputed: the whole file's hash,
    checked here, covers them all. Otherwise every record's digests are recomputed and a record
    that fails is left out (a problem of the result)."""
    if version is None:
        current = store.stat(key)
        version = current.version_id if current is not None else None
    digest: list[str] = []
    by_file = verified and sha256 is not None
    with open_object(store, key, version=version) as (handle, size):
        index = read_warc_index(Path(key), key, handle=handle, file_hash=digest, verify=not by_file)
    if not digest:  # an uncompressed WARC is read out of order: hash it in a pass of its own
        whole = hashlib.sha256()
        with open_object(store, key, version=version) as (handle, _):
            while chunk := handle.read(1024 * 1024):
                whole.update(chunk)
        digest.append(whole.hexdigest())
    found = digest[0]
    if sha256 is not None and found != sha256:
        what = f" (version {version})" if version else ""
        raise DigestMismatch(
            f"{store.object_uri(key)}{what}: the stored object's sha256 is {found}, "
            f"{sha256} was uploaded: not indexed"
        )
    return ParsedWarc(
        key=key,
        values=[row_values(r) for r in index.rows],
        texts=index.texts,
        run_id=index.run_id,
        source=index.source,
        warcinfo=index.warcinfo,
        cdxj=index.cdxj(),
        size=size,
        sha256=found,
        version_id=version,
        problems=[problem_dict(p) for p in index.problems],
        checked="file" if by_file else "records",
    )


def _parse_in_worker(store_uri: str, key: str, upload: Upload) -> ParsedWarc:
    return parse_warc(
        open_store(store_uri),
        key,
        sha256=upload.sha256,
        version=upload.version,
        verified=upload.verified,
    )


def load_parsed(
    db: IndexDB, store: Store, parsed: ParsedWarc, *, custody: CustodyLog | None = None
) -> IndexResult:
    """Store the CDXJ beside the WARC, load the rows, log the index event."""
    result = IndexResult(
        key=parsed.key,
        rows=len(parsed.values),
        texts=len(parsed.texts),
        version_id=parsed.version_id,
        problems=parsed.problems,
    )
    result.cdxj_key = _store_cdxj(store, parsed.key, parsed.cdxj)
    result.added = db.load_values(
        parsed.key,
        parsed.values,
        parsed.texts,
        warc={
            "sha256": parsed.sha256,
            "size": parsed.size,
            "run_id": parsed.run_id,
            "source": parsed.source,
            "warcinfo": parsed.warcinfo,
            "cdxj_key": result.cdxj_key,
            "indexed_at": utc_iso(),
            "version_id": parsed.version_id,
            "problems": parsed.problems,
        },
    )
    if custody is not None:
        uri = store.object_uri(parsed.key)
        # Still no capture entry (nothing recorded the upload): the values as first indexed.
        record_capture(
            custody,
            ShippedWarc(
                filename=parsed.key.rsplit("/", 1)[-1],
                key=parsed.key,
                uri=uri,
                sha256=parsed.sha256,
                size=parsed.size,
                records=None,
                version_id=parsed.version_id,
            ),
            parsed.run_id,
            verified=False,
            recorded_from=FIRST_INDEXED,
        )
        details: dict[str, Any] = {
            "sha256": parsed.sha256,
            "version_id": parsed.version_id,
            "rows": result.rows,
            "added": result.added,
            "cdxj": result.cdxj_key,
            "run_id": parsed.run_id,
            "source": parsed.source,
            # how its records' digests were checked: each recomputed, or the whole file's
            # SHA-256 equal to that of the file the spool verified record by record
            "checked": "every record's digests"
            if parsed.checked == "records"
            else "the whole file's SHA-256, as verified and uploaded",
        }
        if parsed.problems:
            details["records_left_out"] = len({p["offset"] for p in parsed.problems})
            details["problem_count"] = len(parsed.problems)
            details["problems"] = parsed.problems[:MAX_PROBLEMS_LOGGED]
        custody.append("index", uri, details)
    if parsed.problems:
        log.error(
            "indexed %s without %d record(s) that failed their checks",
            parsed.key,
            len(parsed.problems),
            extra={"rows": result.rows, "problems": len(parsed.problems)},
        )
    else:
        log.info("indexed %s", parsed.key, extra={"rows": result.rows, "added": result.added})
    return result


def index_warc(
    db: IndexDB,
    store: Store,
    key: str,
    *,
    custody: CustodyLog | None = None,
    sha256: str | None = None,
    version: str | None = None,
    verified: bool = False,
    force: bool = False,
) -> IndexResult:
    """Index one WARC; ``sha256``/``version``/``verified``: as uploaded (default: its
    ``capture`` entry's); see :func:`parse_warc`."""
    if not force and db.is_indexed(key):
        return IndexResult(key=key, skipped=True)
    upload = Upload(sha256, version, verified)
    if sha256 is None and version is None:
        upload = recorded_upload(custody, store, key)
    parsed = parse_warc(
        store, key, sha256=upload.sha256, version=upload.version, verified=upload.verified
    )
    return load_parsed(db, store, parsed, custody=custody)


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
                upload = recorded_upload(custody, store, key)
                parsed = parse_warc(
                    store,
                    key,
                    sha256=upload.sha256,
                    version=upload.version,
                    verified=upload.verified,
                )
                results.append(load_parsed(db, store, parsed, custody=custody))
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
                    upload = recorded_upload(custody, store, key)
                    pending[pool.submit(_parse_in_worker, store.uri, key, upload)] = key
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
        db,
        store,
        list(warc_keys(store)),
        custody=custody,
        force=True,
        progress=progress,
        workers=workers,
    )
