"""Legal holds on the WARCs behind captures or claims, each one recorded in the custody log.

A hold is asked for captures (their ids, as ``attest find`` prints them) or for a case's claims
(their captures, as :func:`archive.evidence.cases.resolve` finds them). Either way, the WARCs held are
those that hold the records and everything an evidence bundle would take with them
(:mod:`archive.evidence.select`): the request, metadata and derivatives written with each capture, the
page's subresources captured in the same run, a revisit's original, the origin's TLS chain.
The bytes a court may ask for are then all under hold, not just the page.

Everything is resolved before anything is held, so an unknown capture or claim changes nothing.
Each WARC's hold is set on the object version the index read it as (the version stored at
capture), never on whatever was put under its key since; it is read back from the store, and
then appended to the custody log (action ``hold``, or ``release`` when a hold is lifted), its
object the WARC's store URI, its details the version held and what asked for it. Holding again
is harmless and recorded again.

A hold is refused, before any is placed, when a WARC's current version is not the indexed one
and its SHA-256 differs (someone put other bytes under its key): the error names each such key
with both versions, so that the overwrite is investigated (``attest audit`` names it too) and
not papered over by a hold that would look complete.

S3 has one legal-hold flag per object version, but a WARC may be held for several reasons: for
a capture, for a claim of one case and a claim of another. A release lifts only what it names,
and the flag goes OFF only when nothing else holds the WARC: the WARC's ``hold`` and
``release`` entries in the custody log say what still does (:func:`holders`). A release that
leaves other holders keeps the flag ON (set again and read back), and its entry lists them in
``kept_for``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from archive.custody.log import CustodyLog
from archive.errors import ConfigError, IntegrityError, NotFound
from archive.evidence.cases import Case, capture_record_id, resolve
from archive.evidence.select import select
from archive.index.cdxj import IndexRow
from archive.index.db import IndexDB
from archive.store import LegalHold, Store


@dataclass
class HoldPlan:
    """Which WARCs to hold, and for each one which of the asked captures or claims need it."""

    #: WARC key -> record ids of the asked captures whose evidence is in it
    captures: dict[str, set[str]] = field(default_factory=dict)
    #: WARC key -> ids of the asked claims whose evidence is in it (a hold for a case)
    claims: dict[str, set[str]] = field(default_factory=dict)
    case: str | None = None
    #: asked claims that have no capture (nothing of theirs can be held)
    gaps: list[str] = field(default_factory=list)
    #: after a release: WARC key -> what still holds it, so its hold stayed ON
    kept: dict[str, list[str]] = field(default_factory=dict)

    @property
    def warc_keys(self) -> list[str]:
        return sorted(self.captures)

    def add(self, key: str, capture: str, claim: str | None = None) -> None:
        self.captures.setdefault(key, set()).add(capture)
        if claim is not None:
            self.claims.setdefault(key, set()).add(claim)

    def holders(self, key: str) -> set[str]:
        """What this request holds (or releases) the WARC for, as :func:`holders` names it."""
        return _holders(self.details(key))

    def details(self, key: str) -> dict[str, Any]:
        """What asked for this WARC's hold, for its custody entry."""
        out: dict[str, Any] = {"captures": sorted(self.captures.get(key, ()))}
        if self.case is not None:
            out["case"] = self.case
            out["claims"] = sorted(self.claims.get(key, ()))
        return out


def _holders(details: dict[str, Any]) -> set[str]:
    """The holders a ``hold`` or ``release`` entry names: a case's claims, else captures."""
    if details.get("case") is not None:
        return {f"case {details['case']} claim {c}" for c in details.get("claims", ())}
    return {f"capture {c}" for c in details.get("captures", ())}


def holders(custody: CustodyLog, uri: str) -> set[str]:
    """What holds the WARC at ``uri`` now: its holds' holders, less those released since."""
    held: set[str] = set()
    for entry in custody.for_object(uri):
        if entry.action == "hold":
            held |= _holders(entry.details)
        elif entry.action == "release":
            held -= _holders(entry.details)
    return held


def evidence_rows(db: IndexDB, store: Store, rows: Iterable[IndexRow]) -> list[IndexRow]:
    """The rows and every record they depend on, exactly as ``attest export`` selects them."""
    return list(select(db, store, rows).rows.values())


def plan_for_captures(db: IndexDB, store: Store, capture_ids: Sequence[str]) -> HoldPlan:
    """The WARCs behind captures; :class:`NotFound` names the first id the index lacks."""
    if not capture_ids:
        raise ConfigError("give at least one capture id (or --case CASE with claim ids)")
    rows: list[IndexRow] = []
    for given in capture_ids:
        row = db.by_record_id(capture_record_id(given))
        if row is None:
            raise NotFound(f"no capture {given} in the index: nothing was held")
        rows.append(row)
    plan = HoldPlan()
    for row in rows:
        for needed in evidence_rows(db, store, [row]):
            plan.add(needed.warc_key, row.record_id)
    return plan


def plan_for_claims(
    db: IndexDB, store: Store, case: Case, claim_ids: Sequence[str] = ()
) -> HoldPlan:
    """The WARCs behind a case's claims (all of them when none is named)."""
    claims = [case.claim(c) for c in claim_ids] if claim_ids else list(case.claims)
    plan = HoldPlan(case=case.id)
    for claim in claims:
        found = resolve(db, case, claim).found
        if not found:
            plan.gaps.append(claim.id)
            continue
        for hit in found:
            for needed in evidence_rows(db, store, [hit.row]):
                plan.add(needed.warc_key, hit.row.record_id, claim.id)
    if not plan.captures:
        raise ConfigError(
            f"{case.path}: no capture for the selected claims ({', '.join(plan.gaps)}): "
            f"nothing to hold"
        )
    return plan


def pinned_versions(
    db: IndexDB, store: Store, keys: Sequence[str], *, refuse_changed: bool = True
) -> dict[str, tuple[str | None, str | None]]:
    """For each WARC key, the (object version, SHA-256) the index recorded.

    With ``refuse_changed``: :class:`~archive.errors.IntegrityError` naming every key whose
    current version is not the indexed one and holds other bytes (an overwrite)."""
    pinned: dict[str, tuple[str | None, str | None]] = {}
    changed: list[str] = []
    for key in keys:
        indexed = db.warc(key) or {}
        version, sha256 = indexed.get("version_id") or None, indexed.get("sha256") or None
        pinned[key] = (version, sha256)
        if not refuse_changed or version is None:
            continue
        current = store.current(key)
        if current is None:
            continue  # the indexed version is asked for; the store says if it is gone
        if current.version_id != version and current.sha256 != sha256:
            changed.append(
                f"{store.object_uri(key)}: its current version {current.version_id} has sha256 "
                f"{current.sha256 or '-'}, the version indexed ({version}) sha256 {sha256}"
            )
    if changed:
        raise IntegrityError(
            "not holding: other bytes were put under the key of "
            + ("these WARCs" if len(changed) > 1 else "this WARC")
            + " since they were stored, so a hold would not cover what the index and the "
            "custody log describe; nothing was held (run `attest audit` on them):\n  "
            + "\n  ".join(changed)
        )
    return pinned


def apply_holds(
    store: Store,
    custody: CustodyLog,
    plan: HoldPlan,
    *,
    on: bool = True,
    actor: str | None = None,
    note: str | None = None,
) -> list[LegalHold]:
    """Place (or lift) the plan's holds, one custody entry per WARC, and seal the log.

    A release lifts a WARC's hold only when nothing but this request holds it; otherwise the
    hold stays ON and ``plan.kept`` (and the entry's ``kept_for``) says what still holds it.
    A store without legal holds is refused before any WARC is held or recorded; a failure
    part way leaves the holds already placed recorded (they are real). Each WARC is held as
    the version its index entry names; a hold is refused, changing nothing, when a WARC's key
    now holds other bytes (:func:`pinned_versions`).
    """
    store.require_legal_holds()
    pinned = pinned_versions(custody.db, store, plan.warc_keys, refuse_changed=on)
    done: list[LegalHold] = []
    with custody.sealing(done):
        for key in plan.warc_keys:
            others = set() if on else holders(custody, store.object_uri(key)) - plan.holders(key)
            version, sha256 = pinned[key]
            hold = store.set_legal_hold(key, on=on or bool(others), version=version)
            details: dict[str, Any] = {
                "legal_hold": hold.status,
                "previous": hold.previous,
                "version_id": hold.version_id,
                "sha256": sha256,
                **plan.details(key),
            }
            if others:
                plan.kept[key] = details["kept_for"] = sorted(others)
            if note:
                details["note"] = note
            custody.append("hold" if on else "release", hold.uri, details, actor=actor)
            done.append(hold)
    return done
