"""What the browser does to a page before it is snapshotted, each step bounded and logged.

In order: wait for the network to go idle; scroll to the end of an infinite feed until no new
content appears; click "show more"/"load more" controls until none is left; expand truncated
posts; bring lazy images in (``loading=lazy`` and ``data-src`` swaps, by scrolling every part
of the page into view); wait for the network again. Each behavior stops at its count limit, at
the page's time budget, or when nothing changes, and says which in the page's metadata.

Platform modules (:mod:`crawlers.platforms`) may replace the patterns and selectors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Page


@dataclass(frozen=True)
class BehaviorSpec:
    max_scrolls: int = 40
    max_load_more: int = 40
    max_expand: int = 200
    #: Seconds for all behaviors of one page together.
    budget_s: float = 30.0
    #: Seconds to wait for the network to settle after each step.
    settle_s: float = 2.0
    #: How long the page height may stay unchanged before a feed counts as ended.
    no_growth_s: float = 1.0
    load_more_selector: str = "button, a[role=button], [role=button]"
    load_more_pattern: str = (
        r"^\s*(show|load|see|view)\s+(more|older)(\s+(posts|results|items|tweets|messages))?\s*$"
    )
    expand_selector: str = "button, a[role=button], [role=button], span[role=button]"
    expand_pattern: str = r"^\s*(\u2026\s*)?(more|read more|see more|show more text)\s*$"
    #: Feed behaviors (scroll to the end, load more); a single post's page needs neither.
    feed: bool = True

    def for_post(self) -> BehaviorSpec:
        return replace(self, feed=False)


_CLICK_MATCHING = """([selector, pattern, max, once]) => {
  const re = new RegExp(pattern, 'i');
  let clicked = 0;
  for (const el of document.querySelectorAll(selector)) {
    if (clicked >= max) break;
    if (once && el.dataset.attestClicked) continue;
    const text = (el.innerText || el.textContent || '').trim();
    if (!re.test(text)) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (once) el.dataset.attestClicked = '1';
    el.scrollIntoView({block: 'center'});
    el.click();
    clicked++;
  }
  return clicked;
}"""

_LAZY_EAGER = """() => {
  let n = 0;
  for (const img of document.querySelectorAll('img[loading=lazy], iframe[loading=lazy]')) {
    img.loading = 'eager'; n++;
  }
  return n;
}"""

_VIEW_STEPS = """async (step) => {
  const h = () => Math.max(document.body ? document.body.scrollHeight : 0,
                           document.documentElement.scrollHeight);
  let y = 0, steps = 0;
  while (y < h() && steps < 400) {
    window.scrollTo(0, y);
    await new Promise(r => setTimeout(r, 40));
    y += step; steps++;
  }
  window.scrollTo(0, 0);
  return steps;
}"""

PAGE_HEIGHT_JS = "() => Math.max(document.body ? document.body.scrollHeight : 0, document.documentElement.scrollHeight)"
_SIZE = f"() => [({PAGE_HEIGHT_JS})(), document.getElementsByTagName('*').length]"


async def _size(page: Page) -> tuple[int, int]:
    """Page height and element count: either changing means new content came in."""
    height, count = await page.evaluate(_SIZE)
    return int(height), int(count)


class _Clock:
    def __init__(self, budget_s: float) -> None:
        self.deadline = time.monotonic() + budget_s

    @property
    def left(self) -> float:
        return self.deadline - time.monotonic()


async def settle(page: Page, timeout_s: float) -> bool:
    """Wait for network idle (no request for 500 ms); False if it did not come in time."""
    from playwright.async_api import Error as PlaywrightError

    if timeout_s <= 0:
        return False
    try:
        await page.wait_for_load_state("networkidle", timeout=timeout_s * 1000)
    except PlaywrightError:
        return False
    return True


async def _grew(page: Page, before: tuple[int, int], wait_s: float) -> bool:
    """Whether height or element count changed within ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        now = await _size(page)
        if now != before:
            return True
        if time.monotonic() >= deadline:
            return False
        await page.wait_for_timeout(100)


async def scroll_to_end(page: Page, spec: BehaviorSpec, clock: _Clock) -> dict[str, Any]:
    rounds = 0
    stopped = "no_new_content"
    while True:
        if rounds >= spec.max_scrolls:
            stopped = "limit"
            break
        if clock.left <= 0:
            stopped = "time"
            break
        before = await _size(page)
        await page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
        rounds += 1
        await settle(page, min(spec.settle_s, clock.left))
        if not await _grew(page, before, min(spec.no_growth_s, max(clock.left, 0))):
            break
    return {"behavior": "scroll_to_end", "rounds": rounds, "stopped": stopped}


async def click_repeatedly(
    page: Page,
    name: str,
    selector: str,
    pattern: str,
    limit: int,
    spec: BehaviorSpec,
    clock: _Clock,
    *,
    once: bool,
) -> dict[str, Any]:
    """Click matching controls until none is left. ``once``: each element at most once
    (expanders); otherwise one click per round on the same control (a "load more" button
    stays), stopping when a click brings nothing new."""
    clicks = 0
    stopped = "none_left"
    while True:
        if clicks >= limit:
            stopped = "limit"
            break
        if clock.left <= 0:
            stopped = "time"
            break
        before = await _size(page)
        batch = limit - clicks if once else 1
        n = int(await page.evaluate(_CLICK_MATCHING, [selector, pattern, batch, once]))
        if n == 0:
            break
        clicks += n
        await settle(page, min(spec.settle_s, clock.left))
        grew = await _grew(page, before, min(spec.no_growth_s, max(clock.left, 0)))
        if not once and not grew:
            stopped = "no_new_content"
            break
    return {"behavior": name, "clicks": clicks, "stopped": stopped}


async def load_lazy(page: Page, spec: BehaviorSpec, clock: _Clock) -> dict[str, Any]:
    eager = int(await page.evaluate(_LAZY_EAGER))
    steps = 0
    if clock.left > 0:
        steps = int(await page.evaluate(_VIEW_STEPS, 600))
    await settle(page, min(spec.settle_s, clock.left))
    return {"behavior": "lazy_images", "made_eager": eager, "view_steps": steps}


async def run_behaviors(page: Page, spec: BehaviorSpec) -> list[dict[str, Any]]:
    """Every behavior, in order, within ``spec.budget_s``; returns what each did."""
    clock = _Clock(spec.budget_s)
    log: list[dict[str, Any]] = []
    started = time.monotonic()
    idle = await settle(page, min(spec.settle_s * 2, clock.left))
    log.append({"behavior": "network_idle", "reached": idle})
    if spec.feed:
        log.append(await scroll_to_end(page, spec, clock))
        log.append(
            await click_repeatedly(
                page,
                "load_more",
                spec.load_more_selector,
                spec.load_more_pattern,
                spec.max_load_more,
                spec,
                clock,
                once=False,
            )
        )
        # Content a button brought in may itself scroll on.
        log.append(await scroll_to_end(page, spec, clock))
    log.append(
        await click_repeatedly(
            page,
            "expand_truncated",
            spec.expand_selector,
            spec.expand_pattern,
            spec.max_expand,
            spec,
            clock,
            once=True,
        )
    )
    log.append(await load_lazy(page, spec, clock))
    idle = await settle(page, max(min(spec.settle_s, clock.left), 0.5))
    log.append({"behavior": "network_idle", "reached": idle})
    log.append({"behavior": "total", "seconds": round(time.monotonic() - started, 3)})
    return log
