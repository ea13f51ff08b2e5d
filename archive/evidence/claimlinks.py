"""A capture linked to a claim at run time, or the link withdrawn, with its custody entry.

The one way ``attest claim link|unlink``, the service's claim actions and the ``capture_url``
DAG change a claim's run-time links: the link is kept in the index database
(:func:`archive.evidence.cases.link_capture`, :func:`~archive.evidence.cases.unlink_capture`)
and the custody log records who made or withdrew it, and why (``link`` and ``unlink``
entries). A link already active is neither made nor logged twice.
"""

from __future__ import annotations

from typing import Any

from archive.custody.log import CustodyLog
from archive.evidence.cases import (
    Case,
    RunTimeLink,
    capture_record_id,
    link_capture,
    unlink_capture,
)
from archive.index.cdxj import IndexRow
from archive.index.db import IndexDB


def record_link(
    db: IndexDB,
    custody: CustodyLog,
    case: Case,
    claim_id: str,
    capture: str,
    *,
    annotator: str,
    note: str | None = None,
    any_record_reason: str | None = None,
    via: str | None = None,
    name_record_type: bool = True,
) -> tuple[IndexRow, bool]:
    """Link a capture to a claim and log it; (the capture's row, whether the link is new).

    The ``link`` entry names the case, the claim, the URL and the note, the record's type
    (unless ``name_record_type`` is false: the ``capture_url`` DAG links only the pages it
    captured), ``via`` when given, and ``any_record_reason`` when one was given.
    """
    row, new = link_capture(
        db,
        case,
        claim_id,
        capture,
        annotator=annotator,
        note=note,
        any_record_reason=any_record_reason,
    )
    if new:
        details: dict[str, Any] = {"case": case.id, "claim": claim_id, "url": row.url, "note": note}
        if name_record_type:
            details["record_type"] = row.record_type
        if via is not None:
            details["via"] = via
        if any_record_reason is not None:
            details["any_record_reason"] = any_record_reason
        custody.append("link", row.record_id, details, actor=annotator)
    return row, new


def withdraw_link(
    db: IndexDB,
    custody: CustodyLog,
    case: Case,
    claim_id: str,
    capture: str,
    *,
    actor: str,
    reason: str,
    via: str | None = None,
) -> tuple[str, RunTimeLink]:
    """Withdraw an active run-time link and log it; (the capture's record id, the link as it
    was). The ``unlink`` entry names the case, the claim, the URL, the reason and who made the
    link, when; ``via`` when given."""
    record_id = capture_record_id(capture)
    was = unlink_capture(db, case, claim_id, record_id, actor=actor, reason=reason)
    row = db.by_record_id(record_id)
    details: dict[str, Any] = {
        "case": case.id,
        "claim": claim_id,
        "url": row.url if row else None,
        "reason": reason,
        "linked_by": was.annotator,
        "linked_at": was.linked_at,
    }
    if via is not None:
        details["via"] = via
    custody.append("unlink", record_id, details, actor=actor)
    return record_id, was
