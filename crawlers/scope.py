"""Which URLs belong to a source's crawl.

A page is in scope when its origin is one of the seeds' origins (scheme, host and port), or its
host is listed in ``scope.hosts`` (``host`` or ``host:port``), or it starts with one of
``scope.prefixes``. Page requisites (images, styles, scripts, fonts, media) count as part of
their page and are fetched wherever they live; the egress guard still applies to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from crawlers.registry import SourceSpec

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL; None for any other (or unparsable) one."""
    try:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            return None
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    return parts.scheme, parts.hostname.lower(), port


@dataclass(frozen=True)
class Scope:
    origins: frozenset[tuple[str, str, int]]
    hosts: frozenset[str]
    prefixes: tuple[str, ...]
    max_depth: int
    max_pages: int

    @classmethod
    def for_source(cls, source: SourceSpec) -> Scope:
        origins = {o for o in (origin(s) for s in source.seeds) if o is not None}
        for listing in source.listings:
            o = origin(listing.url)
            if o is not None:
                origins.add(o)
        return cls(
            origins=frozenset(origins),
            hosts=frozenset(source.hosts),
            prefixes=source.prefixes,
            max_depth=source.max_depth,
            max_pages=source.max_pages,
        )

    def allows(self, url: str) -> bool:
        o = origin(url)
        if o is None:
            return False
        if o in self.origins:
            return True
        _scheme, host, port = o
        if host in self.hosts or f"{host}:{port}" in self.hosts:
            return True
        return any(url.startswith(p) for p in self.prefixes)
