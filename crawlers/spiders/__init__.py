"""Spiders by source kind."""

from __future__ import annotations

from crawlers.spiders.base import CaptureSpider
from crawlers.spiders.news import NewsSpider
from crawlers.spiders.press import PressSpider
from crawlers.spiders.profile import ProfileSpider

SPIDERS: dict[str, type[CaptureSpider]] = {
    "news": NewsSpider,
    "press": PressSpider,
    "profile": ProfileSpider,
}

__all__ = ["SPIDERS", "CaptureSpider", "NewsSpider", "PressSpider", "ProfileSpider"]
