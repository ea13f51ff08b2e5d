"""Bluesky accounts, walked through the AppView's public XRPC API.

The seed is a profile (``https://host/profile/<handle or did>``); the API is
``profile.api_base``, else ``https://public.api.bsky.app`` for bsky.app seeds, else the seed's
origin. ``app.bsky.feed.getAuthorFeed?actor=<handle>&limit=50`` lists the posts newest first;
older pages follow the answer's ``cursor`` (absent on the last page), up to ``max_feed_pages``
pages and ``max_posts`` posts. For each post, ``app.bsky.feed.getPostThread?uri=<at-uri>&depth=0``
is captured as the post's own API record, and its permalink
``<seed origin>/profile/<handle>/post/<rkey>`` as its page, with the record's ``createdAt``.
Every API response is captured as it came (role ``api``). XRPC errors for a missing or
taken-down account are classified, and then the seed's own page is captured too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from archive.outcomes import Outcome
from crawlers.platforms.base import FEED_PAGE_META, SEED_META, UNAVAILABLE, Platform, PostRef

if TYPE_CHECKING:
    from scrapy.http import Request, Response

    from crawlers.spiders.profile import ProfileSpider

PUBLIC_API = "https://public.api.bsky.app"
PAGE_SIZE = 50
ACTOR_META = "attest_actor"

#: XRPC error names (HTTP 400) that say the content is not shown.
XRPC_ERRORS = {
    "NotFound": Outcome.REMOVED,
    "AccountTakedown": Outcome.SUSPENDED,
    "AccountDeactivated": Outcome.REMOVED,
}


class BlueskyPlatform(Platform):
    name = "bluesky"

    def __init__(self, spider: ProfileSpider) -> None:
        super().__init__(spider)
        for seed in self.source.seeds:
            self.actor_of(seed)

    def actor_of(self, seed: str) -> str:
        parts = self.path_parts(seed)
        if len(parts) == 2 and parts[0] == "profile":
            return parts[1]
        raise self.bad_seed(seed, "a Bluesky profile URL (https://bsky.app/profile/<handle>)")

    def xrpc(self, seed: str, method: str, **params: str | int) -> str:
        public = urlsplit(seed).hostname in ("bsky.app", "www.bsky.app")
        query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
        return f"{self.api_base(seed, PUBLIC_API if public else None)}/xrpc/{method}?{query}"

    def classify_response(self, response: Response) -> Outcome | None:
        if response.status == 400:
            try:
                error = json.loads(response.body)
            except ValueError:
                error = None
            if isinstance(error, dict):
                if error.get("error") in XRPC_ERRORS:
                    return XRPC_ERRORS[error["error"]]
                if str(error.get("message", "")).lower() == "profile not found":
                    return Outcome.REMOVED
        return super().classify_response(response)

    def start_requests(self, seed: str) -> Iterable[Request]:
        yield self.feed_request(seed, self.actor_of(seed), None, number=1, referrer=None)

    def feed_request(
        self, seed: str, actor: str, cursor: str | None, *, number: int, referrer: str | None
    ) -> Request:
        params: dict[str, str | int] = {"actor": actor, "limit": PAGE_SIZE}
        if cursor is not None:
            params["cursor"] = cursor
        return self.spider.api_request(
            self.xrpc(seed, "app.bsky.feed.getAuthorFeed", **params),
            callback=self.parse_feed,
            depth=0,
            referrer=referrer,
            **{SEED_META: seed, ACTOR_META: actor, FEED_PAGE_META: number},
        )

    def parse_feed(self, response: Response) -> Iterator[Any]:
        item, data = self.api_result(response)
        yield item
        seed = response.meta[SEED_META]
        number = self.page_number(response)
        if item.outcome in UNAVAILABLE and number == 1:
            request = self.seed_unavailable(seed, item.outcome, response.url)
            if request is not None:
                yield request
        feed = data.get("feed") if isinstance(data, dict) else None
        if not isinstance(feed, list):
            return
        for entry in feed:
            post = entry.get("post") if isinstance(entry, dict) else None
            if not isinstance(post, dict) or not post.get("uri"):
                continue
            uri = str(post["uri"])
            author = post.get("author") or {}
            handle = author.get("handle")
            if not handle or handle == "handle.invalid":
                handle = author.get("did") or uri.split("/")[2]
            rkey = uri.rsplit("/", 1)[-1]
            ref = PostRef(
                platform=self.name,
                account=handle,
                post_id=rkey,
                permalink=f"{self.origin_of(seed)}/profile/{handle}/post/{rkey}",
                platform_time=(post.get("record") or {}).get("createdAt"),
                found_on=response.url,
            )
            details: dict[str, Any] = {"uri": uri, "cid": post.get("cid")}
            if entry.get("reason"):
                details["reason"] = entry["reason"]
            request = self.post_request(
                ref, via="api", depth=1, referrer=response.url, details={"bluesky": details}
            )
            if request is None:
                continue
            yield self.spider.api_request(
                self.xrpc(seed, "app.bsky.feed.getPostThread", uri=uri, depth=0),
                callback=self.parse_api,
                depth=1,
                referrer=response.url,
            )
            yield request
        cursor = data.get("cursor")
        if feed and cursor and self.may_page_on(number):
            yield self.feed_request(
                seed,
                response.meta[ACTOR_META],
                str(cursor),
                number=number + 1,
                referrer=response.url,
            )
