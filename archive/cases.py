"""Case files (``cases/*.yaml``): claims, and the captures that are their evidence.

A claim's evidence is declared in its case file, as

- ``url`` (with ``match: exact|prefix`` and an optional ``from``/``to`` date range): the pages
  captured at that URL in that period;
- ``capture``: one capture by its id (the UUID of its WARC record);
- ``query``: ``{source, from, to}``: the pages a registry source captured in a period;

each optionally with a ``selector`` (a text quote the page must show), an ``annotator`` and a
``note``. Links made at run time (``attest claim link``) live in the index database
(``claim_links``), beside the declared ones; both count. Like the custody log, that table is
not derived from the WARCs and an index rebuild never touches it.

Every error names the file, the claim and the field (``cases/x.yaml: claim 'C2', field
'evidence[0].from': ...``), and nothing is changed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from archive.cdxj import IndexRow, surt_key
from archive.cdxquery import search_range
from archive.custody import utc_iso
from archive.dates import parse_when
from archive.errors import CaseError, ConfigError, NotFound
from archive.indexdb import IndexDB
from archive.schemaerrors import first_error

#: Record types that are a claim's evidence in themselves (pages, API answers, derivatives).
EVIDENCE_TYPES = ("response", "revisit", "resource")

_LINKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS claim_links (
    case_id TEXT NOT NULL, claim_id TEXT NOT NULL, record_id TEXT NOT NULL,
    annotator TEXT NOT NULL, note TEXT, linked_at TEXT NOT NULL,
    PRIMARY KEY (case_id, claim_id, record_id)
)
"""


@dataclass(frozen=True)
class Evidence:
    """One declared link from a claim to captures."""

    url: str | None = None
    match: str = "exact"
    ts_from: int | None = None
    ts_to: int | None = None
    capture: str | None = None  # <urn:uuid:...>
    source: str | None = None  # a query by source
    quote: str | None = None
    annotator: str | None = None
    note: str | None = None

    def describe(self) -> str:
        if self.capture:
            return f"capture {self.capture}"
        if self.source:
            return f"source {self.source}"
        return f"{self.match} {self.url}"


@dataclass
class Claim:
    id: str
    text: str
    source: str
    kind: str = "claim"
    notes: str | None = None
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Case:
    id: str
    title: str
    path: str
    claims: list[Claim]
    description: str | None = None

    def claim(self, claim_id: str) -> Claim:
        for claim in self.claims:
            if claim.id == claim_id:
                return claim
        known = ", ".join(c.id for c in self.claims)
        raise CaseError(self.path, claim_id, None, f"no such claim (claims: {known})")


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    text = resources.files("archive").joinpath("case_schema.yaml").read_text(encoding="utf-8")
    return Draft202012Validator(yaml.safe_load(text))


def parse_case(doc: Any, path: str) -> Case:
    if not isinstance(doc, dict):
        raise CaseError(path, None, None, "expected a mapping with id, title and claims")
    found = first_error(_validator(), doc, "claims")
    if found is not None:
        claim, name, error = found
        message = error.message
        if error.validator == "oneOf":
            message = "give exactly one of url (with optional match/from/to), capture or query"
        raise CaseError(path, claim, name, message)
    claims: list[Claim] = []
    seen: set[str] = set()
    for raw in doc["claims"]:
        cid = raw["id"]
        if cid in seen:
            raise CaseError(path, cid, "id", "duplicate claim id")
        seen.add(cid)
        evidence = []
        for i, link in enumerate(raw.get("evidence") or []):
            evidence.append(_evidence(link, path, cid, f"evidence[{i}]"))
        claims.append(
            Claim(
                cid,
                raw["text"],
                raw["source"],
                raw.get("kind", "claim"),
                raw.get("notes"),
                evidence,
            )
        )
    return Case(doc["id"], doc["title"], path, claims, doc.get("description"))


def _evidence(link: dict[str, Any], path: str, claim: str, where: str) -> Evidence:
    def when(raw: Any, name: str, bound: Any) -> int | None:
        if raw is None:
            return None
        try:
            return parse_when(str(raw), bound=bound, what=name)
        except ConfigError as exc:
            raise CaseError(path, claim, f"{where}.{name}", str(exc)) from None

    query = link.get("query") or {}
    ts_from = when(link.get("from", query.get("from")), "from", "low")
    ts_to = when(link.get("to", query.get("to")), "to", "high")
    if ts_from is not None and ts_to is not None and ts_from > ts_to:
        raise CaseError(path, claim, f"{where}.from", "is after 'to'")
    capture = link.get("capture")
    if capture:
        capture = capture_record_id(capture)
    return Evidence(
        url=link.get("url"), match=link.get("match", "exact"), ts_from=ts_from, ts_to=ts_to,
        capture=capture, source=query.get("source"),
        quote=(link.get("selector") or {}).get("quote"), annotator=link.get("annotator"),
        note=link.get("note"),
    )  # fmt: skip


def capture_record_id(value: str) -> str:
    """``<urn:uuid:...>`` from a capture id given as a UUID or a record id."""
    match = re.fullmatch(r"<?(?:urn:uuid:)?([0-9a-fA-F-]{36})>?", value.strip())
    if not match:
        raise ConfigError(f"{value!r} is not a capture id (a UUID such as 3f2a...-...)")
    return f"<urn:uuid:{match.group(1).lower()}>"


def load_case(path: Path) -> Case:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseError(str(path), None, None, f"cannot read: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CaseError(str(path), None, None, f"not valid YAML: {exc}") from None
    return parse_case(doc, str(path))


def find_case(name: str, directories: list[Path]) -> Case:
    """A case by file path, or by id among ``*.yaml`` in the given directories."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{name}: no such case file")
        return load_case(path)
    for directory in directories:
        for candidate in sorted(directory.glob("*.y*ml")):
            case = load_case(candidate)
            if case.id == name:
                return case
    where = ", ".join(str(d) for d in directories) or "no case directory"
    raise ConfigError(f"no case with id {name!r} (looked in {where}); give the file's path")


# --- links made at run time ----------------------------------------------------------------


def ensure_links_table(db: IndexDB) -> None:
    db.execute(_LINKS_SCHEMA)


def link_capture(
    db: IndexDB, case: Case, claim_id: str, capture: str, *, annotator: str, note: str | None = None
) -> tuple[IndexRow, bool]:
    """Record that a capture is evidence of a claim; (the capture's row, whether it is new)."""
    case.claim(claim_id)
    record_id = capture_record_id(capture)
    row = db.by_record_id(record_id)
    if row is None:
        raise NotFound(f"no capture {capture} in the index")
    ensure_links_table(db)
    before = db.rows(
        "SELECT 1 FROM claim_links WHERE case_id = ? AND claim_id = ? AND record_id = ?",
        (case.id, claim_id, record_id),
    )
    if before:
        return row, False
    db.execute(
        "INSERT INTO claim_links (case_id, claim_id, record_id, annotator, note, linked_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (case.id, claim_id, record_id, annotator, note, utc_iso()),
    )
    return row, True


def run_time_links(db: IndexDB, case: Case, claim_id: str) -> list[tuple[str, str, str | None]]:
    ensure_links_table(db)
    return [
        (str(r), str(a), n)
        for r, a, n in db.rows(
            "SELECT record_id, annotator, note FROM claim_links WHERE case_id = ? AND claim_id = ? "
            "ORDER BY linked_at",
            (case.id, claim_id),
        )
    ]


# --- resolving claims to captures -------------------------------------------------------------


@dataclass
class Found:
    row: IndexRow
    via: str  # which link found it
    quote_found: bool | None = None


@dataclass
class ClaimEvidence:
    claim: Claim
    found: list[Found]
    #: declared links that matched no capture (each a gap to fill)
    unmatched: list[str]

    @property
    def is_gap(self) -> bool:
        return not self.found


def resolve(db: IndexDB, case: Case, claim: Claim) -> ClaimEvidence:
    found: dict[str, Found] = {}
    unmatched: list[str] = []
    for link in claim.evidence:
        rows = _rows_for(db, link)
        if not rows:
            unmatched.append(link.describe())
        for row in rows:
            hit = found.setdefault(row.record_id, Found(row, link.describe()))
            if link.quote:
                hit.quote_found = _shows(db, row, link.quote)
    for record_id, annotator, _note in run_time_links(db, case, claim.id):
        linked = db.by_record_id(record_id)
        if linked is None:
            unmatched.append(f"linked capture {record_id} (by {annotator}) is not in the index")
            continue
        found.setdefault(record_id, Found(linked, f"linked by {annotator}"))
    ordered = sorted(found.values(), key=lambda f: (f.row.ts, f.row.url))
    return ClaimEvidence(claim, ordered, unmatched)


def _rows_for(db: IndexDB, link: Evidence) -> list[IndexRow]:
    if link.capture:
        row = db.by_record_id(link.capture)
        return [row] if row is not None else []
    if link.source:
        found = db.rows(
            "SELECT record_id FROM captures WHERE source = ? AND record_type = 'response' "
            "AND mime IN ('text/html', 'application/xhtml+xml') AND status BETWEEN 200 AND 299 "
            "AND ts >= ? AND ts <= ? ORDER BY ts",
            (link.source, link.ts_from or 0, link.ts_to or 2**62),
        )
        return [r for (rid,) in found if (r := db.by_record_id(str(rid))) is not None]
    assert link.url is not None
    if link.match == "prefix":
        low, high = search_range(link.url, "prefix")
        exact = False
    else:
        low, high, exact = surt_key(link.url), None, True
    rows = db.select(
        low=low,
        high=high,
        exact=exact,
        ts_from=link.ts_from,
        ts_to=link.ts_to,
        record_types=EVIDENCE_TYPES,
    )
    return [r for r in rows if r.record_type != "resource" or r.url == link.url]


def _shows(db: IndexDB, row: IndexRow, quote: str) -> bool:
    """Whether the page's indexed text shows the quote (whitespace and case folded)."""
    texts = db.rows(
        "SELECT t.body FROM texts t JOIN captures c ON c.id = t.capture_id WHERE c.record_id = ?",
        (row.record_id,),
    )
    wanted = " ".join(quote.split()).casefold()
    return any(wanted in " ".join(str(body).split()).casefold() for (body,) in texts)
