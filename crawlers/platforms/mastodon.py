"""Mastodon accounts, walked through the server's public REST API.

The seed is a profile (``https://host/@name``); the API is ``profile.api_base`` or the seed's
origin. ``/api/v1/accounts/lookup?acct=<name>`` gives the account id, then
``/api/v1/accounts/<id>/statuses?limit=40`` lists its statuses newest first; older pages are
followed through the ``Link`` header's ``rel="next"`` (absent on the last page), up to
``max_feed_pages`` pages and ``max_posts`` posts. Each API response is captured as it came
(role ``api``); each status is captured on its own page (the status's ``url``), with its
``created_at`` and its API ``id`` and ``uri``. A lookup that fails (unknown account: 404,
``removed``) is reported on the seed, whose own page is then captured.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from archive.outcomes import Outcome
from crawlers.platforms.base import FEED_PAGE_META, SEED_META, UNAVAILABLE, Platform, PostRef

if TYPE_CHECKING:
    from scrapy.http import Request, Response

    from crawlers.spiders.profile import ProfileSpider

log = logging.getLogger(__name__)

PAGE_SIZE = 40
ACCT_META = "attest_acct"
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL_NEXT = re.compile(r'\brel\s*=\s*"?(?:[^";]*\s)?next(?=[\s";]|$)')


def next_link(value: bytes | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (RFC 8288), if any."""
    for url, params in _LINK.findall((value or b"").decode("latin-1")):
        if _REL_NEXT.search(params):
            return str(url)
    return None


class MastodonPlatform(Platform):
    name = "mastodon"
    #: The web UI shows the status a page is about as its detailed status.
    content_ready = ".detailed-status"

    def __init__(self, spider: ProfileSpider) -> None:
        super().__init__(spider)
        for seed in self.source.seeds:
            self.acct_of(seed)

    def acct_of(self, seed: str) -> str:
        parts = self.path_parts(seed)
        if len(parts) == 1 and len(parts[0]) > 1 and parts[0].startswith("@"):
            return parts[0][1:]
        raise self.bad_seed(seed, "a Mastodon profile URL (https://host/@name)")

    def start_requests(self, seed: str) -> Iterable[Request]:
        url = f"{self.api_base(seed)}/api/v1/accounts/lookup?acct={quote(self.acct_of(seed))}"
        yield self.spider.api_request(
            url, callback=self.parse_lookup, depth=0, referrer=None, **{SEED_META: seed}
        )

    def parse_lookup(self, response: Response) -> Iterator[Any]:
        item, account = self.api_result(response)
        yield item
        seed = response.meta[SEED_META]
        unavailable = item.outcome if item.outcome in UNAVAILABLE else None
        if isinstance(account, dict) and account.get("suspended"):
            unavailable = Outcome.SUSPENDED.value
        if unavailable is not None:
            request = self.seed_unavailable(seed, unavailable, response.url)
            if request is not None:
                yield request
            return
        if not isinstance(account, dict) or not account.get("id"):
            log.warning("%s: no account in the lookup's answer", response.url)
            return
        yield self.spider.api_request(
            f"{self.api_base(seed)}/api/v1/accounts/{quote(str(account['id']))}/statuses"
            f"?limit={PAGE_SIZE}",
            callback=self.parse_statuses,
            depth=0,
            referrer=response.url,
            **{ACCT_META: account.get("acct") or self.acct_of(seed)},
        )

    def parse_statuses(self, response: Response) -> Iterator[Any]:
        item, statuses = self.api_result(response)
        yield item
        if not isinstance(statuses, list):
            return
        for status in statuses:
            # A boost shows the boosted status: its page, author and time are the post's.
            shown = (status.get("reblog") or status) if isinstance(status, dict) else {}
            if not isinstance(shown, dict) or not shown.get("url"):
                continue
            author = shown.get("account") or {}
            ref = PostRef(
                platform=self.name,
                account=author.get("acct") or response.meta[ACCT_META],
                post_id=str(shown.get("id")),
                permalink=shown["url"],
                platform_time=shown.get("created_at"),
                found_on=response.url,
            )
            details: dict[str, Any] = {"id": status.get("id"), "uri": status.get("uri")}
            if shown is not status:
                details["boost_of"] = {"id": shown.get("id"), "uri": shown.get("uri")}
            request = self.post_request(
                ref, via="api", depth=1, referrer=response.url, details={"mastodon": details}
            )
            if request is not None:
                yield request
        number = self.page_number(response)
        older = next_link(response.headers.get("Link"))
        if statuses and older and self.may_page_on(number):
            yield self.spider.api_request(
                older,
                callback=self.parse_statuses,
                depth=0,
                referrer=response.url,
                **{ACCT_META: response.meta[ACCT_META], FEED_PAGE_META: number + 1},
            )
