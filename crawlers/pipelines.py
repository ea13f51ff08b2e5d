"""What happens to each :class:`~crawlers.items.FetchResult`.

Every result becomes one line of the run's ledger (``ledger.jsonl`` in the spool) and is counted
by outcome. A page or attachment also gets a ``metadata`` record in the WARC, linked to its
response (``WARC-Concurrent-To``): how it was discovered, its outlinks (with their scope), its
requisites and its retry attempts. A URL that was never fetched because robots.txt forbids it
gets a ``metadata`` outcome record, so the refusal is evidence too; so does a seed that cannot
be fetched at all (``invalid_url``, target ``urn:attest:invalid-url:<percent-encoded URL>``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from archive.errors import DiskFull
from archive.outcomes import Outcome
from crawlers.extensions import stop_crawl
from crawlers.items import FetchResult
from crawlers.recorder.process import RecordClient

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

log = logging.getLogger(__name__)
PAGE_METADATA_TYPE = "application/json; profile=attest-page"
OUTCOME_METADATA_TYPE = "application/json; profile=attest-outcome"
#: The target URI of an ``invalid_url`` outcome record, before the percent-encoded URL.
INVALID_URL_TARGET = "urn:attest:invalid-url:"


class CaptureLedgerPipeline:
    """Ledger lines and the recorder's metadata records for every fetch result.

    Metadata records go to the recorder in batches (up to ``BATCH`` records, at least every
    ``FLUSH_S`` seconds, and at the end): they describe pages whose responses are already in
    the WARC, and one request per page cost the crawler more than parsing the page.
    """

    BATCH = 32
    FLUSH_S = 0.5

    def __init__(
        self, crawler: Crawler, ledger: Path, recorder_port: int, secret: str | None = None
    ) -> None:
        self.crawler = crawler
        self.ledger_path = ledger
        self.records = RecordClient(recorder_port, secret=secret)
        self.outcomes: Counter[str] = Counter()
        self._ledger: IO[str] | None = None
        self._unflushed = 0
        self._pending: list[dict[str, Any]] = []
        self._in_flight: set[Deferred[Any]] = set()
        self._loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CaptureLedgerPipeline:
        return cls(
            crawler,
            Path(crawler.settings["ATTEST_LEDGER"]),
            crawler.settings.getint("ATTEST_RECORDER_PORT"),
            crawler.settings.get("ATTEST_RECORDER_SECRET"),
        )

    def open_spider(self, spider: Spider | None = None) -> None:
        self._ledger = open(self.ledger_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close_spider
        self._loop = task.LoopingCall(self._flush)
        self._loop.start(self.FLUSH_S, now=False)

    async def close_spider(self, spider: Spider | None = None) -> None:
        spider = spider or self.crawler.spider
        extra = getattr(spider, "out_of_scope_results", None)
        if callable(extra):
            for item in extra():
                self._log(item)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._flush()
        for pending in list(self._in_flight):
            await maybe_deferred_to_future(pending)
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def _stop(self, reason: str) -> None:
        stop_crawl(self.crawler, reason)

    def _log(self, item: FetchResult) -> None:
        self.outcomes[item.outcome] += 1
        stats = self.crawler.stats
        stats.inc_value(f"attest/outcome/{item.outcome}")
        stats.inc_value(f"attest/role/{item.role}")
        if item.role in ("page", "attachment") and item.outcome != Outcome.OUT_OF_SCOPE:
            stats.inc_value("attest/pages")
        if self._ledger is not None:
            try:
                self._ledger.write(json.dumps(item.ledger_entry()) + "\n")
                self._unflushed += 1
                # The WARC is the evidence; the ledger is its index of outcomes, flushed in batches.
                if self._unflushed >= 64:
                    self._ledger.flush()
                    self._unflushed = 0
            except OSError as exc:
                log.error("cannot write the ledger (%s); stopping the crawl", exc)
                self._ledger = None
                self._stop("disk_full" if exc.errno == 28 else "ledger_error")

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        if not isinstance(item, FetchResult):
            return item
        self._log(item)
        if item.outcome in (Outcome.ROBOTS_DISALLOWED, Outcome.INVALID_URL):
            body: dict[str, Any] = {
                "outcome": item.outcome,
                "url": item.url,
                "reason": item.error or "robots.txt",
                "referrer": item.referrer,
                "source": item.source,
            }
            target = item.url
            if item.outcome == Outcome.INVALID_URL:
                # The URL itself (spaces, a broken IPv6 literal, ...) cannot be a WARC target.
                target = INVALID_URL_TARGET + quote(item.url, safe="")
            self._queue(item, body, OUTCOME_METADATA_TYPE, None, target=target)
        elif item.role in ("page", "attachment") and item.capture_id:
            body = {
                "url": item.url,
                "source": item.source,
                "outcome": item.outcome,
                "status": item.status,
                "via": item.via,
                "depth": item.depth,
                "referrer": item.referrer,
                "redirect_to": item.redirect_to,
                "attempts": item.attempts,
                "outlinks": item.outlinks,
                "requisites": item.requisites,
                **item.details,
            }
            self._queue(item, body, PAGE_METADATA_TYPE, item.capture_id)
        return item

    def _queue(
        self,
        item: FetchResult,
        body: dict[str, Any],
        content_type: str,
        concurrent_to: str | None,
        *,
        target: str | None = None,
    ) -> None:
        self._pending.append(
            {
                "source": item.source,
                "target": target or item.url,
                "content_type": content_type,
                "concurrent_to": concurrent_to,
                "data": json.dumps(body, sort_keys=True),
            }
        )
        if len(self._pending) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        # The recorder call blocks for a moment; keep it off the reactor thread.
        pending = deferToThread(self.records.write_batch, batch)
        self._in_flight.add(pending)

        def done(result: Any) -> Any:
            self._in_flight.discard(pending)
            return result

        def failed(failure: Failure) -> None:
            if isinstance(failure.value, DiskFull):
                self._stop("disk_full")
            else:
                log.error(
                    "the recorder did not take %d metadata records: %s", len(batch), failure.value
                )
                self.crawler.stats.inc_value("attest/metadata_lost", len(batch))

        pending.addBoth(done)
        pending.addErrback(failed)
