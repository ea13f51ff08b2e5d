"""Which records a capture's evidence needs: shared by bundle export and legal holds.

A capture is checked and replayed with what was written with it (its request, ``metadata``
and derivatives: ``urn:view:``, ``urn:dom:``, ``urn:text:``, ``urn:pdf:``), the page's
subresources captured in the same run (the ``requisites`` its ``attest-page`` metadata lists),
a revisit's original, and the origin's TLS-chain record. :func:`select` collects them, each
with its role: ``original``, ``metadata`` or ``derivative``. An export copies exactly these
records; a hold covers the WARCs holding them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin

from archive.errors import AttestError
from archive.index.cdxj import IndexRow, surt_key
from archive.index.db import IndexDB
from archive.index.pagemeta import DERIVED_PREFIXES, PageMetadata
from archive.index.retrieve import load_payload
from archive.store import Store

__all__ = ["DERIVED_PREFIXES", "Selection", "add_dependencies", "role_of", "select"]


@dataclass
class Selection:
    """Records chosen as evidence, by record id, with why each is there."""

    pages: PageMetadata
    rows: dict[str, IndexRow] = field(default_factory=dict)
    role: dict[str, str] = field(default_factory=dict)
    _chains: dict[tuple[str | None, str], IndexRow | None] = field(default_factory=dict)

    def linked(self, db: IndexDB, record_id: str) -> list[IndexRow]:
        """Records written with this one (WARC-Concurrent-To), looked up once."""
        return self.pages.linked(record_id)

    def chain(self, db: IndexDB, run_id: str | None, surt_host: str) -> IndexRow | None:
        """The TLS-chain record of an origin in a run, looked up once (it was 2 ms a page)."""
        if (run_id, surt_host) not in self._chains:
            self._chains[run_id, surt_host] = db.tls_chain_for(run_id, surt_host)
        return self._chains[run_id, surt_host]

    def add(self, row: IndexRow, role: str) -> bool:
        if row.record_id in self.rows:
            return False
        self.rows[row.record_id] = row
        self.role[row.record_id] = role
        return True


def role_of(row: IndexRow) -> str:
    if row.url.startswith(DERIVED_PREFIXES):
        return "derivative"
    if row.record_type == "metadata":
        return "metadata"
    return "original"


def add_dependencies(db: IndexDB, store: Store, row: IndexRow, chosen: Selection) -> None:
    """Add what a capture needs to be checked and replayed."""
    linked_rows = chosen.linked(db, row.record_id)
    for linked in linked_rows:
        chosen.add(linked, role_of(linked))
    if row.record_type == "revisit" and row.concurrent_to:
        original = db.by_record_id(row.concurrent_to)
        if original is not None and chosen.add(original, "original"):
            add_dependencies(db, store, original, chosen)
    if row.url.startswith("https://"):
        chain = chosen.chain(db, row.run_id, row.surt.split(")/")[0] + ")/")
        if chain is not None:
            chosen.add(chain, "metadata")
    if row.record_type in ("response", "revisit"):
        page = chosen.pages.facts(row) or {}
        for url in page.get("requisites") or []:
            _add_requisite(db, store, row, str(url), chosen)


def _add_requisite(
    db: IndexDB, store: Store, page: IndexRow, url: str, chosen: Selection, depth: int = 0
) -> None:
    rows = db.select(
        low=surt_key(url),
        high=None,
        exact=True,
        record_types=("response", "revisit"),
        run_ids=[page.run_id] if page.run_id else None,
        closest=page.ts,
        limit=1,
    )
    for row in rows:
        if not chosen.add(row, "original"):
            continue
        for linked in chosen.linked(db, row.record_id):
            if linked.record_type == "request":
                chosen.add(linked, "original")
        body_row = row
        if row.record_type == "revisit" and row.concurrent_to:
            original = db.by_record_id(row.concurrent_to)
            if original is not None:
                chosen.add(original, "original")
                body_row = original
        # A stylesheet's own subresources (fonts, backgrounds, @imports) belong to the page too.
        if "css" in row.mime and depth < _CSS_DEPTH:
            for ref in _stylesheet_refs(store, body_row):
                _add_requisite(db, store, page, ref, chosen, depth + 1)


_CSS_DEPTH = 3
_CSS_REF = re.compile(
    r"""url\(\s*(['"]?)([^'")\s]+)\1\s*\)|@import\s+(['"])([^'"]+)\3""", re.IGNORECASE
)


def _stylesheet_refs(store: Store, row: IndexRow) -> list[str]:
    """The absolute URLs a captured stylesheet refers to (``url(...)``, ``@import``)."""
    try:
        text = load_payload(store, row).decoded().decode("utf-8", "replace")
    except (AttestError, ValueError):
        return []
    refs = []
    for match in _CSS_REF.finditer(text):
        ref = (match.group(2) or match.group(4) or "").strip()
        if ref and not ref.startswith(("data:", "#")):
            refs.append(urljoin(row.url, ref))
    return refs


def select(
    db: IndexDB, store: Store, rows: Iterable[IndexRow], pages: PageMetadata | None = None
) -> Selection:
    """The rows, each in its own role, and every record they depend on (``pages``: the page
    metadata already read, e.g. while resolving claims)."""
    chosen = Selection(pages or PageMetadata(db, store))
    for row in rows:
        chosen.add(row, role_of(row))
    for row in list(chosen.rows.values()):
        add_dependencies(db, store, row, chosen)
    return chosen
