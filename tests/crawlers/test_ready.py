"""When a rendered page counts as complete: the content-ready selector each adapter gives."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from crawlers.platforms import PLATFORMS
from crawlers.platforms.base import MARKERS, NOTICE_PATTERNS
from crawlers.platforms.generic import POST_READY
from crawlers.registry import SourceSpec, adhoc_source, snapshot_source


def adapter(name: str, source: SourceSpec) -> Any:
    # An adapter reads only the spider's source when it is made.
    return PLATFORMS[name](SimpleNamespace(source=source))  # type: ignore[arg-type]


def profile(seed: str, **fields: Any) -> SourceSpec:
    return replace(adhoc_source([seed], max_pages=10, max_depth=1, browser=True), **fields)


def test_a_social_post_is_complete_once_it_shows_an_article_or_a_notice() -> None:
    ready = adapter("generic", profile("https://social.example/@a")).post_ready()
    assert ready.selector == POST_READY
    assert ready.notices == NOTICE_PATTERNS
    assert len(ready.notices) == len(MARKERS)


def test_a_source_names_its_own_content_ready_selector() -> None:
    source = profile("https://social.example/@a", content_ready="#done")
    assert adapter("generic", source).post_ready().selector == "#done"


def test_any_page_taken_as_a_post_needs_no_selector() -> None:
    # attest capture --browser takes any page as a post: it cannot know the page's markup.
    source = snapshot_source(["https://example.org/statement"], browser=True)
    assert adapter("generic", source).post_ready().selector is None


def test_feeds_wait_for_requests_and_dom_only_and_mastodon_for_its_status() -> None:
    assert adapter("generic", profile("https://social.example/@a")).feed_ready().selector is None
    mastodon = adapter("mastodon", replace(profile("https://m.example/@a"), platform="mastodon"))
    assert mastodon.post_ready().selector == ".detailed-status"
