"""Spiders by source kind. ``profile`` sources (browser capture) arrive with the browser issue."""

from __future__ import annotations

from crawlers.spiders.base import CaptureSpider
from crawlers.spiders.news import NewsSpider
from crawlers.spiders.press import PressSpider

SPIDERS: dict[str, type[CaptureSpider]] = {"news": NewsSpider, "press": PressSpider}

__all__ = ["SPIDERS", "CaptureSpider", "NewsSpider", "PressSpider"]
