"""In-system verification: re-read stored WARCs and record what was found in the custody log.

:func:`audit_warcs` is the pipeline's own check of the evidence it keeps (``attest audit``, and
the verify task of the Airflow DAG), as opposed to a stranger's ``attest verify`` of a file or
bundle handed to them. For each WARC it reads the object back from the store and checks

- the SHA-256 of the whole object against the one recorded when it was captured (the custody
  log's ``capture`` entry), else the one the index recorded when it first read the WARC;
- its size the same way;
- every record's block and payload digests and its structure (:func:`archive.warc.read.verify_warc`);
- that the key's current version is the version that was stored: the object read and checked
  is the stored version (the ``capture`` entry's, else the index's), and a later version put
  under the same key (an overwrite, in a versioned bucket) is named as a failure;

and appends one custody entry per WARC, action ``verify``, object the WARC's store URI, with the
result: ``ok``, the SHA-256 found and the one expected (and where that was recorded), the
records read, and each failure. A damaged or missing object is a result (``ok: false``), never
an exception; a store that cannot be reached raises (:class:`~archive.errors.StorageError`),
since nothing was learnt about the evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.custody.log import CustodyLog
from archive.errors import NotFound
from archive.index.db import IndexDB
from archive.store import Store, open_object
from archive.warc.read import verify_warc

log = logging.getLogger(__name__)

#: Failures written into one custody entry; the count says how many there were in all.
MAX_PROBLEMS_RECORDED = 50


@dataclass
class AuditResult:
    key: str
    uri: str
    sha256: str | None = None  # of the bytes read back; None when the object is missing
    expected_sha256: str | None = None
    #: where the expected SHA-256 was recorded: "capture" (custody log), "index", or None
    expected_from: str | None = None
    size: int | None = None  # of the bytes read back
    expected_size: int | None = None
    #: the object version read (the one stored at capture), where the store has versions
    version_id: str | None = None
    #: the key's current version and its SHA-256, when it is not the version read
    current_version: str | None = None
    current_sha256: str | None = None
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "ok": self.ok}


def indexed_warc_keys(db: IndexDB) -> list[str]:
    """Every WARC the index database knows, in key order."""
    return [str(k) for (k,) in db.rows("SELECT warc_key FROM warcs ORDER BY warc_key")]


def audit_warcs(
    store: Store,
    db: IndexDB,
    custody: CustodyLog,
    keys: Iterable[str] | None = None,
    *,
    actor: str | None = None,
    context: dict[str, Any] | None = None,
    progress: Callable[[AuditResult], None] | None = None,
) -> list[AuditResult]:
    """Verify each WARC (all indexed ones by default), one ``verify`` custody entry each.

    ``context`` goes into every entry's details (who ran the check: ``{"via": "attest audit"}``,
    a DAG run's ids); the log is sealed at the end.
    """
    todo = indexed_warc_keys(db) if keys is None else list(keys)
    results: list[AuditResult] = []
    with custody.sealing(results):
        for key in todo:
            result = _audit_one(store, db, custody, key)
            custody.append("verify", result.uri, _details(result, context), actor=actor)
            log.info(
                "verified %s: %s",
                key,
                "ok" if result.ok else "FAILED",
                extra={"warc": result.uri, "ok": result.ok, "problems": len(result.problems)},
            )
            results.append(result)
            if progress is not None:
                progress(result)
    return results


def _recorded(custody: CustodyLog, db: IndexDB, uri: str, key: str) -> AuditResult:
    """What was recorded about the WARC: at capture (custody log), else at indexing."""
    result = AuditResult(key=key, uri=uri)
    captures = [e for e in custody.for_object(uri) if e.action == "capture"]
    indexed = db.warc(key)
    index_sha = str(indexed["sha256"]) if indexed and indexed.get("sha256") else None
    index_size = int(indexed["size"]) if indexed and indexed.get("size") is not None else None
    if captures:
        first = captures[0].details
        result.expected_sha256 = first.get("sha256")
        result.expected_from = "capture"
        result.version_id = first.get("version_id")
        for later in captures[1:]:
            if later.details.get("sha256") != result.expected_sha256:
                result.problems.append(
                    f"custody entry {later.seq} records sha256 {later.details.get('sha256')}, "
                    f"entry {captures[0].seq} {result.expected_sha256}"
                )
        if index_sha and index_sha != result.expected_sha256:
            result.problems.append(
                f"the index recorded sha256 {index_sha}, the capture {result.expected_sha256}"
            )
        if first.get("size") is not None:
            result.expected_size = int(first["size"])
    elif index_sha:
        result.expected_sha256 = index_sha
        result.expected_from = "index"
    else:
        result.problems.append(
            "no SHA-256 was recorded for this WARC (no capture entry in the custody log, "
            "not in the index): nothing to compare with"
        )
    if result.version_id is None and indexed:
        result.version_id = indexed.get("version_id") or None
    if result.expected_size is None:
        result.expected_size = index_size
    return result


def _audit_one(store: Store, db: IndexDB, custody: CustodyLog, key: str) -> AuditResult:
    uri = store.object_uri(key)
    result = _recorded(custody, db, uri, key)
    local = store.local_path(key)
    if local is None:
        # A store with versions: is the key's current version still the one stored?
        current = store.current(key)
        if current is None and result.version_id is None:
            result.problems.append(f"missing: the store has no object {uri}")
            return result
        if current is not None and result.version_id and current.version_id != result.version_id:
            result.current_version, result.current_sha256 = current.version_id, current.sha256
            result.problems.append(
                f"overwritten: the key's current version is {current.version_id} (sha256 "
                f"{current.sha256 or '-'}), not version {result.version_id} stored at "
                f"{result.expected_from}: another object was put under this key; the stored "
                "version is what attest reads, checks and holds"
            )
    elif not local.is_file():
        result.problems.append(f"missing: the store has no object {uri}")
        return result
    try:
        with open_object(store, key, version=result.version_id) as (handle, size):
            verdict = verify_warc(Path(key), keep_records=False, handle=handle)
    except NotFound:
        what = f" version {result.version_id}" if result.version_id else ""
        result.problems.append(f"missing: the store has no object {uri}{what}")
        return result
    result.sha256 = verdict.sha256
    result.size = size
    result.records = verdict.record_count
    if result.expected_sha256 and result.sha256 != result.expected_sha256:
        result.problems.append(
            f"sha256: the stored object's is {result.sha256}, recorded at "
            f"{result.expected_from} {result.expected_sha256}"
        )
    if result.expected_size is not None and result.size != result.expected_size:
        result.problems.append(
            f"size: the stored object has {result.size} bytes, {result.expected_size} were recorded"
        )
    for problem in verdict.problems:
        rid = f" record {problem.record_id}" if problem.record_id else ""
        result.problems.append(f"{problem.check} at offset {problem.offset}{rid}: {problem.detail}")
    return result


def _details(result: AuditResult, context: dict[str, Any] | None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "ok": result.ok,
        "sha256": result.sha256,
        "expected_sha256": result.expected_sha256,
        "expected_from": result.expected_from,
        "size": result.size,
        "expected_size": result.expected_size,
        "version_id": result.version_id,
        "records": result.records,
    }
    if result.current_version is not None:
        details["current_version"] = result.current_version
        details["current_sha256"] = result.current_sha256
    if result.problems:
        details["problems"] = result.problems[:MAX_PROBLEMS_RECORDED]
        details["problem_count"] = len(result.problems)
    return {**(context or {}), **details}
