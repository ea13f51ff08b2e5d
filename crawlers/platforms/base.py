"""What every platform adapter shares: post metadata, outcome classification, URL parts.

An adapter decides how a profile is walked (rendered feed, HTML pages, a public API) and how
each post is found; the spider (:mod:`crawlers.spiders.profile`) does the capturing. Every
adapter reports posts with the same fields (:class:`PostRef`) and classifies unavailable pages
with the same outcomes (``login_wall``, ``suspended``, ``removed``, ``rate_limited``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from archive.errors import ConfigError
from archive.outcomes import Outcome
from crawlers.browser.behaviors import BehaviorSpec
from crawlers.browser.ready import ReadySpec

if TYPE_CHECKING:
    from scrapy.http import Request, Response

    from crawlers.browser.capture import RenderedPage
    from crawlers.items import FetchResult
    from crawlers.spiders.profile import ProfileSpider

log = logging.getLogger(__name__)

#: Outcomes of content a platform does not show (as opposed to a failed fetch).
UNAVAILABLE = frozenset(
    {Outcome.LOGIN_WALL, Outcome.SUSPENDED, Outcome.REMOVED, Outcome.RATE_LIMITED}
)

#: Request meta: the seed a request's walk started from.
SEED_META = "attest_seed"
#: Request meta: which page of a feed or API listing a request is (1 for the first).
FEED_PAGE_META = "attest_feed_page"
#: Request meta: more about a post for its page's metadata (the API's ids, ...).
POST_DETAILS_META = "attest_post_details"
#: Request meta: the unavailable outcome the API gave for a seed whose page is captured.
SEED_OUTCOME_META = "attest_seed_outcome"


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
#: The markers as the browser checks them (JavaScript regexes, case-insensitive).
NOTICE_PATTERNS = tuple(pattern.pattern for _, pattern in MARKERS)


class Platform:
    """The generic behaviour; adapters override what differs.

    ``content_ready``: a CSS selector a rendered post page shows once its content is there
    (None: the page is complete when its requests settled and its DOM is stable); a source's
    ``profile.content_ready`` replaces it. A page showing one of the platform's notices
    (:data:`MARKERS`) is complete too: the notice is what it shows.
    """

    name = "generic"
    behaviors = BehaviorSpec()
    content_ready: str | None = None

    def __init__(self, spider: ProfileSpider) -> None:
        self.spider = spider
        self.source = spider.source

    # --- walking ------------------------------------------------------------------------
    def start_requests(self, seed: str) -> Iterable[Request]:
        raise NotImplementedError

    # --- completeness -------------------------------------------------------------------
    def post_ready(self) -> ReadySpec:
        """When a rendered post page is complete (see :mod:`crawlers.browser.ready`)."""
        return ReadySpec(
            selector=self.source.content_ready or self.content_ready,
            notices=NOTICE_PATTERNS,
            notice_text_limit=MARKER_TEXT_LIMIT,
        )

    def feed_ready(self) -> ReadySpec:
        """When a rendered feed or profile page is complete: settled, stable, or a notice."""
        return ReadySpec(notices=NOTICE_PATTERNS, notice_text_limit=MARKER_TEXT_LIMIT)

    # --- URLs ---------------------------------------------------------------------------
    @staticmethod
    def path_parts(url: str) -> list[str]:
        return [p for p in urlsplit(url).path.split("/") if p]

    @staticmethod
    def origin_of(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def api_base(self, seed: str, default: str | None = None) -> str:
        """``profile.api_base``, else ``default``, else the seed's origin (no trailing slash)."""
        return (self.source.api_base or default or self.origin_of(seed)).rstrip("/")

    def bad_seed(self, seed: str, expected: str) -> ConfigError:
        return ConfigError(
            f"{self.source.path}: source {self.source.id!r}: seed {seed!r} is not {expected}"
        )

    # --- paging -------------------------------------------------------------------------
    @staticmethod
    def page_number(response: Response) -> int:
        number: int = response.meta.get(FEED_PAGE_META, 1)
        return number

    def may_page_on(self, page: int) -> bool:
        """Whether a feed whose page ``page`` was just read may fetch the next one."""
        return (
            page < self.source.max_feed_pages
            and self.spider.posts_scheduled < self.source.max_posts
        )

    # --- results ------------------------------------------------------------------------
    def api_result(self, response: Response) -> tuple[FetchResult, Any]:
        """An API response's result (classified) and its JSON, or None when unusable."""
        item = self.spider.result(response)
        self.spider.mark_unavailable(item, self.classify_response(response))
        if item.outcome != Outcome.CAPTURED:
            return item, None
        try:
            return item, json.loads(response.body)
        except ValueError:
            log.warning("%s: the API answered %d with no JSON", response.url, response.status)
            return item, None

    def parse_api(self, response: Response) -> Iterator[Any]:
        """An API response that is only captured (its raw answer is the record)."""
        item, _data = self.api_result(response)
        yield item

    def post_request(
        self,
        ref: PostRef,
        *,
        via: str,
        depth: int,
        referrer: str | None,
        details: dict[str, Any] | None = None,
    ) -> Request | None:
        """The post's page, with ``details`` (API ids, ...) for its metadata record."""
        request = self.spider.post_request(
            ref, via=via, depth=depth, referrer=referrer, platform=self
        )
        if request is not None and details:
            request.meta[POST_DETAILS_META] = details
        return request

    def parse_post(self, response: Response) -> Iterable[Any]:
        """A post's page, rendered by the browser or fetched as it is, with the post's fields."""
        spider = self.spider
        ref: PostRef = response.meta["attest_post"]
        item, rendered = spider.rendered_result(response, self)
        item.details.update(response.meta.get(POST_DETAILS_META, {}))
        item.details["post"] = ref.as_dict()
        if rendered is None:
            yield from spider.requisites_of(response, item)
        yield item

    # --- unavailable seeds ------------------------------------------------------------------
    def seed_unavailable(self, seed: str, outcome: str, api_url: str) -> Request | None:
        """Capture the seed itself as a page when the API says its profile is unavailable.

        The page keeps its own outcome when it shows one; a page that looks fine is reported
        with the API's outcome (``classified_from`` says so).
        """
        request = self.spider.page_request(
            seed,
            depth=0,
            via="seed",
            callback=self.parse_seed,
            browser=self.source.browser,
            behaviors=self.behaviors.for_post(),
            ready=self.feed_ready(),
        )
        if request is not None:
            request.meta[SEED_OUTCOME_META] = {"outcome": outcome, "api": api_url}
        return request

    def parse_seed(self, response: Response) -> Iterator[Any]:
        spider = self.spider
        item, rendered = spider.rendered_result(response, self)
        api: dict[str, str] = response.meta[SEED_OUTCOME_META]
        item.details["profile"] = {"unavailable": api["outcome"], "api": api["api"]}
        if rendered is None:
            yield from spider.requisites_of(response, item)
        if item.outcome == Outcome.CAPTURED:
            item.details["classified_from"] = item.outcome
            item.outcome = api["outcome"]
        yield item

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
