"""Chromium for the tests, and pages that may only reach one origin (replay must never fetch
from the live fixture web)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from playwright.sync_api import Browser, Page, Route, sync_playwright

CHROMIUM = os.environ.get("ATTEST_CHROMIUM") or "/usr/lib/chromium/chromium"


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def guarded_page(
    browser: Browser, origin: str, *, timeout_ms: float | None = None
) -> Iterator[tuple[Page, list[str]]]:
    """A fresh context whose requests may only reach ``origin``; others are aborted and listed
    (the list is yielded with the page, for the test to assert it stays empty)."""
    leaked: list[str] = []
    allowed: list[str] = []

    def guard(route: Route) -> None:
        if route.request.url.startswith(origin + "/"):
            allowed.append(route.request.url)
            route.continue_()
        else:
            leaked.append(route.request.url)
            route.abort()

    context = browser.new_context()
    try:
        if timeout_ms is not None:
            context.set_default_timeout(timeout_ms)
        context.route("**/*", guard)
        yield context.new_page(), leaked
    finally:
        context.close()
    assert allowed, "the guard saw no request: it is not in the way"
