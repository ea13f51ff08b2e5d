"""The steps of a DAG run after its captures: finalize, index, verify, link, keep the report.

Plain functions over ids, URIs and small stats (what XCom carries), so the tasks in ``dags/``
only fetch their arguments and call one of these; none of them knows Airflow.

- :func:`finalize_run` gathers the WARCs each capture batch shipped (and those it recovered
  from dead runs on its worker) and confirms each one in the store. The batches seal, verify
  and upload their own WARCs before they end, because a worker's spool is its own disk.
- :func:`index_run` logs each WARC in the custody log (``capture``) and indexes it, as
  ``attest crawl`` does after upload (:func:`crawlers.run.index_runs`).
- :func:`verify_run` re-reads each WARC from the store and records a ``verify`` entry
  (:func:`archive.audit.audit_warcs`, as ``attest audit``).
- :func:`link_run` links the captures of a ``capture_url`` run to a claim, as
  ``attest claim link`` does.
- :func:`store_report` keeps a run's report beside the WARCs, under ``runs/airflow/``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
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
    for warc in warcs:
        found = store.stat(warc["key"])
        if found is None:
            missing.append({"key": warc["key"], "reason": "not in the store"})
        elif found.size != warc["size"] or (found.sha256 and found.sha256 != warc["sha256"]):
            missing.append({
                "key": warc["key"],
                "reason": f"the store has {found.size} bytes, sha256 {found.sha256 or '-'}; "
                          f"{warc['size']} bytes, sha256 {warc['sha256']} were uploaded",
            })  # fmt: skip
        else:
            stored.append(warc)
    return {"warcs": stored, "missing": missing}


def index_run(warcs: Sequence[Mapping[str, Any]], index_url: str, store: Store) -> dict[str, Any]:
    """Custody ``capture`` entries and index rows for the run's WARCs; pending ones listed."""
    from archive.ship import ShippedWarc
    from crawlers.run import index_runs

    shipped = [
        (
            ShippedWarc(
                filename=w["filename"], key=w["key"], uri=w["uri"], sha256=w["sha256"],
                size=int(w["size"]), records=int(w["records"]),
            ),
            str(w["run_id"]),
        )
        for w in warcs
    ]  # fmt: skip
    indexed, pending = index_runs(shipped, index_url, store)
    done = {k for k, _ in pending}
    return {
        "indexed": indexed,
        "keys": [w["key"] for w in warcs if w["key"] not in done],
        "records": sum(int(w["records"]) for w in warcs if w["key"] not in done),
        "pending": [{"key": k, "reason": r} for k, r in pending],
    }


def verify_run(
    keys: Sequence[str],
    index_url: str,
    store: Store,
    *,
    actor: str,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Re-read each WARC from the store and check it; one custody ``verify`` entry each."""
    if not keys:
        return {"verified": 0, "ok": 0, "failed": []}
    from archive.audit import audit_warcs
    from archive.custody import CustodyLog
    from archive.indexdb import IndexDB

    with IndexDB(index_url) as db:
        results = audit_warcs(
            store, db, CustodyLog(db, store), list(keys), actor=actor, context=dict(context)
        )
    failed = [
        {"key": r.key, "uri": r.uri, "problems": r.problems[:PROBLEMS_SHOWN],
         "problem_count": len(r.problems)}
        for r in results if not r.ok
    ]  # fmt: skip
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
) -> dict[str, Any]:
    """Link each URL's capture to the claim, with a custody ``link`` entry for each new link.

    ``seeds`` maps each URL asked for to where it ended (:func:`crawlers.job.seed_results`):
    a URL is linked when its page was captured; any other outcome is listed as not linked.
    """
    from archive.cases import find_case, link_capture
    from archive.custody import CustodyLog
    from archive.indexdb import IndexDB

    case = find_case(case_name, case_dirs)
    case.claim(claim_id)
    linked: list[dict[str, Any]] = []
    not_linked: list[dict[str, Any]] = []
    with IndexDB(index_url) as db:
        custody = CustodyLog(db, store)
        for url, end in seeds.items():
            if end.get("outcome") != "captured" or not end.get("capture_id"):
                not_linked.append({"url": url, "outcome": end.get("outcome")})
                continue
            row, new = link_capture(
                db, case, claim_id, str(end["capture_id"]), annotator=annotator, note=note
            )
            if new:
                custody.append(
                    "link", row.record_id,
                    {"case": case.id, "claim": claim_id, "url": row.url, "note": note},
                    actor=annotator,
                )  # fmt: skip
            linked.append({"url": url, "capture": row.record_id, "captured_url": row.url,
                           "new": new})  # fmt: skip
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
