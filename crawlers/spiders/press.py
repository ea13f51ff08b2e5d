"""The ``press`` spider: paginated press-release listings and their attachments (PDFs)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from scrapy.http import Request, Response, TextResponse

from crawlers.items import FetchResult
from crawlers.registry import Listing
from crawlers.spiders.base import CaptureSpider


class PressSpider(CaptureSpider):
    name = "press"

    def discovery_requests(self) -> Iterable[Request]:
        for i, listing in enumerate(self.source.listings):
            req = self.page_request(listing.url, depth=0, via="listing", listing=i, listing_page=1)
            if req is not None:
                yield req

    def follow_page(self, response: Response, item: FetchResult) -> Iterator[Request]:
        info: dict[str, Any] = response.meta["attest"]
        index = info.get("listing")
        if index is None or not isinstance(response, TextResponse):
            yield from super().follow_page(response, item)
            return
        listing: Listing = self.source.listings[index]
        depth = info["depth"]
        if listing.items:
            for href in response.css(listing.items).xpath("@href").getall():
                url = response.urljoin(href)
                if self.scope.allows(url):
                    role = "attachment" if self.is_attachment(url) else "page"
                    req = self.page_request(
                        url, depth=depth + 1, via="listing", referrer=response.url, role=role
                    )
                    if req is not None:
                        yield req
        # Requisites and ordinary links (releases, attachments) as for any page.
        yield from super().follow_page(response, item)
        page = info.get("listing_page", 1)
        if page >= listing.max_pages:
            return
        for href in response.css(listing.next).xpath("@href").getall()[:1]:
            url = response.urljoin(href)
            if self.scope.allows(url):
                # Pagination continues the listing at the same depth.
                req = self.page_request(
                    url,
                    depth=depth,
                    via="listing",
                    referrer=response.url,
                    listing=index,
                    listing_page=page + 1,
                )
                if req is not None:
                    yield req
