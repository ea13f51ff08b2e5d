"""Platform adapters, one module each, chosen by a profile source's ``profile.platform``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.errors import ConfigError
from crawlers.platforms.base import Platform, PostRef
from crawlers.platforms.bluesky import BlueskyPlatform
from crawlers.platforms.generic import GenericPlatform
from crawlers.platforms.mastodon import MastodonPlatform
from crawlers.platforms.telegram import TelegramPlatform

if TYPE_CHECKING:
    from crawlers.spiders.profile import ProfileSpider

PLATFORMS: dict[str, type[Platform]] = {
    "generic": GenericPlatform,
    "telegram": TelegramPlatform,
    "mastodon": MastodonPlatform,
    "bluesky": BlueskyPlatform,
}


def platform_for(spider: ProfileSpider) -> Platform:
    name = spider.source.platform
    cls = PLATFORMS.get(name)
    if cls is None:
        raise ConfigError(
            f"{spider.source.path}: source {spider.source.id!r}: platform {name!r} has no adapter"
        )
    return cls(spider)


__all__ = ["PLATFORMS", "Platform", "PostRef", "platform_for"]
