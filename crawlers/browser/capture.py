"""Render one page in Chromium through the recorder, run its behaviors, take its derivatives.

The WARC request/response records of everything the page loads (document, subresources,
XHR/fetch and JSON API calls) are written by the recorder as the bytes pass through it, exactly
as for Scrapy: the browser's own APIs only ever see decoded bodies, so they are never the
record. What the browser adds is what only it can see, written as derivatives linked to the
page's response record: a full-page screenshot, the rendered DOM, the visible text.

A page is snapshotted once it is complete (:mod:`crawlers.browser.ready`). One that is not
within the bound is tried once more in a fresh context; if it is still incomplete, it is
snapshotted as it is and reported incomplete, with what was missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archive.errors import RecorderError
from crawlers.browser.behaviors import PAGE_HEIGHT_JS, BehaviorSpec, run_behaviors
from crawlers.browser.launch import BrowserSettings
from crawlers.browser.ready import ReadySpec, RequestsInFlight, wait_until_complete
from crawlers.recorder.protocol import CAPTURE_ID_HEADER, OUTCOME_HEADER, WARC_DATE_HEADER

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Playwright, Response

log = logging.getLogger(__name__)

_OUTLINKS = """() => {
  const out = [];
  for (const a of document.querySelectorAll('a[href], area[href]')) {
    if (a.href && /^https?:/i.test(a.href)) out.push(a.href.split('#')[0]);
  }
  return [...new Set(out)];
}"""
_TEXT = "() => document.body ? document.body.innerText : ''"


@dataclass
class Exchange:
    """One response the page received, as the browser saw it (its record is the recorder's)."""

    url: str
    status: int
    resource_type: str
    capture_id: str | None
    outcome: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "type": self.resource_type,
            "capture_id": self.capture_id,
            "outcome": self.outcome,
        }


@dataclass
class RenderedPage:
    """What one browser capture produced (the records themselves are in the recorder's WARC)."""

    requested_url: str
    url: str
    status: int
    headers: dict[str, str]
    capture_id: str | None
    warc_date: str | None
    outcome: str | None
    #: Each hop of the document's redirect chain before the final response.
    redirects: list[Exchange] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    dom: str = ""
    text: str = ""
    title: str = ""
    outlinks: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    pdf: bytes = b""
    page_height: int = 0
    behaviors: list[dict[str, Any]] = field(default_factory=list)
    extracted: Any = None
    error: str | None = None
    seconds: float = 0.0
    #: The completeness wait's result (:func:`crawlers.browser.ready.wait_until_complete`).
    wait: dict[str, Any] = field(default_factory=dict)
    #: Earlier attempts at this page that were incomplete (each in a context of its own).
    retried: list[dict[str, Any]] = field(default_factory=list)
    #: How it was rendered: browser, automation, viewport, user agent (BrowserSettings.page_context).
    context: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return bool(self.wait.get("complete", True))

    def attempt_summary(self) -> dict[str, Any]:
        return {"capture_id": self.capture_id, "status": self.status, "wait": self.wait}


async def _exchange(response: Response) -> Exchange:
    headers = await response.all_headers()
    return Exchange(
        url=response.url,
        status=response.status,
        resource_type=response.request.resource_type,
        capture_id=headers.get(CAPTURE_ID_HEADER.lower()),
        outcome=headers.get(OUTCOME_HEADER.lower()),
    )


class BrowserPool:
    """One Chromium for the run (restarted every ``recycle_after`` pages), a fresh context per
    page, at most ``concurrency`` pages at once."""

    def __init__(self, settings: BrowserSettings) -> None:
        self.settings = settings
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._pages_on_browser = 0
        #: Pages open on each browser; a retired browser closes when its count drops to 0.
        self._open_pages: dict[Browser, int] = {}
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._lock = asyncio.Lock()
        self._retired: set[Browser] = set()
        self._context: dict[str, str] | None = None
        self.pages = 0

    async def _current_browser(self) -> Browser:
        async with self._lock:
            if self._playwright is None:
                from playwright.async_api import async_playwright

                self._playwright = await async_playwright().start()
            if self._browser is not None and self._pages_on_browser >= self.settings.recycle_after:
                # Pages still open on the old one finish there; it closes when they are done.
                self._retired.add(self._browser)
                self._browser = None
            if self._browser is None or not self._browser.is_connected():
                self._browser = await self._playwright.chromium.launch(
                    **self.settings.launch_options()
                )
                self._pages_on_browser = 0
                log.info("browser started", extra={"pages_so_far": self.pages})
            self._pages_on_browser += 1
            self._open_pages[self._browser] = self._open_pages.get(self._browser, 0) + 1
            return self._browser

    async def _page_done(self, browser: Browser) -> None:
        left = self._open_pages[browser] = self._open_pages[browser] - 1
        if left == 0 and browser in self._retired:
            self._retired.discard(browser)
            del self._open_pages[browser]
            with contextlib.suppress(Exception):
                await browser.close()
            log.info("retired browser closed", extra={"pages_so_far": self.pages})

    async def render(
        self,
        url: str,
        *,
        source: str,
        behaviors: BehaviorSpec,
        extract: str | tuple[str, Any] | None = None,
        screenshot: bool = True,
        pdf: bool = False,
        ready: ReadySpec | None = None,
    ) -> RenderedPage:
        """Render ``url`` once it is complete; an incomplete page is tried once more in a
        fresh context before it is snapshotted as it is (``RenderedPage.complete`` False)."""
        ready = ready or ReadySpec()
        if self._context is None:
            # Asks the browser binary for its version once (a subprocess): off the event loop.
            self._context = await asyncio.to_thread(self.settings.page_context)
        async with self._slots:
            rendered = await self._render_complete(
                url, source, behaviors, extract, screenshot, pdf, ready
            )
        rendered.context = dict(self._context)
        return rendered

    async def _render_complete(
        self,
        url: str,
        source: str,
        behaviors: BehaviorSpec,
        extract: str | tuple[str, Any] | None,
        screenshot: bool,
        pdf: bool,
        ready: ReadySpec,
    ) -> RenderedPage:
        first = await self._attempt(
            url, source, behaviors, extract, screenshot, pdf, ready, last=False
        )
        if first.error is not None or first.complete:
            return first
        log.info(
            "page incomplete, trying once more in a fresh context",
            extra={"url": url, "missing": first.wait.get("missing")},
        )
        second = await self._attempt(
            url, source, behaviors, extract, screenshot, pdf, ready, last=True
        )
        second.retried = [first.attempt_summary()]
        return second

    async def _attempt(
        self,
        url: str,
        source: str,
        behaviors: BehaviorSpec,
        extract: str | tuple[str, Any] | None,
        screenshot: bool,
        pdf: bool,
        ready: ReadySpec,
        *,
        last: bool,
    ) -> RenderedPage:
        browser = await self._current_browser()
        try:
            context = await browser.new_context(**self.settings.context_options(source))
            try:
                page = await context.new_page()
                return await self._render(
                    page, url, behaviors, extract, screenshot, pdf, ready, last=last
                )
            finally:
                with contextlib.suppress(Exception):
                    await context.close()
        finally:
            self.pages += 1
            await self._page_done(browser)

    async def _render(
        self,
        page: Page,
        url: str,
        behaviors: BehaviorSpec,
        extract: str | tuple[str, Any] | None,
        screenshot: bool,
        pdf: bool,
        ready: ReadySpec,
        *,
        last: bool = True,
    ) -> RenderedPage:
        """One attempt; unless it is the ``last``, an incomplete page is given up at once."""
        from playwright.async_api import Error as PlaywrightError

        started = time.monotonic()
        seen: list[Response] = []
        page.on("response", lambda response: seen.append(response))
        in_flight = RequestsInFlight(page)
        timeout_ms = self.settings.page_timeout_s * 1000
        page.set_default_timeout(timeout_ms)
        try:
            main = await page.goto(url, wait_until="load", timeout=timeout_ms)
        except PlaywrightError as exc:
            # The document never arrived (the recorder answered with an outcome, or the page
            # hung): what was recorded stays recorded; the caller reports the failure.
            return RenderedPage(
                requested_url=url,
                url=url,
                status=0,
                headers={},
                capture_id=None,
                warc_date=None,
                outcome=None,
                exchanges=[await _exchange(r) for r in seen],
                error=str(exc).splitlines()[0],
                seconds=time.monotonic() - started,
            )
        if main is None:
            raise RecorderError(f"the browser gave no response for {url}")
        headers = await main.all_headers()
        redirects: list[Exchange] = []
        hop = main.request.redirected_from
        while hop is not None:
            previous = await hop.response()
            if previous is not None:
                redirects.insert(0, await _exchange(previous))
            hop = hop.redirected_from
        # The document's response, as the recorder tagged it: the same whatever comes next.
        document: dict[str, Any] = {
            "requested_url": url,
            "url": main.url,
            "status": main.status,
            "headers": headers,
            "capture_id": headers.get(CAPTURE_ID_HEADER.lower()),
            "warc_date": headers.get(WARC_DATE_HEADER.lower()),
            "outcome": headers.get(OUTCOME_HEADER.lower()),
            "redirects": redirects,
        }
        wait: dict[str, Any] = {}
        if main.status < 300:
            # An error page is complete as the server sent it; a page's content is awaited.
            wait = await wait_until_complete(page, in_flight, ready, self.settings.ready_timeout_s)
            if not wait["complete"] and not last:
                return RenderedPage(**document, seconds=time.monotonic() - started, wait=wait)
        log_ = await run_behaviors(page, behaviors)
        extracted = None
        if extract:
            try:
                if isinstance(extract, tuple):
                    extracted = await page.evaluate(extract[0], extract[1])
                else:
                    extracted = await page.evaluate(extract)
            except PlaywrightError as exc:
                log.warning("extraction failed on %s: %s", page.url, exc)
        dom = await page.content()
        text = str(await page.evaluate(_TEXT))
        outlinks = list(await page.evaluate(_OUTLINKS))
        height = int(await page.evaluate(PAGE_HEIGHT_JS))
        shot = b""
        if screenshot:
            shot = await page.screenshot(full_page=True, type="png", animations="disabled")
        printed = await page.pdf(print_background=True) if pdf else b""
        exchanges = []
        for response in seen:
            with contextlib.suppress(PlaywrightError):
                exchanges.append(await _exchange(response))
        return RenderedPage(
            **document,
            exchanges=exchanges,
            dom=dom,
            text=text,
            title=await page.title(),
            outlinks=outlinks,
            screenshot=shot,
            pdf=printed,
            page_height=height,
            behaviors=log_,
            extracted=extracted,
            seconds=time.monotonic() - started,
            wait=wait,
        )

    async def close(self) -> None:
        browsers = [b for b in (self._browser, *self._retired) if b is not None]
        self._browser, self._retired, self._open_pages = None, set(), {}
        for browser in browsers:
            with contextlib.suppress(Exception):
                await browser.close()
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None
