"""The ``news`` spider: seeds and links, plus sitemaps (from robots.txt or listed) and feeds."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import urljoin

from lxml import etree
from scrapy.http import Request, Response
from scrapy.utils.sitemap import Sitemap, sitemap_urls_from_robots

from archive.outcomes import Outcome
from crawlers.items import FetchResult
from crawlers.scope import origin
from crawlers.spiders.base import CaptureSpider

ATOM = "{http://www.w3.org/2005/Atom}"


def feed_links(body: bytes, base: str) -> list[str]:
    """Item links of an RSS 2.0 or Atom feed."""
    try:
        root = etree.fromstring(
            body, parser=etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
        )
    except etree.XMLSyntaxError:
        return []
    if root is None:
        return []
    links: list[str] = []
    for item in root.iter("item"):
        link = item.findtext("link")
        if link:
            links.append(urljoin(base, link.strip()))
    for entry in root.iter(f"{ATOM}entry"):
        for el in entry.iter(f"{ATOM}link"):
            if el.get("rel", "alternate") == "alternate" and el.get("href"):
                links.append(urljoin(base, el.get("href", "").strip()))
                break
    return links


class NewsSpider(CaptureSpider):
    name = "news"

    def discovery_requests(self) -> Iterable[Request]:
        sitemaps = self.source.sitemaps
        if sitemaps is True:
            origins = {origin(s) for s in self.source.seeds}
            for o in sorted(x for x in origins if x is not None):
                scheme, host, port = o
                base = f"{scheme}://{host}:{port}"
                yield self.fetch_request(
                    f"{base}/robots.txt",
                    role="robots",
                    via="discovery",
                    depth=0,
                    callback=self.parse_robots,
                )
        elif sitemaps:
            for url in sitemaps:
                yield self.fetch_request(
                    url, role="sitemap", via="discovery", depth=0, callback=self.parse_sitemap
                )
        for url in self.source.feeds:
            yield self.fetch_request(
                url, role="feed", via="discovery", depth=0, callback=self.parse_feed
            )

    def parse_robots(self, response: Response) -> Iterator[Request | FetchResult]:
        item = self.result(response)
        yield item
        found = []
        if item.outcome == Outcome.CAPTURED:
            found = list(sitemap_urls_from_robots(response.body, base_url=response.url))
        if not found:
            found = [urljoin(response.url, "/sitemap.xml")]
        for url in found:
            yield self.fetch_request(
                url, role="sitemap", via="robots", depth=0, callback=self.parse_sitemap
            )

    def parse_sitemap(self, response: Response) -> Iterator[Request | FetchResult]:
        item = self.result(response)
        yield item
        if item.outcome != Outcome.CAPTURED:
            return
        try:
            sitemap = Sitemap(response.body)
        except (etree.XMLSyntaxError, ValueError, StopIteration):
            # StopIteration: Scrapy's reader found no XML element at all (an HTML page, say).
            self.logger.warning("sitemap %s does not parse", response.url)
            return
        if sitemap.type not in ("urlset", "sitemapindex"):
            # A site that answers every path with a page (its home page, say) answers
            # /sitemap.xml too: that is no sitemap, and Scrapy's reader fails on it.
            self.logger.warning(
                "sitemap %s is not a sitemap (a %r document)", response.url, sitemap.type
            )
            return
        for entry in sitemap:
            loc = entry.get("loc")
            if not loc:
                continue
            if sitemap.type == "sitemapindex":
                yield self.fetch_request(
                    loc, role="sitemap", via="sitemap", depth=0, callback=self.parse_sitemap
                )
            elif self.scope.allows(loc):
                req = self.page_request(loc, depth=1, via="sitemap", referrer=response.url)
                if req is not None:
                    yield req

    def parse_feed(self, response: Response) -> Iterator[Request | FetchResult]:
        item = self.result(response)
        yield item
        if item.outcome != Outcome.CAPTURED:
            return
        for url in feed_links(response.body, response.url):
            if self.scope.allows(url):
                req = self.page_request(url, depth=1, via="feed", referrer=response.url)
                if req is not None:
                    yield req
