"""Whether a URL can be fetched at all, and if not, why: checked before anything is sent.

A seed that cannot be fetched (no http(s) scheme, no host, a port out of range, whitespace or
control characters, a broken IPv6 literal, a host that is no valid name, longer than the
crawler's URL limit) is never silently dropped: the registry refuses it with its file and field,
and a URL given on the command line gets the outcome ``invalid_url`` with this reason
(:mod:`crawlers.spiders.base`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: Scrapy's ``URLLENGTH_LIMIT`` (its default, which settings.py keeps): longer URLs are dropped
#: by its URL-length middleware without a word, so they are refused here first, with one.
URL_LIMIT = 2083

_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")
_HOST = re.compile(
    r"^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$"
)


def invalid_url_reason(url: str, limit: int = URL_LIMIT) -> str | None:
    """Why ``url`` cannot be fetched, or None when it can."""
    if len(url) > limit:
        return f"longer than {limit} characters ({len(url)}), the crawler's URL limit"
    bad = _BAD_CHARS.search(url)
    if bad:
        return f"contains {'a space' if bad.group() == ' ' else 'a control character'}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"cannot be parsed: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not an http(s) URL"
    host = parts.hostname
    if not host:
        return "has no host"
    if port == 0:
        return "port 0 is not a port to fetch from"
    if ":" in host:
        return None  # an IPv6 literal: urlsplit checked its brackets, the guard checks it
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return f"host {host!r} is not a valid name"
    if not _HOST.match(ascii_host) or len(ascii_host) > 253:
        return f"host {host!r} is not a valid name"
    return None
