"""What a spider reports for every fetch: one :class:`FetchResult` per URL and attempt chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FetchResult:
    """The final outcome of fetching one URL (after retries), and what the page led to.

    ``role`` is ``page`` (an HTML or other document the crawl targets), ``attachment`` (a file
    linked from a page, e.g. a PDF), ``requisite`` (part of a page), ``robots``, ``sitemap``,
    ``feed``; ``via`` says how the URL was discovered (seed, link, sitemap, feed, listing,
    redirect, requisite).
    """

    url: str
    source: str
    outcome: str
    role: str
    via: str
    depth: int
    status: int | None = None
    capture_id: str | None = None
    warc_date: str | None = None
    #: SHA-256 digests of the response record (``sha256:<hex>``), as the recorder wrote them.
    payload_digest: str | None = None
    block_digest: str | None = None
    referrer: str | None = None
    content_type: str | None = None
    redirect_to: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    outlinks: list[dict[str, Any]] = field(default_factory=list)
    requisites: list[str] = field(default_factory=list)
    error: str | None = None
    #: More about the page for its metadata record: how it was captured (browser behaviors,
    #: derivatives), the post it is (platform, account, post id, platform time), a listing.
    details: dict[str, Any] = field(default_factory=dict)

    def ledger_entry(self) -> dict[str, Any]:
        entry = {
            "url": self.url,
            "source": self.source,
            "outcome": self.outcome,
            "role": self.role,
            "via": self.via,
            "depth": self.depth,
            "status": self.status,
            "capture_id": self.capture_id,
            "warc_date": self.warc_date,
            "referrer": self.referrer,
        }
        if self.payload_digest:
            entry["payload_digest"] = self.payload_digest
            entry["block_digest"] = self.block_digest
        if self.redirect_to:
            entry["redirect_to"] = self.redirect_to
        if self.attempts:
            entry["attempts"] = self.attempts
        if self.error:
            entry["error"] = self.error
        if "post" in self.details:
            entry["post"] = self.details["post"]
        derived = self.details.get("capture", {}).get("derivatives")
        if derived:
            entry["derivatives"] = {
                kind: {"record_id": d["record_id"], "sha256": d["sha256"]}
                for kind, d in derived.items()
            }
        return entry
