"""What every platform adapter shares: post metadata, outcome classification, URL parts.

An adapter decides how a profile is walked (rendered feed, HTML pages, a public API) and how
each post is found; the spider (:mod:`crawlers.spiders.profile`) does the capturing. Every
adapter reports posts with the same fields (:class:`PostRef`) and classifies unavailable pages
with the same outcomes (``login_wall``, ``suspended``, ``removed``, ``rate_limited``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from archive.outcomes import Outcome
from crawlers.browser.behaviors import BehaviorSpec

if TYPE_CHECKING:
    from scrapy.http import Request, Response

    from crawlers.browser.capture import RenderedPage
    from crawlers.spiders.profile import ProfileSpider


@dataclass
class PostRef:
    """One post as its platform presents it (time as shown, and machine-readable if given)."""

    platform: str
    account: str | None
    post_id: str | None
    permalink: str
    platform_time: str | None = None
    platform_time_shown: str | None = None
    found_on: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


# Phrases platforms show instead of content. Checked only on pages with little text, so a post
# that merely quotes such a phrase is not taken for the notice itself.
MARKERS: tuple[tuple[Outcome, re.Pattern[str]], ...] = (
    (Outcome.SUSPENDED, re.compile(r"\baccount (has been |is )?suspended\b", re.I)),
    (
        Outcome.RATE_LIMITED,
        re.compile(r"\b(rate limit(ed| exceeded)?|too many requests)\b", re.I),
    ),
    (
        Outcome.LOGIN_WALL,
        re.compile(
            r"\b(log ?in|sign ?in|sign up) to (see|view|continue|read)\b|\byou must (log|sign) ?in\b",
            re.I,
        ),
    ),
    (
        Outcome.REMOVED,
        re.compile(
            r"\b(post|tweet|page|status|video|message|content) (has been|was) (removed|deleted)\b"
            r"|\bthis (post|tweet|page|content) (is )?(no longer available|(does not|doesn't) exist)\b"
            r"|\b(page|content) (isn't|is not) available\b",
            re.I,
        ),
    ),
)
MARKER_TEXT_LIMIT = 3000


class Platform:
    """The generic behaviour; adapters override what differs."""

    name = "generic"
    behaviors = BehaviorSpec()

    def __init__(self, spider: ProfileSpider) -> None:
        self.spider = spider
        self.source = spider.source

    # --- walking ------------------------------------------------------------------------
    def start_requests(self, seed: str) -> Iterable[Request]:
        raise NotImplementedError

    # --- URLs ---------------------------------------------------------------------------
    @staticmethod
    def path_parts(url: str) -> list[str]:
        return [p for p in urlsplit(url).path.split("/") if p]

    # --- outcomes -----------------------------------------------------------------------
    def classify(self, status: int, rendered: RenderedPage | None, text: str) -> Outcome | None:
        """The unavailable-content outcome this page shows, or None when it shows content."""
        if status == 429:
            return Outcome.RATE_LIMITED
        if status in (404, 410):
            return Outcome.REMOVED
        if status == 401:
            return Outcome.LOGIN_WALL
        if rendered is not None:
            api = [e for e in rendered.exchanges if e.resource_type in ("xhr", "fetch")]
            if any(e.status == 429 for e in api):
                return Outcome.RATE_LIMITED
        if len(text) <= MARKER_TEXT_LIMIT:
            for outcome, pattern in MARKERS:
                if pattern.search(text):
                    return outcome
        if rendered is not None and any(e.status == 410 for e in rendered.exchanges):
            return Outcome.REMOVED
        return None

    def classify_response(self, response: Response) -> Outcome | None:
        """For pages fetched without the browser (HTML or API)."""
        text = ""
        if response.status >= 400 and hasattr(response, "text"):
            text = response.text[:MARKER_TEXT_LIMIT]
        return self.classify(response.status, None, text)
