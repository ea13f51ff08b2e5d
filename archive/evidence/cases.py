"""Case files (``cases/*.yaml``): claims, and the captures that are their evidence.

A claim's evidence is declared in its case file, as

- ``url`` (with ``match: exact|prefix`` and an optional ``from``/``to`` date range): the pages
  captured at that URL in that period;
- ``capture``: one capture by its id (the UUID of its WARC record);
- ``query``: ``{source, from, to}``: the pages a registry source captured in a period;

each optionally with a ``selector`` (a text quote the page must show), an ``annotator`` and a
``note``. Dates may be quoted or not (``from: 2024-05-13`` reads as that day either way).
Links made at run time (``attest claim link``) live in the index database
(``claim_links``), beside the declared ones; both count. Like the custody log, that table is
not derived from the WARCs and an index rebuild never touches it.

Every error names the file, the claim and the field (``cases/x.yaml: claim 'C2', field
'evidence[0].from': ...``), and nothing is changed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from archive.custody.log import utc_iso
from archive.dates import iso, parse_when
from archive.errors import CaseError, ConfigError, NotFound
from archive.index.cdxj import IndexRow, surt_key
from archive.index.db import IndexDB
from archive.index.pagemeta import DERIVED_PREFIXES, PageMetadata
from archive.index.query import search_range
from archive.schemaerrors import first_error

#: Record types that are a claim's evidence in themselves (pages, API answers, derivatives).
EVIDENCE_TYPES = ("response", "revisit", "resource")
#: The outcome of a browser page that never finished loading: never counted as evidence.
INCOMPLETE = "incomplete"

_LINKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    id {id},
    case_id TEXT NOT NULL, claim_id TEXT NOT NULL, record_id TEXT NOT NULL,
    annotator TEXT NOT NULL, note TEXT, linked_at TEXT NOT NULL, any_record_reason TEXT,
    withdrawn_at TEXT, withdrawn_by TEXT, withdrawn_reason TEXT
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

    text = (
        resources.files("archive.evidence").joinpath("case_schema.yaml").read_text(encoding="utf-8")
    )
    return Draft202012Validator(yaml.safe_load(text))


def _yaml_times_as_text(value: Any) -> Any:
    """The document with YAML's own dates and times (``from: 2024-05-13`` unquoted is a
    ``date``, ``2024-05-13T10:00:00Z`` an aware ``datetime``, ``2024-05-13 10:00:00`` a naive
    one) written back as the ISO 8601 text they were, so they mean what their quoted forms do
    (an unzoned time is UTC, a date's ``to`` its last microsecond)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _yaml_times_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_times_as_text(v) for v in value]
    return value


def parse_case(doc: Any, path: str) -> Case:
    if not isinstance(doc, dict):
        raise CaseError(path, None, None, "expected a mapping with id, title and claims")
    doc = _yaml_times_as_text(doc)
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
        url=link.get("url"),
        match=link.get("match", "exact"),
        ts_from=ts_from,
        ts_to=ts_to,
        capture=capture,
        source=query.get("source"),
        quote=(link.get("selector") or {}).get("quote"),
        annotator=link.get("annotator"),
        note=link.get("note"),
    )


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
    case = case_by_id(name, directories)
    if case is not None:
        return case
    where = ", ".join(str(d) for d in directories) or "no case directory"
    raise ConfigError(f"no case with id {name!r} (looked in {where}); give the file's path")


def case_by_id(case_id: str, directories: Iterable[Path]) -> Case | None:
    """The first case with this id among ``*.yaml`` and ``*.yml`` in the directories, in order;
    None when there is none. Every file looked at must be a valid case file."""
    for directory in directories:
        for candidate in sorted(directory.glob("*.y*ml")):
            case = load_case(candidate)
            if case.id == case_id:
                return case
    return None


def case_folders(places: Iterable[Path]) -> list[Path]:
    """The ``cases/`` folder of each place that has one, resolved, each once, in order.

    ``attest`` looks for a case given by its id in those of the working directory and of the
    checkout it runs from.
    """
    found: list[Path] = []
    for place in places:
        folder = place / "cases"
        if folder.is_dir() and folder.resolve() not in found:
            found.append(folder.resolve())
    return found


# --- links made at run time ----------------------------------------------------------------

#: What ``attest claim link`` accepts as a claim's evidence without ``--any-record``: a page.
PAGE_MIMES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class RunTimeLink:
    """A link made with ``attest claim link``, and its withdrawal if it was withdrawn."""

    record_id: str
    annotator: str
    note: str | None
    linked_at: str
    #: why a record that is not a page was linked (``--any-record --reason``)
    any_record_reason: str | None = None
    withdrawn_at: str | None = None
    withdrawn_by: str | None = None
    withdrawn_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


#: Columns of ``claim_links`` that :class:`RunTimeLink` holds, in its order.
_LINK_COLUMNS = tuple(f.name for f in fields(RunTimeLink))


def ensure_links_table(db: IndexDB) -> None:
    """``claim_links`` in its current form: one row per link ever made, a withdrawn one kept
    with who withdrew it, when and why (at most one active link per claim and capture). A
    table of the first form (one row per claim and capture, no withdrawals) is converted."""
    columns = db.table_columns("claim_links")
    if columns and "withdrawn_at" in columns:
        return
    with db.transaction(exclusive=True):
        db.lock_schema()
        columns = db.table_columns("claim_links")
        if columns and "withdrawn_at" in columns:
            return
        # A table of the first form is copied into a new one, which then takes its name (the
        # new table is made under its own name, so no index or sequence name is taken twice).
        table = "claim_links_converted" if columns else "claim_links"
        db.execute(_LINKS_SCHEMA.format(table=table, id=db.sql.id_column))
        if columns:
            db.execute(
                "INSERT INTO claim_links_converted (case_id, claim_id, record_id, annotator, "
                "note, linked_at) SELECT case_id, claim_id, record_id, annotator, note, "
                "linked_at FROM claim_links ORDER BY linked_at"
            )
            db.execute("DROP TABLE claim_links")
            db.execute("ALTER TABLE claim_links_converted RENAME TO claim_links")
        db.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS claim_links_active "
            "ON claim_links (case_id, claim_id, record_id) WHERE withdrawn_at IS NULL"
        )


def page_problem(db: IndexDB, row: IndexRow) -> str | None:
    """Why a record is not a page a claim can cite (None when it is one).

    A page is a ``response`` or ``revisit`` whose document is HTML or XHTML, or for which the
    crawler wrote an ``attest-page`` metadata record (a page or an attachment it was sent to
    fetch, such as a PDF press release), or a ``resource`` derivative of such a page (its
    screenshot, DOM, text or PDF print). Requests, metadata, and the subresources a page loaded
    (stylesheets, scripts, images, API answers) are not: they are part of a page's evidence,
    which an export takes along with the page.
    """
    if row.record_type not in EVIDENCE_TYPES:
        return f"a {row.record_type} record, not a page"
    if row.record_type == "resource":
        if not row.url.startswith(DERIVED_PREFIXES) or not row.concurrent_to:
            return f"a resource record ({row.url}) that is not a derivative of a page"
        page = db.by_record_id(row.concurrent_to)
        if page is None:
            return f"a derivative of {row.concurrent_to}, which is not in the index"
        problem = page_problem(db, page)
        return f"a derivative of {page.url}, {problem}" if problem else None
    document = row
    if row.record_type == "revisit" and row.concurrent_to:
        document = db.by_record_id(row.concurrent_to) or row
    if document.mime in PAGE_MIMES:
        return None
    if any(
        r.record_type == "metadata" and "attest-page" in r.mime
        for r in db.concurrent_with(row.record_id)
    ):
        return None
    return f"a {row.record_type} of {document.mime} ({row.url}), not a page the crawl was sent to"


def link_capture(
    db: IndexDB,
    case: Case,
    claim_id: str,
    capture: str,
    *,
    annotator: str,
    note: str | None = None,
    any_record_reason: str | None = None,
) -> tuple[IndexRow, bool]:
    """Record that a capture is evidence of a claim; (the capture's row, whether it is new).

    Only a page (:func:`page_problem`) is accepted, unless ``any_record_reason`` says why
    another record is (it is kept with the link). A link already active is not made twice.
    """
    case.claim(claim_id)
    record_id = capture_record_id(capture)
    row = db.by_record_id(record_id)
    if row is None:
        raise NotFound(f"no capture {capture} in the index")
    if any_record_reason is not None and not any_record_reason.strip():
        raise ConfigError("--any-record needs --reason: say why this record is evidence")
    problem = page_problem(db, row)
    if problem and any_record_reason is None:
        raise ConfigError(
            f"{record_id} is {problem}: a claim's evidence is a page (its response, revisit or "
            "a derivative); to link it all the same, give --any-record --reason TEXT"
        )
    ensure_links_table(db)
    with db.transaction(exclusive=True):
        before = db.rows(
            "SELECT 1 FROM claim_links WHERE case_id = ? AND claim_id = ? AND record_id = ? "
            "AND withdrawn_at IS NULL",
            (case.id, claim_id, record_id),
        )
        if before:
            return row, False
        db.execute(
            "INSERT INTO claim_links (case_id, claim_id, record_id, annotator, note, linked_at, "
            "any_record_reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                case.id,
                claim_id,
                record_id,
                annotator,
                note,
                utc_iso(),
                any_record_reason if problem else None,
            ),
        )
    return row, True


def unlink_capture(
    db: IndexDB, case: Case, claim_id: str, capture: str, *, actor: str, reason: str
) -> RunTimeLink:
    """Withdraw a run-time link (kept, marked withdrawn by ``actor`` with ``reason``); returns
    it as it was before. :class:`ConfigError` when there is no such active link: a link the
    case file declares is withdrawn by editing the file."""
    case.claim(claim_id)
    record_id = capture_record_id(capture)
    if not reason.strip():
        raise ConfigError("unlink: give --reason: why the capture is no longer evidence")
    ensure_links_table(db)
    with db.transaction(exclusive=True):
        active = [
            link
            for link in run_time_links(db, case, claim_id, withdrawn=False)
            if link.record_id == record_id
        ]
        if not active:
            declared = any(e.capture == record_id for e in case.claim(claim_id).evidence)
            where = f"; it is declared in {case.path}: remove it there" if declared else ""
            raise ConfigError(
                f"no active link of capture {record_id} to {case.id} claim {claim_id}{where}"
            )
        db.execute(
            "UPDATE claim_links SET withdrawn_at = ?, withdrawn_by = ?, withdrawn_reason = ? "
            "WHERE case_id = ? AND claim_id = ? AND record_id = ? AND withdrawn_at IS NULL",
            (utc_iso(), actor, reason, case.id, claim_id, record_id),
        )
    return active[0]


def run_time_links(
    db: IndexDB, case: Case, claim_id: str, *, withdrawn: bool | None = None
) -> list[RunTimeLink]:
    """The claim's run-time links, oldest first: all, or only the withdrawn (``True``) or
    active (``False``) ones."""
    ensure_links_table(db)
    where = {None: "", True: " AND withdrawn_at IS NOT NULL", False: " AND withdrawn_at IS NULL"}
    found = db.rows(
        f"SELECT {', '.join(_LINK_COLUMNS)} FROM claim_links "  # noqa: S608 - constant SQL
        f"WHERE case_id = ? AND claim_id = ?{where[withdrawn]} ORDER BY linked_at, id",
        (case.id, claim_id),
    )
    return [RunTimeLink(*(None if v is None else str(v) for v in values)) for values in found]  # type: ignore[arg-type]


# --- resolving claims to captures -------------------------------------------------------------

#: Words of context shown on each side of a quote where a page shows it.
CONTEXT_WORDS = 12


@dataclass
class QuoteCheck:
    """Where a capture shows a link's quote (or that it does not): which capture, which text
    (``rendered``: the text the browser showed, its ``urn:text:`` record; ``html``: the text of
    the HTML document), the words as the page has them, and the words around them."""

    quote: str
    capture: str
    found: bool
    text: str | None = None
    text_record: str | None = None
    shown: str | None = None
    before: str | None = None
    after: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "quote": self.quote,
            "capture": self.capture,
            "found": self.found,
            "text": self.text,
            "text_record": self.text_record,
            "shown": self.shown,
            "before": self.before,
            "after": self.after,
        }


@dataclass
class Found:
    """A capture that is evidence of the claim, the links that select it, its quote checks."""

    row: IndexRow
    via: str  # the first link that selects it
    quotes: list[QuoteCheck] = field(default_factory=list)

    @property
    def quote_found(self) -> bool | None:
        """Whether it shows every quote its links name (None: they name none)."""
        if not self.quotes:
            return None
        return all(q.found for q in self.quotes)


@dataclass
class LinkResult:
    """One link of a claim (declared in the case file or made at run time) and what it found:
    the captures it selects, or why it is a gap."""

    describe: str
    kind: str  # "declared" | "linked"
    captures: list[str] = field(default_factory=list)
    #: captures it selects whose page never finished loading (never counted as evidence)
    incomplete: list[str] = field(default_factory=list)
    quote: str | None = None
    gap: str | None = None
    link: RunTimeLink | None = None

    @property
    def status(self) -> str:
        return "gap" if self.gap else "found"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "link": self.describe,
            "kind": self.kind,
            "status": self.status,
            "why": self.gap,
            "captures": self.captures,
            "incomplete": self.incomplete,
            "quote": self.quote,
        }
        if self.link is not None:
            out.update(
                linked_by=self.link.annotator,
                linked_at=self.link.linked_at,
                note=self.link.note,
                any_record_reason=self.link.any_record_reason,
            )
        return out


@dataclass
class ClaimEvidence:
    claim: Claim
    #: the captures that are evidence of the claim (each once), in capture order
    found: list[Found]
    #: every active link, each found or a gap
    links: list[LinkResult] = field(default_factory=list)
    #: run-time links withdrawn with ``attest claim unlink`` (kept: history)
    withdrawn: list[RunTimeLink] = field(default_factory=list)

    @property
    def gap_links(self) -> list[LinkResult]:
        return [link for link in self.links if link.gap]

    @property
    def covered(self) -> bool:
        """Every link found what it names (and the claim has a link at all)."""
        return bool(self.links) and not self.gap_links

    @property
    def gaps(self) -> list[str]:
        """Each gap, named: ``<link>: <why>`` (or that the claim links to nothing)."""
        if not self.links:
            return ["no evidence is linked to this claim"]
        return [f"{link.describe}: {link.gap}" for link in self.gap_links]


def resolve(
    db: IndexDB, case: Case, claim: Claim, pages: PageMetadata | None = None
) -> ClaimEvidence:
    """The claim's links, each found or a gap, and the captures that are its evidence.

    A link is a gap when it selects no capture (none in its range, or the capture it names is
    not in the index), when none of its captures shows its quote, or when its only captures
    are ``incomplete`` (a browser page that never finished loading, as the index's
    ``outcome`` of the page says; ``pages``, with a store, reads it from the page's metadata
    record for rows indexed before the index kept it). Withdrawn run-time links select
    nothing; they are listed in ``withdrawn``.
    """
    pages = pages or PageMetadata(db, None)
    found: dict[str, Found] = {}
    links: list[LinkResult] = []
    for link in claim.evidence:
        result = LinkResult(link.describe(), "declared", quote=link.quote)
        rows = _rows_for(db, link)
        _judge(db, pages, result, rows, found, missing=_missing(link))
        links.append(result)
    for made in run_time_links(db, case, claim.id, withdrawn=False):
        result = LinkResult(
            f"linked capture {made.record_id} (by {made.annotator})", "linked", link=made
        )
        row = db.by_record_id(made.record_id)
        _judge(db, pages, result, [row] if row else [], found, missing="not in the index")
        links.append(result)
    ordered = sorted(found.values(), key=lambda f: (f.row.ts, f.row.url))
    withdrawn = run_time_links(db, case, claim.id, withdrawn=True)
    return ClaimEvidence(claim, ordered, links, withdrawn)


def _missing(link: Evidence) -> str:
    if link.capture:
        return "that capture is not in the index"
    span = ""
    if link.ts_from is not None or link.ts_to is not None:
        low = iso(link.ts_from) if link.ts_from is not None else "any time"
        high = iso(link.ts_to) if link.ts_to is not None else "now"
        span = f" from {low} to {high}"
    return f"no capture{span}"


def _judge(
    db: IndexDB,
    pages: PageMetadata,
    result: LinkResult,
    rows: list[IndexRow],
    found: dict[str, Found],
    *,
    missing: str,
) -> None:
    """Fill in what one link found, adding its complete captures to the claim's evidence."""
    complete = []
    for row in rows:
        if pages.outcome(row) == INCOMPLETE:
            result.incomplete.append(row.record_id)
        else:
            complete.append(row)
    if not rows:
        result.gap = missing
        return
    if not complete:
        result.gap = (
            f"only incomplete captures ({len(rows)}): the page never finished "
            "loading, so they do not count as evidence"
        )
        return
    shown = 0
    for row in complete:
        result.captures.append(row.record_id)
        hit = found.setdefault(row.record_id, Found(row, result.describe))
        if result.quote:
            check = find_quote(db, pages, row, result.quote)
            hit.quotes.append(check)
            shown += check.found
    if result.quote and not shown:
        result.gap = f"the quote is not shown by its {len(complete)} capture(s)"


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


def find_quote(db: IndexDB, pages: PageMetadata, row: IndexRow, quote: str) -> QuoteCheck:
    """Whether, and where, the page's text shows the quote (case and runs of white space
    aside). The text is the one the index holds for the page: for a browser capture the text
    the browser showed (its ``urn:text:`` record), else the text of the HTML document; a
    revisit's is its original's."""
    document = row
    if row.record_type == "revisit" and row.concurrent_to:
        document = db.by_record_id(row.concurrent_to) or row
    check = QuoteCheck(quote, row.record_id, False)
    texts = db.rows(
        "SELECT t.body FROM texts t JOIN captures c ON c.id = t.capture_id WHERE c.record_id = ?",
        (document.record_id,),
    )
    if not texts:
        return check
    rendered = next(
        (
            r
            for r in pages.linked(document.record_id)
            if r.record_type == "resource" and r.url.startswith("urn:text:")
        ),
        None,
    )
    check.text = "rendered" if rendered is not None else "html"
    check.text_record = rendered.record_id if rendered is not None else document.record_id
    pattern = re.compile(r"\s+".join(re.escape(word) for word in quote.split()), re.IGNORECASE)
    for (body,) in texts:
        text = str(body)
        match = pattern.search(text)
        if match is None:
            continue
        before = text[: match.start()].split()[-CONTEXT_WORDS:]
        after = text[match.end() :].split()[:CONTEXT_WORDS]
        check.found = True
        check.shown = " ".join(match.group(0).split())
        check.before, check.after = " ".join(before), " ".join(after)
        break
    return check
