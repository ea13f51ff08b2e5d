"""A source's DAG run, judged: what was captured, stored, indexed and verified, and what not.

:func:`source_report` reads what the run's tasks returned (any of them may be missing: a task
that failed returns nothing) and lists the run's problems. The run fails when there is any:

- the plan failed, or a capture batch failed (its seeds are gaps of this run);
- a batch stopped early (disk full, recorder unreachable) or left WARCs in its worker's spool;
- a WARC is not in the store as uploaded, not indexed, or failed verification;
- more than ``alert_ratio`` of the pages ended in an alert outcome (:data:`ALERT_OUTCOMES`:
  a login wall, a removed or suspended account, rate limiting, an incomplete page, an invalid
  URL, or an error): the source probably changed, blocked us, or is down.

Gaps are the seeds that did not end in a captured page (the outcome says why), and the seeds
of failed batches. :func:`render` writes the report for a task log.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from archive.outcomes import FAILURE_OUTCOMES, Outcome

ALERT_OUTCOMES = frozenset(
    {
        Outcome.LOGIN_WALL,
        Outcome.REMOVED,
        Outcome.SUSPENDED,
        Outcome.RATE_LIMITED,
        Outcome.HTTP_ERROR,
        Outcome.INCOMPLETE,
    }
    | FAILURE_OUTCOMES
)


def source_report(
    source_id: str,
    *,
    planned: Sequence[Mapping[str, Any]] | None,
    captures: Sequence[Mapping[str, Any]],
    finalized: Mapping[str, Any] | None,
    indexed: Mapping[str, Any] | None,
    verified: Mapping[str, Any] | None,
    alert_ratio: float,
    dag_id: str | None = None,
    airflow_run_id: str | None = None,
) -> dict[str, Any]:
    """The run's report (a JSON-ready dict); ``problems`` empty means the run succeeded.

    With the DAG run's ids, its ``lineage`` names the commands that list what it produced.
    """
    problems: list[str] = []
    batches = list(planned or [])
    if planned is None:
        problems.append("the plan task failed, so nothing was captured (see its log)")
    done = {int(c["batch"]) for c in captures}
    failed = [b for b in batches if int(b["index"]) not in done]
    if failed:
        labels = "; ".join(str(b["label"]) for b in failed)
        problems.append(f"{len(failed)} of {len(batches)} capture batch(es) failed: {labels}")
    for c in captures:
        if c.get("stopped"):
            problems.append(f"batch {c.get('label')} stopped early: {c['stopped']}")
        for p in c.get("pending", ()):
            problems.append(
                f"batch {c.get('label')} left {p['file']} in its worker's spool ({p['reason']}); "
                "`attest recover` there, or the next run on that worker, uploads it"
            )
    outcomes: Counter[str] = Counter()
    page_outcomes: Counter[str] = Counter()
    for c in captures:
        outcomes.update(c.get("outcomes", {}))
        page_outcomes.update(c.get("page_outcomes", {}))
    pages = sum(page_outcomes.values())
    alerts = {k: v for k, v in sorted(page_outcomes.items()) if k in ALERT_OUTCOMES}
    ratio = sum(alerts.values()) / pages if pages else 0.0
    if ratio > alert_ratio:
        shown = ", ".join(f"{k} {v}" for k, v in alerts.items())
        problems.append(
            f"{sum(alerts.values())} of {pages} pages ({ratio:.0%}) ended as {shown}: more than "
            f"the alert threshold of {alert_ratio:.0%} (ATTEST_ALERT_RATIO)"
        )
    problems.extend(_storage_problems(captures, finalized, indexed, verified))
    gaps = [
        {"seed": seed, "outcome": end.get("outcome"), "url": end.get("url")}
        for c in captures
        for seed, end in c.get("seeds", {}).items()
        if end.get("outcome") != "captured"
    ]
    gaps.extend(
        {"seed": s, "outcome": "batch_failed", "url": s} for b in failed for s in b["seeds"]
    )
    report: dict[str, Any] = {
        "source": source_id,
        "ok": not problems,
        "problems": problems,
        "batches": {"planned": len(batches), "captured": len(done), "failed": len(failed)},
        "attest_runs": [c["run_id"] for c in captures],
        "pages": pages,
        "fetches": sum(int(c.get("fetches", 0)) for c in captures),
        "records": sum(int(c.get("records", 0)) for c in captures),
        "warc_bytes": sum(int(c.get("warc_bytes", 0)) for c in captures),
        "outcomes": dict(sorted(outcomes.items())),
        "page_outcomes": dict(sorted(page_outcomes.items())),
        "alert": {"ratio": round(ratio, 4), "threshold": alert_ratio, "outcomes": alerts},
        "gaps": gaps,
        "warcs": [w["uri"] for w in (finalized or {}).get("warcs", [])],
        "indexed": (indexed or {}).get("indexed", 0),
        "verified": {k: (verified or {}).get(k, 0) for k in ("verified", "ok")},
    }
    if dag_id and airflow_run_id:
        report["lineage"] = lineage(dag_id, airflow_run_id, [str(c["run_id"]) for c in captures])
    return report


def lineage(dag_id: str, airflow_run_id: str, attest_runs: Sequence[str]) -> dict[str, Any]:
    """Links from a DAG run's report back to what it produced: ``attest find --run``."""
    run = f"{dag_id}/{airflow_run_id}"
    return {
        "dag_id": dag_id,
        "airflow_run_id": airflow_run_id,
        "run": run,
        "attest_runs": list(attest_runs),
        "find": f"attest find --run {shlex.quote(run)}",
        "find_attest_runs": [f"attest find --run {shlex.quote(r)}" for r in attest_runs],
    }


def _storage_problems(
    captures: Sequence[Mapping[str, Any]],
    finalized: Mapping[str, Any] | None,
    indexed: Mapping[str, Any] | None,
    verified: Mapping[str, Any] | None,
) -> list[str]:
    problems: list[str] = []
    if not captures:
        return problems
    if finalized is None:
        return ["the finalize task failed: the run's WARCs were not gathered (see its log)"]
    for m in finalized.get("missing", ()):
        problems.append(f"WARC {m['key']} is not in the store as uploaded: {m['reason']}")
    if indexed is None:
        count = len(finalized.get("warcs", ()))
        return [
            *problems,
            f"the index task failed: {count} stored WARC(s) are not indexed "
            "(clear the task, or run `attest index`)",
        ]
    for p in indexed.get("pending", ()):
        problems.append(f"WARC {p['key']} is not indexed: {p['reason']}")
    if verified is None:
        return [*problems, "the verify task failed: the run's WARCs were not re-read"]
    for f in verified.get("failed", ()):
        extra = int(f["problem_count"]) - len(f["problems"])
        more = f" (and {extra} more)" if extra > 0 else ""
        problems.append(f"WARC {f['uri']} failed verification: {'; '.join(f['problems'])}{more}")
    return problems


def render(report: Mapping[str, Any]) -> str:
    """The report as lines for a task log."""
    b = report["batches"]
    lines = [
        f"source {report['source']}: {'OK' if report['ok'] else 'FAILED'}",
        f"  batches {b['captured']} of {b['planned']} captured, pages {report['pages']}, "
        f"fetches {report['fetches']}, records {report['records']}, "
        f"WARC bytes {report['warc_bytes']:,}",
        "  page outcomes: "
        + (", ".join(f"{k} {v}" for k, v in report["page_outcomes"].items()) or "none"),
        f"  WARCs stored {len(report['warcs'])}, indexed {report['indexed']}, "
        f"verified {report['verified']['ok']} of {report['verified']['verified']}",
    ]
    incomplete = report["page_outcomes"].get(Outcome.INCOMPLETE.value)
    if incomplete:
        lines.append(
            f"  INCOMPLETE {incomplete} page(s): their content never appeared within the bound, "
            "even on a second try (not counted as captured; their metadata's capture.wait "
            "says what was missing)"
        )
    if report.get("lineage"):
        lines.append(f"  what the run produced: {report['lineage']['find']}")
    lines.extend(f"  stored {uri}" for uri in report["warcs"])
    lines.extend(f"  GAP {g['seed']}: {g['outcome']}" for g in report["gaps"])
    lines.extend(f"  PROBLEM {p}" for p in report["problems"])
    return "\n".join(lines)
