"""Moving finished WARCs from a spool to the store: verify, upload, verify, then delete.

A WARC leaves the spool only after (1) every record digest in it has been recomputed, (2) the
store has accepted it under its immutable key and (3) the store's own SHA-256 of the whole
object equals ours. If the store is down, files stay in the spool and the report says so; a
later run or ``attest recover`` ships them. A file that fails verification is never uploaded.

Each stored WARC then gets one ``capture`` entry in the custody log (:func:`record_capture`):
its SHA-256, size, records, the object version the store gave it and the attest run that wrote
it, whichever way it reached the store (a run, a later run's recovery, ``attest recover``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive import failpoints
from archive.custody.log import CustodyLog
from archive.errors import AttestError, IntegrityError, StorageError
from archive.ingest.spool import (
    WARC_NAME,
    RunSpool,
    SealResult,
    dead_spools,
    seal_open_file,
    source_of,
    store_key,
)
from archive.store import Store, file_sha256
from archive.warc.read import verify_warc

log = logging.getLogger(__name__)


@dataclass
class ShippedWarc:
    filename: str
    key: str
    uri: str
    sha256: str
    size: int
    #: None when not counted: a WARC found in the store after the try that shipped it died
    #: (its ``index`` custody entry counts its rows).
    records: int | None
    #: The object version the store created for it (None where the store has no versions).
    version_id: str | None = None


@dataclass
class ShipReport:
    run_id: str
    shipped: list[ShippedWarc] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    sealed: list[SealResult] = field(default_factory=list)
    ledger_key: str | None = None

    @property
    def complete(self) -> bool:
        return not self.pending

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "shipped": [vars(s) for s in self.shipped],
            "pending": [{"file": f, "reason": r} for f, r in self.pending],
            "sealed": [
                {
                    "file": str(s.path) if s.path else None,
                    "records": s.records,
                    "cut_bytes": s.cut_bytes,
                }
                for s in self.sealed
            ],
            "ledger_key": self.ledger_key,
        }


def ship_spool(spool: RunSpool, store: Store, *, seal_open: bool = False) -> ShipReport:
    """Ship every closed WARC of a spool; with ``seal_open``, close interrupted files first."""
    report = ShipReport(run_id=spool.run_id)
    if seal_open:
        for path in spool.open_files():
            try:
                report.sealed.append(seal_open_file(path))
            except IntegrityError as exc:
                report.pending.append((str(path), str(exc)))
    for path in spool.closed_files():
        try:
            report.shipped.append(ship_file(path, store))
        except IntegrityError as exc:
            log.error("not uploading %s: %s", path, exc)
            report.pending.append((str(path), str(exc)))
        except StorageError as exc:
            log.warning("keeping %s in the spool: %s", path, exc)
            report.pending.append((str(path), str(exc)))
    if not report.pending and not spool.open_files():
        report.ledger_key = _ship_ledger(spool, store, report)
        if report.ledger_key is not None or not (spool.path / "ledger.jsonl").exists():
            spool.remove_if_done()
    return report


def ship_file(path: Path, store: Store) -> ShippedWarc:
    verdict = verify_warc(path, keep_records=False)
    if not verdict.ok:
        raise IntegrityError(f"{path}: {verdict.problems[0]}")
    sha256 = verdict.sha256 or file_sha256(path)
    key = store_key(path.name, source_of(path.name))
    failpoints.failpoint("ship.before-put")
    stored = store.put_file(key, path, sha256)
    shipped = ShippedWarc(
        path.name, key, stored.uri, sha256, stored.size, verdict.record_count, stored.version_id
    )
    failpoints.failpoint("ship.after-put")
    path.unlink()
    log.info("uploaded %s", stored.uri, extra={"sha256": sha256, "records": shipped.records})
    return shipped


def run_base(started: str, run_id: str) -> str:
    """Where a run's ledger and ship report are kept in the store."""
    return f"runs/{started[:10].replace('-', '/') or 'unknown'}/{run_id}"


def upload_record(store: Store, key: str) -> tuple[dict[str, Any], str] | None:
    """What the run that shipped the WARC at ``key`` recorded of its upload (an entry of its
    ship report: sha256, size, records, version_id), and the report's key; None if not found.

    The report is kept under the day the run started (``runs/<yyyy>/<mm>/<dd>/<run id>/``): the
    WARC's own day (in its file name) or one of the two before it, for a long run.
    """
    from datetime import datetime, timedelta

    name = key.rsplit("/", 1)[-1]
    match = WARC_NAME.match(name)
    if match is None:
        return None
    day = datetime.strptime(match["ts"][:8], "%Y%m%d")
    for back in range(3):
        prefix = f"runs/{(day - timedelta(days=back)):%Y/%m/%d}/{match['run']}"
        for report_key in store.keys(prefix):
            if not report_key.endswith("/run-report.json"):
                continue
            try:
                with store.open(report_key) as handle:
                    report = json.loads(handle.read())
            except (AttestError, ValueError) as exc:
                log.warning("cannot read %s: %s", report_key, exc)
                continue
            for entry in report.get("ship", {}).get("shipped", []):
                if entry.get("key") == key:
                    return {**entry, "run_id": report.get("ship", {}).get("run_id")}, report_key
    return None


def _ship_ledger(spool: RunSpool, store: Store, report: ShipReport) -> str | None:
    """The run's ledger and ship report, kept beside the WARCs (``runs/<run id>/``)."""
    ledger = spool.path / "ledger.jsonl"
    info = spool.info()
    base = run_base(str(info.get("started", "")), spool.run_id)
    try:
        for name in ("ledger.jsonl", "recorder.log"):
            path = spool.path / name
            if path.exists():
                store.put_file(f"{base}/{name}", path, file_sha256(path))
        summary = spool.path / "run-report.json"
        summary.write_text(
            json.dumps({"run": info, "ship": report.as_dict()}, indent=1, sort_keys=True)
        )
        store.put_file(f"{base}/run-report.json", summary, file_sha256(summary))
        summary.unlink()
    except StorageError as exc:
        report.pending.append((str(ledger), str(exc)))
        return None
    return f"{base}/ledger.jsonl"


def record_capture(
    custody: CustodyLog,
    warc: ShippedWarc,
    run_id: str | None,
    *,
    verified: bool,
    recorded_from: str | None = None,
) -> bool:
    """The WARC's ``capture`` custody entry, once per WARC (a retried step logs nothing twice);
    True when it was added now. ``verified``: these are the values of a file the spool verified
    record by record before uploading it (``verified_before_upload``), so the index may check
    the whole file's hash against them instead of every record's digests. ``recorded_from``:
    where the values come from, when it is not the upload itself (the run's ship report in the
    store; the first indexing of the WARC)."""
    if any(e.action == "capture" for e in custody.for_object(warc.uri)):
        return False
    details: dict[str, Any] = {
        "sha256": warc.sha256,
        "size": warc.size,
        "records": warc.records,
        "run_id": run_id,
        "verified_before_upload": verified,
    }
    if warc.version_id is not None:
        details["version_id"] = warc.version_id
    if recorded_from is not None:
        details["recorded_from"] = recorded_from
    custody.append("capture", warc.uri, details)
    return True


def recover(spool_root: Path, store: Store) -> list[ShipReport]:
    """Seal and ship every spool whose run is dead (``attest recover`` and each new run)."""
    reports = []
    for spool in dead_spools(spool_root):
        try:
            reports.append(ship_spool(spool, store, seal_open=True))
        finally:
            spool.release()
    return reports
