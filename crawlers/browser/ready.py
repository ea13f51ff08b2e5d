"""When a rendered page is complete: its own requests settled and its content there.

The browser waits, within a time bound, until all three hold:

- **network settled**: none of the page's requests has been in flight for ``quiet_s`` (counted
  from Playwright's request events, not its one-off ``networkidle`` lifecycle event, which
  stays "reached" after later requests start);
- **DOM stable**: the element count and text length have not changed for ``quiet_s``;
- **content ready**: the content-ready selector (:class:`ReadySpec`, from the platform adapter
  or the source) matches, or the page shows one of the platform's notices (suspended, removed,
  login wall...), which is its content. Without a selector, this holds.

The page is **complete** when its requests settled and its content is ready. A DOM that never
stops changing (a ticker, a carousel) is waited for until the bound and then noted, but does not
make an otherwise complete page incomplete. :func:`wait_until_complete` says which held and,
for an incomplete page, what was missing; the capture records that with the page (see
:mod:`crawlers.browser.capture`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Page, Request


@dataclass(frozen=True)
class ReadySpec:
    """What a complete page shows."""

    #: A CSS selector present once the page's content is there; None: no such check.
    selector: str | None = None
    #: Case-insensitive regexes (JavaScript syntax) of notices a page may show instead of its
    #: content; a page showing one (in its first ``notice_text_limit`` characters) is complete.
    notices: tuple[str, ...] = ()
    notice_text_limit: int = 3000
    #: Seconds with no request in flight and no DOM change.
    quiet_s: float = 0.5


_PROBE = """([selector, notices, limit]) => {
  const body = document.body;
  const text = body ? body.innerText || '' : '';
  let found = null;
  if (selector) {
    try { found = document.querySelector(selector) !== null; } catch (e) { found = false; }
  }
  let notice = null;
  if (text.length <= limit) {
    for (const pattern of notices) {
      if (new RegExp(pattern, 'i').test(text)) { notice = pattern; break; }
    }
  }
  return [found, notice, document.getElementsByTagName('*').length, text.length];
}"""


class RequestsInFlight:
    """The page's requests that have started and not yet finished or failed."""

    def __init__(self, page: Page) -> None:
        self.pending: dict[Request, float] = {}
        self.last_change = time.monotonic()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request: Request) -> None:
        self.pending[request] = time.monotonic()
        self.last_change = time.monotonic()

    def _ended(self, request: Request) -> None:
        if self.pending.pop(request, None) is not None:
            self.last_change = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds since the last request ended, or 0 while one is in flight."""
        return 0.0 if self.pending else time.monotonic() - self.last_change

    def urls(self, limit: int = 10) -> list[str]:
        return [r.url for r in list(self.pending)[:limit]]


async def wait_until_complete(
    page: Page, requests: RequestsInFlight, ready: ReadySpec, timeout_s: float
) -> dict[str, Any]:
    """Poll until the page is complete or ``timeout_s`` ran out; says what held."""
    from playwright.async_api import Error as PlaywrightError

    started = time.monotonic()
    deadline = started + max(timeout_s, 0.0)
    shape: tuple[int, int] | None = None
    shape_since = started
    found: bool | None = None
    notice: str | None = None
    settled = stable = False
    while True:
        now = time.monotonic()
        try:
            found, notice, count, length = await page.evaluate(
                _PROBE, [ready.selector, list(ready.notices), ready.notice_text_limit]
            )
        except PlaywrightError:
            # The page navigated (a script redirect) and its context went: look again.
            found, notice, count, length = False, None, -1, -1
        if (count, length) != shape:
            shape, shape_since = (count, length), now
        stable = now - shape_since >= ready.quiet_s
        settled = requests.quiet_for() >= ready.quiet_s
        content = ready.selector is None or bool(found) or notice is not None
        if settled and stable and content:
            break
        if now >= deadline:
            break
        await page.wait_for_timeout(100)
    complete = settled and content
    result: dict[str, Any] = {
        "complete": complete,
        "network_settled": settled,
        "dom_stable": stable,
        "content_ready": found if ready.selector else None,
        "selector": ready.selector,
        "seconds": round(time.monotonic() - started, 3),
        "bound_s": timeout_s,
    }
    if notice:
        result["notice"] = notice
    if not complete:
        missing = []
        if not settled:
            missing.append(f"requests still in flight: {', '.join(requests.urls()) or 'none'}")
        if not content:
            missing.append(f"no element matches the content-ready selector {ready.selector!r}")
        result["missing"] = missing
    return result
