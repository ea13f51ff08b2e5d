"""The steps of a DAG run after its captures: finalize, index, verify, link, keep the report.

Plain functions over ids, URIs and small stats (what XCom carries), so the tasks in ``dags/``
only fetch their arguments and call one of these; none of them knows Airflow.

- :func:`finalize_run` gathers the WARCs each capture batch shipped (and those it recovered
  from dead runs on its worker) and confirms each one in the store. The batches seal, verify
  and upload their own WARCs before they end, because a worker's spool is its own disk.
- :func:`index_run` logs each WARC in the custody log (``capture``) and indexes it, as
  ``attest crawl`` does after upload (:func:`crawlers.orchestration.run.index_runs`).
- :func:`verify_run` re-reads each WARC from the store and records a ``verify`` entry
  (:func:`archive.custody.audit.audit_warcs`, as ``attest audit``).
- :func:`link_run` links the captures of a ``capture_url`` run to a claim, as
  ``attest claim link`` does.
- :func:`store_report` keeps a run's report beside the WARCs, under ``runs/airflow/``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.store import Store, file_sha256

log = logging.getLogger(__name__)

#: Problems of one WARC kept in a verify result (the custody entry has them all).
PROBLEMS_SHOWN = 5


def finalize_run(captures: Sequence[Mapping[str, Any]], store: Store) -> dict[str, Any]:
    """The run's stored WARCs, each with the attest run and batch that wrote it.

    A WARC the store does not have (or has with another size or SHA-256) is listed as missing
    and left out; the report fails the run for it.
    """
    warcs: list[dict[str, Any]] = []
    for result in captures:
        batch = result.get("batch")
        warcs.extend({**w, "run_id": result["run_id"], "batch": batch} for w in result["warcs"])
        for rec in result.get("recovered", ()):
            warcs.extend(
                {**w, "run_id": rec["run_id"], "batch": batch, "recovered": True}
                for w in rec["warcs"]
            )
    stored: list[dict[str, Any]] = []
    missing: list[dict[str, str]] = []
    seen: set[str] = set()
    for warc in warcs:
        # A WARC a dead try shipped can come back twice: re-shipped by the retry's recovery of
        # that try's spool, and found in the store under that try's run id (earlier_warcs).
        if warc["key"] in seen:
            continue
        seen.add(warc["key"])
        found = store.stat(warc["key"])
        if found is None:
            missing.append({"key": warc["key"], "reason": "not in the store"})
        elif found.size != warc["size"] or (found.sha256 and found.sha256 != warc["sha256"]):
            missing.append(
                {
                    "key": warc["key"],
                    "reason": f"the store has {found.size} bytes, sha256 {found.sha256 or '-'}; "
                    f"{warc['size']} bytes, sha256 {warc['sha256']} were uploaded",
                }
            )
        else:
            stored.append(warc)
    return {"warcs": stored, "missing": missing}


def earlier_warcs(
    store: Store,
    source_id: str,
    run_ids: Sequence[str],
    since: date,
    *,
    known: Collection[str] = (),
    today: date | None = None,
) -> list[dict[str, Any]]:
    """The WARCs earlier tries of a capture task (attest ``run_ids``) left in the store.

    A try that died after shipping some or all of its WARCs, but before it could return them,
    leaves them in the store under its run id (the last part of each WARC's name). A retry
    finds them here, in the source's days from ``since`` to ``today``; a retry on the same
    worker also ships what the dead try left in the spool (crawlers.orchestration.run.run_capture recovers
    dead spools first). Each entry is as :func:`finalize_run` takes them: ``{"run_id",
    "warcs", "pending"}``; ``known`` keys (returned by this try) are left out.
    """
    suffixes = {rid.replace("-", "")[:8]: rid for rid in run_ids}
    found: dict[str, list[dict[str, Any]]] = {}
    day = since
    last = today or datetime.now(UTC).date()
    while day <= last:
        prefix = f"warcs/{source_id}/{day:%Y/%m/%d}/"  # as archive.ingest.spool.store_key
        for key in store.keys(prefix):
            name = key.rsplit("/", 1)[1]
            if not name.endswith(".warc.gz") or key in known:
                continue
            rid = suffixes.get(name.removesuffix(".warc.gz").rsplit("-", 1)[-1])
            stat = store.stat(key) if rid else None
            if rid is None or stat is None:
                continue
            found.setdefault(rid, []).append(
                {
                    "filename": name,
                    "key": key,
                    "uri": stat.uri,
                    "sha256": stat.sha256,
                    "size": stat.size,
                    "records": None,
                    "version_id": stat.version_id,
                }
            )
        day += timedelta(days=1)
    return [
        {"run_id": rid, "warcs": warcs, "pending": [], "earlier_try": True}
        for rid, warcs in found.items()
    ]


def index_run(
    warcs: Sequence[Mapping[str, Any]], index_url: str, store: Store, *, attestor: Any = None
) -> dict[str, Any]:
    """Custody ``capture`` entries and index rows for the run's WARCs; pending ones listed."""
    from archive.ingest.ship import ShippedWarc
    from crawlers.orchestration.run import index_runs

    shipped = [
        (
            ShippedWarc(
                filename=w["filename"],
                key=w["key"],
                uri=w["uri"],
                sha256=w["sha256"],
                size=int(w["size"]),
                records=None if w.get("records") is None else int(w["records"]),
                version_id=w.get("version_id"),
            ),
            str(w["run_id"]),
        )
        for w in warcs
    ]
    indexed, pending = index_runs(shipped, index_url, store, attestor=attestor)
    done = {k for k, _ in pending}
    ok = [w for w in warcs if w["key"] not in done]
    counted = sum(int(w["records"]) for w in ok if w.get("records"))
    uncounted = [w["key"] for w in ok if not w.get("records")]
    return {
        "indexed": indexed,
        "keys": [w["key"] for w in ok],
        "records": counted + _indexed_records(index_url, uncounted),
        "pending": [{"key": k, "reason": r} for k, r in pending],
    }


def _indexed_records(index_url: str, keys: Sequence[str]) -> int:
    """Records of WARCs shipped without a count (found in the store after their try died), as
    the index counted them."""
    if not keys:
        return 0
    from archive.index.db import IndexDB

    with IndexDB(index_url) as db:
        return sum(int((db.warc(k) or {}).get("records") or 0) for k in keys)


def verify_run(
    keys: Sequence[str],
    index_url: str,
    store: Store,
    *,
    actor: str,
    context: Mapping[str, Any],
    attestor: Any = None,
) -> dict[str, Any]:
    """Re-read each WARC from the store and check it; one custody ``verify`` entry each."""
    if not keys:
        return {"verified": 0, "ok": 0, "failed": []}
    from archive.custody.audit import audit_warcs
    from archive.custody.log import CustodyLog
    from archive.index.db import IndexDB

    with IndexDB(index_url) as db:
        results = audit_warcs(
            store,
            db,
            CustodyLog(db, store, attestor=attestor),
            list(keys),
            actor=actor,
            context=dict(context),
        )
    failed = [
        {
            "key": r.key,
            "uri": r.uri,
            "problems": r.problems[:PROBLEMS_SHOWN],
            "problem_count": len(r.problems),
        }
        for r in results
        if not r.ok
    ]
    return {"verified": len(results), "ok": len(results) - len(failed), "failed": failed}


def link_run(
    seeds: Mapping[str, Mapping[str, Any]],
    *,
    case_name: str,
    claim_id: str,
    case_dirs: list[Path],
    index_url: str,
    store: Store,
    annotator: str,
    note: str | None = None,
    attestor: Any = None,
) -> dict[str, Any]:
    """Link each URL's capture to the claim, with a custody ``link`` entry for each new link.

    ``seeds`` maps each URL asked for to where it ended (:func:`crawlers.orchestration.job.seed_results`):
    a URL is linked when its page was captured; any other outcome is listed as not linked.
    """
    from archive.custody.log import CustodyLog
    from archive.evidence.cases import find_case
    from archive.evidence.claimlinks import record_link
    from archive.index.db import IndexDB

    case = find_case(case_name, case_dirs)
    case.claim(claim_id)
    linked: list[dict[str, Any]] = []
    not_linked: list[dict[str, Any]] = []
    with IndexDB(index_url) as db:
        custody = CustodyLog(db, store, attestor=attestor)
        for url, end in seeds.items():
            if end.get("outcome") != "captured" or not end.get("capture_id"):
                not_linked.append({"url": url, "outcome": end.get("outcome")})
                continue
            row, new = record_link(
                db,
                custody,
                case,
                claim_id,
                str(end["capture_id"]),
                annotator=annotator,
                note=note,
                name_record_type=False,
            )
            linked.append(
                {"url": url, "capture": row.record_id, "captured_url": row.url, "new": new}
            )
    return {"case": case.id, "claim": claim_id, "linked": linked, "not_linked": not_linked}


def report_key(dag_id: str, run_id: str, try_number: int) -> str:
    """Where a DAG run's report is kept in the store (one object per try: keys are immutable)."""
    safe_run = run_id.replace("/", "_")
    return f"runs/airflow/{dag_id}/{safe_run}/report-{try_number}.json"


def store_report(store: Store, key: str, report: Mapping[str, Any]) -> str:
    """Upload the report as JSON under ``key``; returns its URI."""
    with tempfile.TemporaryDirectory(prefix="attest-report-") as tmp:
        path = Path(tmp) / "report.json"
        path.write_text(json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False))
        stored = store.put_file(key, path, file_sha256(path))
    return stored.uri
