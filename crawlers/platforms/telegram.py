"""Telegram public channels, walked through the channel preview ``/s/<channel>``.

The seed is a channel (``https://t.me/s/<channel>`` or ``https://t.me/<channel>``); the
preview is fetched on the seed's origin without the browser, as Telegram renders it on the
server. Each preview page lists messages as ``div.tgme_widget_message[data-post]``, oldest first;
older messages are on ``?before=<smallest id on the page>``, followed while the page links to
older ones (``data-before`` or ``link[rel=prev]``), up to ``max_feed_pages`` pages and
``max_posts`` posts. Every message is captured on its own page ``/<channel>/<id>``, with the
time the preview shows (``<time datetime>`` and its text).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from scrapy.http import TextResponse

from archive.outcomes import Outcome
from crawlers.platforms.base import FEED_PAGE_META, Platform, PostRef

if TYPE_CHECKING:
    from scrapy.http import Request, Response

    from crawlers.spiders.profile import ProfileSpider


class TelegramPlatform(Platform):
    name = "telegram"

    def __init__(self, spider: ProfileSpider) -> None:
        super().__init__(spider)
        for seed in self.source.seeds:
            self.channel_of(seed)

    def channel_of(self, seed: str) -> str:
        parts = self.path_parts(seed)
        if len(parts) == 2 and parts[0] == "s":
            return parts[1]
        if len(parts) == 1 and parts[0] != "s":
            return parts[0]
        raise self.bad_seed(
            seed, "a channel URL (https://t.me/s/<channel> or https://t.me/<channel>)"
        )

    def start_requests(self, seed: str) -> Iterable[Request]:
        url = f"{self.origin_of(seed)}/s/{self.channel_of(seed)}"
        request = self.spider.listing_request(
            url, callback=self.parse_preview, depth=0, referrer=None, via="seed"
        )
        if request is not None:
            yield request

    def parse_preview(self, response: Response) -> Iterator[Any]:
        spider = self.spider
        item, _rendered = spider.rendered_result(response, self)
        yield from spider.requisites_of(response, item)
        readable = item.outcome == Outcome.CAPTURED and isinstance(response, TextResponse)
        messages = response.css("div.tgme_widget_message[data-post]") if readable else []
        origin = self.origin_of(response.url)
        posts = []
        ids = []
        for message in messages:
            channel, _, post_id = (message.attrib.get("data-post") or "").partition("/")
            if not channel or not post_id.isdigit():
                continue
            time = message.css(".tgme_widget_message_date time")
            ref = PostRef(
                platform=self.name,
                account=channel,
                post_id=post_id,
                permalink=f"{origin}/{channel}/{post_id}",
                platform_time=time.attrib.get("datetime") if time else None,
                platform_time_shown=time[0].xpath("normalize-space()").get() if time else None,
                found_on=response.url,
            )
            posts.append(ref.as_dict())
            ids.append(int(post_id))
            request = self.post_request(ref, via="listing", depth=1, referrer=response.url)
            if request is not None:
                yield request
        item.details["listing"] = {"posts_found": len(posts), "posts": posts}
        yield item
        number = self.page_number(response)
        older = readable and bool(response.css("[data-before], link[rel=prev]"))
        if older and ids and min(ids) > 1 and self.may_page_on(number):
            base = response.url.split("?", 1)[0]
            request = spider.listing_request(
                f"{base}?before={min(ids)}",
                callback=self.parse_preview,
                depth=0,
                referrer=response.url,
            )
            if request is not None:
                request.meta[FEED_PAGE_META] = number + 1
                yield request
