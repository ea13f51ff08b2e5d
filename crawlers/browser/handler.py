"""Scrapy's download handler, with browser capture for requests that ask for it.

A request whose meta holds ``attest_browser`` is rendered by Chromium (through the recorder,
like every other request) instead of fetched by Scrapy; the spider gets the rendered DOM as the
response body, with the document's status and headers and its capture id. Going through the
download handler keeps browser pages inside Scrapy's per-host slots, so a source's politeness
(delay, concurrency per host) holds for them too.

After rendering, the handler has the recorder write the page's derivatives, each a
``resource`` record linked to the page's response record by ``WARC-Concurrent-To``:

- ``urn:view:<url>``: the full-page screenshot (``image/png``),
- ``urn:dom:<url>``: the rendered DOM (``text/html``),
- ``urn:text:<url>``: the visible text (``text/plain``),
- ``urn:pdf:<url>``: a PDF print, when the source asks for one.

Their target URIs can never replay as the page itself (Browsertrix's convention).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Request, Response

from archive.errors import CaptureError, DiskFull
from archive.outcomes import Outcome
from crawlers.browser.behaviors import BehaviorSpec
from crawlers.browser.capture import BrowserPool, RenderedPage
from crawlers.browser.launch import BrowserSettings, find_chromium
from crawlers.extensions import stop_crawl
from crawlers.handlers import KeepAliveDownloadHandler
from crawlers.recorder.process import RecordClient

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger(__name__)

BROWSER_META = "attest_browser"
RENDERED_META = "attest_rendered"
DERIVED_META = "attest_derivatives"

#: Headers of the origin's response that describe its wire bytes, not the rendered DOM.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class BrowserCaptureFailed(CaptureError):
    """The browser could not load the page's document at all."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def browser_settings(crawler: Crawler) -> BrowserSettings:
    s = crawler.settings
    return BrowserSettings(
        executable=find_chromium(s.get("ATTEST_CHROMIUM")),
        proxy_url=s["ATTEST_RECORDER_URL"],
        proxy_secret=s.get("ATTEST_RECORDER_SECRET"),
        user_agent=s["USER_AGENT"],
        concurrency=s.getint("ATTEST_BROWSER_CONCURRENCY", 2),
        recycle_after=s.getint("ATTEST_BROWSER_RECYCLE", 200),
        page_timeout_s=s.getfloat("ATTEST_BROWSER_TIMEOUT", 45.0),
        ready_timeout_s=s.getfloat("ATTEST_BROWSER_READY_TIMEOUT", 20.0),
    )


def derivative_records(rendered: RenderedPage) -> list[tuple[str, str, bytes]]:
    """(target URI, content type, bytes) of each derivative of a rendered page."""
    url = rendered.url
    out: list[tuple[str, str, bytes]] = []
    if rendered.screenshot:
        out.append((f"urn:view:{url}", "image/png", rendered.screenshot))
    out.append((f"urn:dom:{url}", "text/html; charset=utf-8", rendered.dom.encode("utf-8")))
    out.append((f"urn:text:{url}", "text/plain; charset=utf-8", rendered.text.encode("utf-8")))
    if rendered.pdf:
        out.append((f"urn:pdf:{url}", "application/pdf", rendered.pdf))
    return out


class BrowserDownloadHandler(KeepAliveDownloadHandler):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._browsers: BrowserPool | None = None
        self._records: RecordClient | None = None

    def _browser_pool(self) -> BrowserPool:
        if self._browsers is None:
            self._browsers = BrowserPool(browser_settings(self._crawler))
            self._records = RecordClient(
                self._crawler.settings.getint("ATTEST_RECORDER_PORT"),
                secret=self._crawler.settings.get("ATTEST_RECORDER_SECRET"),
            )
        return self._browsers

    async def download_request(self, request: Request) -> Response:
        wanted: dict[str, Any] | None = request.meta.get(BROWSER_META)
        if not wanted:
            return await super().download_request(request)
        # One crawler per source, its spider named by the source id.
        spider = self._crawler.spider
        source = spider.name if spider is not None and spider.name else "adhoc"
        spec: BehaviorSpec = wanted.get("behaviors") or BehaviorSpec()
        rendered = await self._browser_pool().render(
            request.url,
            source=source,
            behaviors=spec,
            extract=wanted.get("extract"),
            screenshot=wanted.get("screenshot", True),
            pdf=wanted.get("pdf", False),
            ready=wanted.get("ready"),
        )
        request.meta[RENDERED_META] = rendered
        if rendered.error is not None:
            outcome = (
                Outcome.TIMEOUT if "Timeout" in rendered.error else Outcome.CONNECTION_ERROR
            ).value
            info = request.meta.get("attest")
            if info is not None:
                info["outcome"] = outcome
            raise BrowserCaptureFailed(f"{request.url}: {rendered.error}", outcome=outcome)
        if rendered.capture_id:
            try:
                request.meta[DERIVED_META] = await asyncio.to_thread(
                    self._write_derivatives, source, rendered
                )
            except DiskFull as exc:
                stop_crawl(self._crawler, "disk_full")
                raise IgnoreRequest("recorder spool is full") from exc
        headers = {k: v for k, v in rendered.headers.items() if k not in _WIRE_HEADERS}
        return HtmlResponse(
            url=rendered.url,
            status=rendered.status,
            headers=headers,
            body=rendered.dom.encode("utf-8"),
            encoding="utf-8",
            request=request,
            flags=["browser"],
        )

    def _write_derivatives(self, source: str, rendered: RenderedPage) -> dict[str, dict[str, Any]]:
        """Write each derivative (a blocking call to the recorder); returns id and digest."""
        assert self._records is not None
        written: dict[str, dict[str, Any]] = {}
        for target, ctype, data in derivative_records(rendered):
            kind = target.split(":", 2)[1]
            record_id = self._records.write(
                source,
                target,
                data,
                ctype,
                record_type="resource",
                concurrent_to=rendered.capture_id,
            )
            written[kind] = {
                "record_id": record_id,
                "target": target,
                "content_type": ctype,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        return written

    async def close(self) -> None:
        if self._browsers is not None:
            log.info("closing the browser", extra={"pages": self._browsers.pages})
            await self._browsers.close()
        await super().close()
