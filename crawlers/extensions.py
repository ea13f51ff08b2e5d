"""Crawl progress (pages done, rate and errors, reported every half second), and stopping a
crawl from inside it (:func:`stop_crawl`).

The progress extension only counts; how progress is shown is the entry point's choice (a
progress bar on a terminal, JSON log lines otherwise), passed in as the ``ATTEST_PROGRESS``
callable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler


def stop_crawl(crawler: Crawler, reason: str) -> None:
    """Stop the crawl for ``reason`` (recorded as ``attest/stopped``), from any callback, item
    pipeline or middleware: the engine's close is started on the reactor's next turn, never
    awaited by the caller, which is often a step the close itself waits for."""
    crawler.stats.set_value("attest/stopped", reason)
    engine = crawler.engine
    if engine is None or crawler.spider is None:
        return
    from twisted.internet import reactor

    def close() -> None:
        if engine.spider is not None:
            deferred_from_coro(engine.close_spider_async(reason=reason))

    clock: Any = reactor  # the running reactor (Twisted types it by its interfaces only)
    clock.callLater(0, close)


ERROR_OUTCOMES = {
    "dns_error",
    "timeout",
    "connection_error",
    "tls_error",
    "egress_refused",
    "http_error",
}


@dataclass
class ProgressSnapshot:
    source: str
    pages: int
    fetches: int
    errors: int
    elapsed: float
    finished: bool = False

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.elapsed if self.elapsed > 0 else 0.0


class CrawlProgress:
    def __init__(self, crawler: Crawler, report: Callable[[ProgressSnapshot], None]) -> None:
        self.crawler = crawler
        self.report = report
        self.started = time.monotonic()
        self.loop: task.LoopingCall | None = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        report = crawler.settings.get("ATTEST_PROGRESS")
        if not callable(report):
            raise NotConfigured("no progress reporter")
        return cls(crawler, report)

    def snapshot(self, finished: bool = False) -> ProgressSnapshot:
        stats = self.crawler.stats.get_stats()
        errors = sum(
            int(v)
            for k, v in stats.items()
            if k.startswith("attest/outcome/") and k.split("/")[-1] in ERROR_OUTCOMES
        )
        fetches = sum(
            int(v)
            for k, v in stats.items()
            if k.startswith("attest/outcome/") and not k.endswith("out_of_scope")
        )
        spider = self.crawler.spider
        return ProgressSnapshot(
            source=spider.name if spider is not None else "?",
            pages=int(stats.get("attest/pages", 0)),
            fetches=fetches,
            errors=errors,
            elapsed=time.monotonic() - self.started,
            finished=finished,
        )

    def spider_opened(self, spider: Spider) -> None:
        self.started = time.monotonic()
        self.loop = task.LoopingCall(lambda: self.report(self.snapshot()))
        self.loop.start(0.5, now=False)

    def spider_closed(self, spider: Spider, reason: Any) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.report(self.snapshot(finished=True))
