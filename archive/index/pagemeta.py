"""What the crawler recorded about each page: its ``attest-page`` metadata record.

Every page (and attachment) the crawler fetched has a ``metadata`` record of content type
``application/json; profile=attest-page``, linked to the page's response (or revisit) by
``WARC-Concurrent-To``. It says how the page ended (``outcome``: ``captured``, ``incomplete``,
...), how it was captured (``capture``: ``method`` ``crawler`` or ``browser``, the software,
and for the browser its version, automation, viewport, user agent, behaviors and whether the
page completed), the post it is (``post``: platform, account, id and the platform's own time)
and its requisites. These facts are per page: a run mixes crawler and browser pages, so the
run's ``warcinfo`` cannot say how any one page was made.

:class:`PageMetadata` finds and reads those records once each (their digests checked on the
read, as every read is), for an export, a hold or ``attest claims``. A derivative
(``urn:view:`` ...) answers with the record of the page it was taken from.
"""

from __future__ import annotations

import json
from typing import Any

from archive.errors import IntegrityError
from archive.index.cdxj import IndexRow
from archive.index.db import IndexDB
from archive.index.retrieve import load_payload
from archive.store import Store

PAGE_PROFILE = "attest-page"
#: Target URI prefixes of a page's derivatives (screenshot, DOM, text, PDF print).
DERIVED_PREFIXES = ("urn:view:", "urn:dom:", "urn:text:", "urn:pdf:")
#: Keys of the per-page ``capture`` object shown in manifests and reports (the rest, such as
#: every exchange the browser made, stays in the record itself).
METHOD_KEYS = (
    "method",
    "software",
    "browser",
    "automation",
    "viewport",
    "user_agent",
    "behaviors",
    "complete",
    "final_url",
    "seconds",
)
NOT_RECORDED = "not recorded for this page"


class PageMetadata:
    """The ``attest-page`` facts of captures, each record looked up and read once."""

    def __init__(self, db: IndexDB, store: Store | None) -> None:
        self.db, self.store = db, store
        self._linked: dict[str, list[IndexRow]] = {}
        self._facts: dict[str, dict[str, Any] | None] = {}

    def linked(self, record_id: str) -> list[IndexRow]:
        """Records written with this one (WARC-Concurrent-To), looked up once."""
        if record_id not in self._linked:
            self._linked[record_id] = self.db.concurrent_with(record_id)
        return self._linked[record_id]

    def page_of(self, row: IndexRow) -> IndexRow:
        """The page a derivative was taken from (the row itself for anything else)."""
        if (
            row.record_type == "resource"
            and row.url.startswith(DERIVED_PREFIXES)
            and row.concurrent_to
        ):
            page = self.db.by_record_id(row.concurrent_to)
            if page is not None:
                return page
        return row

    def record(self, row: IndexRow) -> IndexRow | None:
        """The page's ``attest-page`` metadata record, if the crawler wrote one."""
        page = self.page_of(row)
        return next(
            (
                r
                for r in self.linked(page.record_id)
                if r.record_type == "metadata" and PAGE_PROFILE in r.mime
            ),
            None,
        )

    def facts(self, row: IndexRow) -> dict[str, Any] | None:
        """The page's metadata as JSON (None without a record, a store, or readable JSON)."""
        meta = self.record(row)
        if meta is None or self.store is None:
            return None
        if meta.record_id not in self._facts:
            try:
                data = json.loads(load_payload(self.store, meta).body)
            except (ValueError, IntegrityError):
                data = None
            self._facts[meta.record_id] = data if isinstance(data, dict) else None
        return self._facts[meta.record_id]

    def outcome(self, row: IndexRow) -> str | None:
        """How the page ended (``captured``, ``incomplete``, ...), as its metadata says: the
        index carries it per page (``IndexRow.outcome``); for rows indexed before it did, the
        record itself is read (with a store)."""
        page = self.page_of(row)
        if page.outcome is not None:
            return page.outcome
        facts = self.facts(row)
        value = facts.get("outcome") if facts else None
        return str(value) if value is not None else None

    def method(self, row: IndexRow) -> dict[str, Any]:
        """How this page was captured, from its own record: ``{"method": "crawler"|"browser",
        ...}``, or ``{"method": None, "note": "not recorded for this page"}``. Never taken
        from the run: a run mixes crawler and browser pages."""
        facts = self.facts(row) or {}
        capture = facts.get("capture")
        if not isinstance(capture, dict) or capture.get("method") not in ("crawler", "browser"):
            return {"method": None, "note": NOT_RECORDED}
        shown = {k: capture[k] for k in METHOD_KEYS if k in capture}
        if "software" not in capture:
            shown["note"] = "the software and its versions are not recorded for this page"
        return shown

    def post(self, row: IndexRow) -> dict[str, Any] | None:
        """The post the page is, as its platform shows it (ids, its own time), if it is one."""
        facts = self.facts(row) or {}
        post = facts.get("post")
        if isinstance(post, dict):
            return dict(post)
        if row.platform:  # the index's columns, when the record cannot be read
            return {"platform": row.platform, "account": row.account, "post_id": row.post_id}
        return None
