"""Generic JavaScript profiles and single public posts (X/Twitter, Facebook, Instagram, ...).

A seed is either a post (its URL matches the permalink pattern) or a profile. A profile is
rendered with the feed behaviors (scroll to the end, load more, expand, lazy images); every
link in the rendered feed that matches the permalink pattern is a post, captured as its own
page with the post behaviors. The time shown next to each post (``<time datetime=...>`` in
the post's element, as the big platforms and the fixture social site mark it up) is kept as
the platform's own timestamp.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from crawlers.platforms.base import Platform, PostRef

if TYPE_CHECKING:
    from scrapy.http import Request, Response

#: /@alice/post/1, /user/status/1 (X), /user/posts/1 (Facebook), /p/abc/ (Instagram), ...
DEFAULT_PERMALINK = r"/(post|posts|status|statuses|p|reel|videos)/[A-Za-z0-9_-]+/?$"

FEED_JS = """(pattern) => {
  const re = new RegExp(pattern);
  const seen = new Set(), out = [];
  for (const a of document.querySelectorAll('a[href]')) {
    const url = a.href.split('#')[0];
    let path;
    try { path = new URL(url).pathname; } catch (e) { continue; }
    if (!re.test(path) || seen.has(url)) continue;
    seen.add(url);
    const box = a.closest('article, [data-post-id], [role=article], li') || a.parentElement;
    const time = (a.matches('time') ? a : a.querySelector('time[datetime]'))
                 || (box && box.querySelector('time[datetime]'));
    out.push({url: url,
              post_id: box && box.dataset ? (box.dataset.postId || null) : null,
              time: time ? time.getAttribute('datetime') : null,
              shown: time ? time.textContent.trim() : null});
  }
  return out;
}"""

POST_JS = """() => {
  const box = document.querySelector('article, [data-post-id], [role=article], main') || document.body;
  const time = box.querySelector('time[datetime]') || document.querySelector('time[datetime]');
  return {post_id: box.dataset ? (box.dataset.postId || null) : null,
          time: time ? time.getAttribute('datetime') : null,
          shown: time ? time.textContent.trim() : null};
}"""


#: A post is there once the page shows it as an article (X, Facebook, Instagram and the
#: fixture social site all mark posts up so).
POST_READY = "article, [data-post-id], [role=article]"


class GenericPlatform(Platform):
    name = "generic"

    def __init__(self, spider: Any) -> None:
        super().__init__(spider)
        self.permalink = re.compile(self.source.permalink_pattern or DEFAULT_PERMALINK)
        # Posts of the default permalink pattern are social posts; a source that names its own
        # pattern (``attest capture --browser`` takes any page as a post) names its own
        # ``profile.content_ready`` if it needs one.
        self.content_ready = POST_READY if self.source.permalink_pattern is None else None

    def is_post(self, url: str) -> bool:
        from urllib.parse import urlsplit

        return bool(self.permalink.search(urlsplit(url).path))

    def account_of(self, url: str) -> str | None:
        parts = self.path_parts(url)
        if not parts or parts[0] in ("p", "reel"):
            return None
        return parts[0].lstrip("@")

    def post_ref(self, url: str, **extra: Any) -> PostRef:
        parts = self.path_parts(url)
        return PostRef(
            platform=self.name,
            account=self.account_of(url),
            post_id=parts[-1] if parts else None,
            permalink=url,
            **extra,
        )

    def start_requests(self, seed: str) -> Iterable[Request]:
        spider = self.spider
        if self.is_post(seed):
            req = spider.post_request(self.post_ref(seed), via="seed", depth=0, platform=self)
        else:
            req = spider.browser_request(
                seed,
                via="seed",
                depth=0,
                behaviors=self.behaviors,
                extract=(FEED_JS, self.permalink.pattern),
                callback=self.parse_feed,
            )
        if req is not None:
            yield req

    def parse_feed(self, response: Response) -> Iterable[Any]:
        spider = self.spider
        item, rendered = spider.rendered_result(response, self)
        found = rendered.extracted if rendered is not None and rendered.extracted else []
        posts = []
        for entry in found:
            ref = self.post_ref(
                entry["url"],
                platform_time=entry.get("time"),
                platform_time_shown=entry.get("shown"),
                found_on=response.url,
            )
            if entry.get("post_id"):
                ref.post_id = entry["post_id"]
            posts.append(ref.as_dict())
            req = spider.post_request(
                ref, via="feed", depth=1, referrer=response.url, platform=self
            )
            if req is not None:
                yield req
        item.details["listing"] = {"posts_found": len(posts), "posts": posts}
        yield item

    def parse_post(self, response: Response) -> Iterable[Any]:
        spider = self.spider
        ref: PostRef = response.meta["attest_post"]
        item, rendered = spider.rendered_result(response, self)
        seen = rendered.extracted if rendered is not None and rendered.extracted else {}
        # The post page's own display of its time wins over the feed's.
        if seen.get("time"):
            ref.platform_time = seen["time"]
        if seen.get("shown"):
            ref.platform_time_shown = seen["shown"]
        item.details["post"] = ref.as_dict()
        yield item

    post_extract = POST_JS
