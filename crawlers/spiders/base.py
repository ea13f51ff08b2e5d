"""What every attest spider does: seeds, scope, requisites, redirects, outcomes.

A spider never decides what is recorded (the recorder records every exchange); it decides
what to fetch next and reports each fetch's outcome as a :class:`~crawlers.items.FetchResult`.
Subclasses add discovery: :mod:`crawlers.spiders.news` (sitemaps, feeds) and
:mod:`crawlers.spiders.press` (paginated listings, attachments).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable, Iterator
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.http import Request, Response, TextResponse
from twisted.internet.error import ConnectError, ConnectionRefusedError, DNSLookupError
from twisted.python.failure import Failure

from archive.outcomes import Outcome, outcome_for_status
from crawlers.browser.behaviors import BehaviorSpec
from crawlers.browser.handler import BROWSER_META, DERIVED_META, RENDERED_META
from crawlers.browser.ready import ReadySpec
from crawlers.extensions import stop_crawl
from crawlers.items import FetchResult
from crawlers.links import extract_css, extract_html
from crawlers.recorder.protocol import (
    BLOCK_DIGEST_HEADER,
    CAPTURE_ID_HEADER,
    OUTCOME_HEADER,
    PAYLOAD_DIGEST_HEADER,
    WARC_DATE_HEADER,
)
from crawlers.registry import SourceSpec
from crawlers.scope import Scope
from crawlers.urls import URL_LIMIT, invalid_url_reason

if TYPE_CHECKING:
    from crawlers.browser.capture import RenderedPage

PAGE_ROLES = ("page", "attachment")


@functools.cache
def recorder_name() -> str:
    """The recorder every capture goes through, with attest's version."""
    try:
        version = metadata.version("attest")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"attest recorder {version}"


@functools.cache
def crawler_capture() -> dict[str, str]:
    """How a page fetched by Scrapy was captured (its metadata record's ``capture``)."""
    return {"method": "crawler", "software": f"Scrapy {scrapy.__version__} via {recorder_name()}"}


REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10


def header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def classify(response: Response) -> tuple[str, str | None]:
    """The outcome of a fetch and its capture id, as the recorder reported them."""
    capture_id = header(response, CAPTURE_ID_HEADER)
    reported = header(response, OUTCOME_HEADER)
    if reported:
        return reported, capture_id
    return outcome_for_status(response.status).value, capture_id


class CaptureSpider(scrapy.Spider):
    """Crawls one source within its scope, with each page's requisites."""

    name = "capture"

    def __init__(self, source: SourceSpec, **kwargs: Any) -> None:
        super().__init__(name=source.id, **kwargs)
        self.source = source
        self.scope = Scope.for_source(source)
        self.pages_scheduled = 0
        self.pages_over_limit = 0
        self._page_urls: set[str] = set()
        self._requisite_urls: set[str] = set()
        self._out_of_scope: set[str] = set()

    # --- starting ---------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Request | FetchResult]:
        for seed in self.source.seeds:
            invalid = self.invalid_seed(seed)
            if invalid is not None:
                yield invalid
                continue
            request = self.page_request(seed, depth=0, via="seed")
            if request is not None:
                yield request
        for request in self.discovery_requests():
            yield request

    def invalid_seed(self, seed: str) -> FetchResult | None:
        """The ``invalid_url`` result of a seed that cannot be fetched, or None."""
        reason = invalid_url_reason(seed, self.settings.getint("URLLENGTH_LIMIT", URL_LIMIT))
        if reason is None:
            return None
        self.logger.error("seed %.200r %s: not fetched", seed, reason)
        return FetchResult(
            url=seed,
            source=self.source.id,
            outcome=Outcome.INVALID_URL.value,
            role="page",
            via="seed",
            depth=0,
            error=f"invalid URL: {reason}",
        )

    def discovery_requests(self) -> Iterable[Request]:
        """Extra start requests (sitemaps, feeds, listings); none by default."""
        return ()

    # --- requests ---------------------------------------------------------------------
    def _meta(
        self, role: str, depth: int, via: str, referrer: str | None, **extra: Any
    ) -> dict[str, Any]:
        attest = {
            "role": role,
            "depth": depth,
            "via": via,
            "referrer": referrer,
            "attempts": [],
            **extra,
        }
        return {"attest": attest, "handle_httpstatus_all": True, "dont_redirect": True}

    def page_request(
        self,
        url: str,
        *,
        depth: int,
        via: str,
        referrer: str | None = None,
        role: str = "page",
        callback: Any = None,
        browser: bool | None = None,
        behaviors: BehaviorSpec | None = None,
        extract: str | tuple[str, Any] | None = None,
        ready: ReadySpec | None = None,
        **extra: Any,
    ) -> Request | None:
        """A page (or attachment) within the page budget. ``browser``: render it in Chromium
        (default: pages of sources marked ``browser``, and seeds marked so), with these
        behaviors and extraction, complete when ``ready`` holds."""
        if url in self._page_urls:
            return None
        if self.pages_scheduled >= self.scope.max_pages:
            self.pages_over_limit += 1
            return None
        self._page_urls.add(url)
        self.pages_scheduled += 1
        meta = self._meta(role, depth, via, referrer, **extra)
        if browser is None:
            browser = role == "page" and (self.source.browser or url in self.source.browser_seeds)
        if browser:
            meta[BROWSER_META] = self.browser_meta(
                behaviors or BehaviorSpec().for_post(), extract, ready
            )
        return Request(
            url,
            callback=callback or self.parse_page,
            errback=self.fetch_failed,
            priority=-10 * depth,
            meta=meta,
        )

    def browser_meta(
        self,
        behaviors: BehaviorSpec,
        extract: str | tuple[str, Any] | None = None,
        ready: ReadySpec | None = None,
    ) -> dict[str, Any]:
        """What the download handler needs to render a page (see crawlers.browser.handler)."""
        return {
            "behaviors": behaviors,
            "extract": extract,
            "ready": ready,
            "screenshot": self.source.screenshot,
            "pdf": self.source.pdf,
        }

    def fetch_request(
        self,
        url: str,
        *,
        role: str,
        via: str,
        depth: int,
        referrer: str | None = None,
        callback: Any = None,
        **extra: Any,
    ) -> Request:
        """A request that is not a page (robots, sitemap, feed): captured and reported."""
        return Request(
            url,
            callback=callback or self.parse_other,
            errback=self.fetch_failed,
            priority=5,
            meta=self._meta(role, depth, via, referrer, **extra),
            dont_filter=False,
        )

    def requisite_request(self, url: str, page_url: str, depth: int) -> Request | None:
        if url in self._requisite_urls or url in self._page_urls:
            return None
        self._requisite_urls.add(url)
        return Request(
            url,
            callback=self.parse_requisite,
            errback=self.fetch_failed,
            # Requisites first, so a page is complete before the crawl moves on.
            priority=-10 * depth + 5,
            meta=self._meta("requisite", depth, "requisite", page_url),
        )

    # --- responses --------------------------------------------------------------------
    def result(self, response: Response, **extra: Any) -> FetchResult:
        info = response.meta["attest"]
        outcome, capture_id = classify(response)
        extra.setdefault("details", {"capture": dict(crawler_capture())})
        return FetchResult(
            url=response.url,
            source=self.source.id,
            outcome=outcome,
            role=info["role"],
            via=info["via"],
            depth=info["depth"],
            status=response.status,
            capture_id=capture_id,
            warc_date=header(response, WARC_DATE_HEADER),
            payload_digest=header(response, PAYLOAD_DIGEST_HEADER),
            block_digest=header(response, BLOCK_DIGEST_HEADER),
            referrer=info.get("referrer"),
            content_type=header(response, "Content-Type"),
            attempts=list(info.get("attempts", [])),
            error=response.text[:500]
            if outcome not in ("captured", "redirect", "http_error")
            and isinstance(response, TextResponse)
            else None,
            **extra,
        )

    def follow_redirect(self, response: Response, item: FetchResult) -> Request | None:
        if item.outcome != Outcome.REDIRECT:
            return None
        location = header(response, "Location")
        if not location:
            return None
        target = urljoin(response.url, location)
        item.redirect_to = target
        info = response.meta["attest"]
        hops = info.get("hops", 0) + 1
        if hops > MAX_REDIRECTS:
            return None
        if info["role"] == "requisite":
            req = self.requisite_request(
                target, info.get("referrer") or response.url, info["depth"]
            )
            if req is not None:
                req.meta["attest"]["hops"] = hops
            return req
        # A redirect keeps the page's role; it may leave the scope only from a seed.
        if not self.scope.allows(target) and info["via"] != "seed":
            self._note_out_of_scope(target)
            return None
        # The redirect target replaces its source in the page budget.
        self.pages_scheduled -= 1
        req = self.page_request(
            target,
            depth=info["depth"],
            via="redirect",
            referrer=response.url,
            role=info["role"],
            hops=hops,
        )
        if req is None:
            self.pages_scheduled += 1
        return req

    def parse_page(self, response: Response) -> Iterator[Request | FetchResult]:
        item = self.result(response)
        rendered = self.add_browser_details(response, item)
        redirect = self.follow_redirect(response, item)
        if redirect is not None:
            yield redirect
        if item.outcome == Outcome.CAPTURED and rendered is not None:
            # The browser loaded the page's requisites itself; only its links are followed.
            yield from self.follow_links(
                [o["url"] for o in item.outlinks],
                response.url,
                response.meta["attest"]["depth"],
                item,
            )
        elif item.outcome == Outcome.CAPTURED and self._is_html(response, item.content_type):
            yield from self.follow_page(response, item)
        yield item

    def add_browser_details(self, response: Response, item: FetchResult) -> RenderedPage | None:
        """For a page the browser rendered: its requisites, outlinks, behaviors, derivatives."""
        rendered: RenderedPage | None = response.meta.get(RENDERED_META)
        if rendered is None:
            return None
        item.url = rendered.requested_url
        item.requisites = sorted(
            {e.url for e in rendered.exchanges if e.resource_type != "document"}
        )
        item.outlinks = [{"url": u, "in_scope": self.scope.allows(u)} for u in rendered.outlinks]
        item.details["capture"] = {
            "method": "browser",
            "software": f"{rendered.context.get('browser', 'Chromium')} via {recorder_name()}",
            **rendered.context,
            "final_url": rendered.url,
            "title": rendered.title,
            "page_height": rendered.page_height,
            "seconds": round(rendered.seconds, 3),
            "behaviors": rendered.behaviors,
            "complete": rendered.complete,
            "wait": rendered.wait,
            "derivatives": response.meta.get(DERIVED_META, {}),
            "redirects": [e.as_dict() for e in rendered.redirects],
            "exchanges": [e.as_dict() for e in rendered.exchanges],
        }
        if rendered.retried:
            item.details["capture"]["retried"] = rendered.retried
        if not rendered.complete and item.outcome == Outcome.CAPTURED:
            # What the page showed is recorded; it is not a capture of its content.
            item.outcome = Outcome.INCOMPLETE.value
            item.error = "incomplete: " + "; ".join(rendered.wait.get("missing", []))
        return rendered

    def parse_requisite(self, response: Response) -> Iterator[Request | FetchResult]:
        item = self.result(response)
        redirect = self.follow_redirect(response, item)
        if redirect is not None:
            yield redirect
        ctype = (item.content_type or "").lower()
        if item.outcome == Outcome.CAPTURED and ("css" in ctype or response.url.endswith(".css")):
            page = response.meta["attest"].get("referrer") or response.url
            for url in extract_css(response.body, response.url):
                req = self.requisite_request(url, page, response.meta["attest"]["depth"])
                if req is not None:
                    yield req
        elif item.outcome == Outcome.CAPTURED and self._is_html(response, item.content_type):
            # A framed document: its own requisites belong to the page too.
            links = extract_html(response.body, response.url, getattr(response, "encoding", None))
            for url in links.requisites:
                req = self.requisite_request(url, response.url, response.meta["attest"]["depth"])
                if req is not None:
                    yield req
        yield item

    def parse_other(self, response: Response) -> Iterator[Request | FetchResult]:
        yield self.result(response)

    def follow_page(self, response: Response, item: FetchResult) -> Iterator[Request]:
        """Requisites of a captured HTML page, then its in-scope links."""
        depth = response.meta["attest"]["depth"]
        links = extract_html(response.body, response.url, getattr(response, "encoding", None))
        item.requisites = links.requisites
        for url in links.requisites:
            req = self.requisite_request(url, response.url, depth)
            if req is not None:
                yield req
        item.outlinks = []
        yield from self.follow_links(links.outlinks, response.url, depth, item)

    def follow_links(
        self, urls: list[str], page_url: str, depth: int, item: FetchResult
    ) -> Iterator[Request]:
        """In-scope links of a page, within the depth; each noted in ``item.outlinks``."""
        item.outlinks = []
        for url in urls:
            invalid = invalid_url_reason(url, self.settings.getint("URLLENGTH_LIMIT", URL_LIMIT))
            if invalid is not None:
                # A link that cannot be fetched is noted on the page, not followed.
                item.outlinks.append({"url": url, "invalid": invalid})
                continue
            in_scope = self.scope.allows(url)
            entry: dict[str, Any] = {"url": url, "in_scope": in_scope}
            if not in_scope:
                self._note_out_of_scope(url)
            elif self.is_attachment(url):
                entry["attachment"] = True
                req = self.page_request(
                    url, depth=depth + 1, via="link", referrer=page_url, role="attachment"
                )
                if req is not None:
                    yield req
            elif depth < self.scope.max_depth:
                req = self.page_request(url, depth=depth + 1, via="link", referrer=page_url)
                if req is not None:
                    yield req
            else:
                entry["beyond_depth"] = True
            item.outlinks.append(entry)

    def is_attachment(self, url: str) -> bool:
        path = urlsplit(url).path.lower()
        return any(path.endswith("." + ext) for ext in self.source.attachments)

    def _note_out_of_scope(self, url: str) -> None:
        self._out_of_scope.add(url)

    def out_of_scope_results(self) -> list[FetchResult]:
        return [
            FetchResult(
                url=u,
                source=self.source.id,
                outcome=Outcome.OUT_OF_SCOPE.value,
                role="page",
                via="link",
                depth=-1,
            )
            for u in sorted(self._out_of_scope)
        ]

    @staticmethod
    def _is_html(response: Response, content_type: str | None = None) -> bool:
        if content_type is None:
            content_type = header(response, "Content-Type")
        ctype = (content_type or "").lower()
        return "html" in ctype or (
            not ctype and response.body.lstrip()[:15].lower().startswith(b"<!doctype html")
        )

    # --- failures ---------------------------------------------------------------------
    def fetch_failed(self, failure: Failure) -> Iterator[FetchResult]:
        request = failure.request  # type: ignore[attr-defined]
        info = request.meta.get("attest", {})
        outcome = info.get("outcome")
        if outcome is None and isinstance(
            failure.value, (ConnectionRefusedError, ConnectError, DNSLookupError)
        ):
            # The recorder cannot be reached: nothing can be captured, so stop the crawl
            # instead of failing every URL.
            self.logger.error("the recorder is unreachable (%s); stopping", failure.value)
            self.crawler.stats.inc_value("attest/recorder_unreachable")
            stop_crawl(self.crawler, "recorder_unreachable")
            return
        if outcome is None:
            # The exchange broke between the recorder and the crawler (the recorder kept what
            # it received); the URL is reported, and the crawl goes on.
            self.logger.warning("fetch of %s failed: %r", request.url, failure.value)
            outcome = Outcome.CONNECTION_ERROR.value
        yield FetchResult(
            url=request.url,
            source=self.source.id,
            outcome=outcome,
            role=info.get("role", "page"),
            via=info.get("via", "link"),
            depth=info.get("depth", 0),
            referrer=info.get("referrer"),
            error=str(failure.value),
        )
