"""The ``profile`` spider: public social profiles, one capture per post.

The source's platform adapter (:mod:`crawlers.platforms`) walks the profile (rendered feed,
HTML pages or public API) and finds the posts; this spider captures each post as a page of its
own (with the browser when the source says ``browser``), and reports every page with what the
browser did, the derivatives it wrote, and the post's platform metadata.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from scrapy.http import Request, Response

from archive.outcomes import Outcome
from crawlers.browser.behaviors import BehaviorSpec
from crawlers.browser.ready import ReadySpec
from crawlers.items import FetchResult
from crawlers.links import extract_html
from crawlers.platforms import platform_for
from crawlers.spiders.base import CaptureSpider

if TYPE_CHECKING:
    from crawlers.browser.capture import RenderedPage
    from crawlers.platforms.base import Platform, PostRef

POST_META = "attest_post"


class ProfileSpider(CaptureSpider):
    name = "profile"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.platform = platform_for(self)
        self.posts_scheduled = 0
        self.posts_over_limit = 0

    async def start(self) -> AsyncIterator[Request | FetchResult]:
        for seed in self.source.seeds:
            invalid = self.invalid_seed(seed)
            if invalid is not None:
                yield invalid
                continue
            for request in self.platform.start_requests(seed):
                yield request

    # --- requests -----------------------------------------------------------------------
    def browser_request(
        self,
        url: str,
        *,
        via: str,
        depth: int,
        behaviors: BehaviorSpec,
        callback: Any,
        referrer: str | None = None,
        extract: str | tuple[str, Any] | None = None,
        role: str = "page",
        meta: dict[str, Any] | None = None,
        ready: ReadySpec | None = None,
    ) -> Request | None:
        request = self.page_request(
            url,
            depth=depth,
            via=via,
            referrer=referrer,
            role=role,
            callback=callback,
            browser=True,
            behaviors=behaviors,
            extract=extract,
            ready=ready if ready is not None else self.platform.feed_ready(),
        )
        if request is not None:
            request.meta.update(meta or {})
        return request

    def api_request(
        self, url: str, *, callback: Any, depth: int, referrer: str | None, **meta: Any
    ) -> Request:
        """A public API call (JSON), captured like any fetch; its raw response is the record."""
        request = self.fetch_request(
            url, role="api", via="api", depth=depth, referrer=referrer, callback=callback
        )
        request.meta.update(meta)
        request.headers.setdefault("Accept", "application/json")
        return request

    def listing_request(
        self, url: str, *, callback: Any, depth: int, referrer: str | None, via: str = "listing"
    ) -> Request | None:
        """A feed or listing page fetched without the browser (server-rendered HTML)."""
        return self.page_request(
            url, depth=depth, via=via, referrer=referrer, callback=callback, browser=False
        )

    def post_request(
        self,
        ref: PostRef,
        *,
        via: str,
        depth: int,
        platform: Platform,
        referrer: str | None = None,
    ) -> Request | None:
        if self.posts_scheduled >= self.source.max_posts:
            self.posts_over_limit += 1
            return None
        callback = getattr(platform, "parse_post")  # noqa: B009 - adapters define it
        if self.source.browser:
            request = self.browser_request(
                ref.permalink,
                via=via,
                depth=depth,
                referrer=referrer,
                behaviors=platform.behaviors.for_post(),
                extract=getattr(platform, "post_extract", None),
                callback=callback,
                meta={POST_META: ref},
                ready=platform.post_ready(),
            )
        else:
            request = self.page_request(
                ref.permalink, depth=depth, via=via, referrer=referrer, callback=callback
            )
            if request is not None:
                request.meta[POST_META] = ref
        if request is not None:
            self.posts_scheduled += 1
        return request

    # --- responses ----------------------------------------------------------------------
    def rendered_result(
        self, response: Response, platform: Platform
    ) -> tuple[FetchResult, RenderedPage | None]:
        """The page's result, classified, with what the browser did and wrote."""
        item = self.result(response)
        rendered = self.add_browser_details(response, item)
        if rendered is None:
            unavailable = platform.classify_response(response)
        else:
            unavailable = platform.classify(rendered.status, rendered, rendered.text)
        self.mark_unavailable(item, unavailable)
        return item, rendered

    @staticmethod
    def mark_unavailable(item: FetchResult, unavailable: Outcome | None) -> None:
        """A response that shows no content gets that outcome (``classified_from`` keeps the
        HTTP one)."""
        if unavailable is not None and item.outcome in (Outcome.CAPTURED, Outcome.HTTP_ERROR):
            item.details["classified_from"] = item.outcome
            item.outcome = unavailable.value

    def requisites_of(self, response: Response, item: FetchResult) -> Iterator[Request]:
        """Requisites of a page fetched without the browser (the browser loads its own)."""
        if item.outcome != Outcome.CAPTURED or not self._is_html(response):
            return
        links = extract_html(response.body, response.url, getattr(response, "encoding", None))
        item.requisites = links.requisites
        depth = response.meta["attest"]["depth"]
        for url in links.requisites:
            req = self.requisite_request(url, response.url, depth)
            if req is not None:
                yield req
