"""Finding a page's requisites and outlinks, in one pass over the parsed HTML.

Requisites are what a replay needs to show the page as it was: images (``src``/``srcset``),
stylesheets, scripts, icons, preloads, fonts and images referenced from CSS, media, embeds and
frames. Outlinks are ``a``/``area`` hrefs. Fragments are dropped; ``javascript:``, ``mailto:``,
``data:`` and other non-HTTP links are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
from lxml import etree

_CSS_URL = re.compile(rb"""url\(\s*(['"]?)([^'")]+)\1\s*\)|@import\s+(['"])([^'"]+)\3""", re.I)
_LINK_RELS = {
    "stylesheet",
    "icon",
    "shortcut",
    "preload",
    "modulepreload",
    "apple-touch-icon",
    "manifest",
    "prefetch",
}
_SRC_TAGS = {
    "img",
    "script",
    "video",
    "audio",
    "source",
    "track",
    "embed",
    "iframe",
    "frame",
    "input",
}
_LINK_TAGS = ("a", "area", "link", "object", "style", "body", *sorted(_SRC_TAGS))


@dataclass
class PageLinks:
    requisites: list[str] = field(default_factory=list)
    outlinks: list[str] = field(default_factory=list)
    base: str = ""


def _clean(base: str, raw: str | None, origin: str = "") -> str | None:
    if not raw:
        return None
    raw = raw.strip()
    if not raw or raw.startswith(("#", "javascript:", "mailto:", "data:", "tel:", "about:")):
        return None
    if origin and raw[0] == "/" and not raw.startswith("//") and "/." not in raw:
        # Path-absolute links, most of any page: no need for urljoin's general case.
        url = origin + raw
    else:
        url = urljoin(base, raw)
    if "#" in url:
        url = urldefrag(url)[0]
    return url if url.startswith(("http://", "https://")) else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return (
        f"{parts.scheme}://{parts.netloc}"
        if parts.scheme in ("http", "https") and parts.netloc
        else ""
    )


def _srcset(value: str) -> list[str]:
    out = []
    for candidate in value.split(","):
        parts = candidate.strip().split()
        if parts:
            out.append(parts[0])
    return out


def extract_html(body: bytes, url: str, encoding: str | None) -> PageLinks:
    """Requisites and outlinks of an HTML page, absolute, in document order, deduplicated."""
    links = PageLinks(base=url)
    if not body.strip():
        return links
    parser = lxml.html.HTMLParser(encoding=encoding or "utf-8", recover=True, no_network=True)
    try:
        root = lxml.html.document_fromstring(body, parser=parser)
    except (etree.ParserError, ValueError):
        return links
    base = url
    for el in root.iter("base"):
        href = el.get("href")
        if href:
            base = urljoin(url, href.strip())
        break
    links.base = base
    origin = _origin(base)
    req: dict[str, None] = {}
    out: dict[str, None] = {}
    # Only the tags that can carry links: lxml filters them in C, far cheaper than a full walk.
    for el in root.iter(*_LINK_TAGS):
        tag = el.tag
        if tag in ("a", "area"):
            u = _clean(base, el.get("href"), origin)
            if u:
                out[u] = None
            continue
        if tag == "link":
            rels = set((el.get("rel") or "").lower().split())
            if rels & _LINK_RELS:
                u = _clean(base, el.get("href"), origin)
                if u:
                    req[u] = None
            continue
        if tag in _SRC_TAGS:
            if tag == "input" and (el.get("type") or "").lower() != "image":
                continue
            for attr in ("src", "data-src", "poster"):
                u = _clean(base, el.get(attr), origin)
                if u:
                    req[u] = None
            for attr in ("srcset", "data-srcset"):
                if el.get(attr):
                    for raw in _srcset(el.get(attr) or ""):
                        u = _clean(base, raw, origin)
                        if u:
                            req[u] = None
            continue
        if tag == "object":
            u = _clean(base, el.get("data"), origin)
            if u:
                req[u] = None
        elif tag == "style" and el.text:
            for u in extract_css(el.text.encode("utf-8", "replace"), base):
                req[u] = None
        elif tag == "body" and el.get("background"):
            u = _clean(base, el.get("background"))
            if u:
                req[u] = None
    if b"url(" in body:
        for style in root.xpath("//@style"):
            if "url(" in style:
                for u in extract_css(str(style).encode("utf-8", "replace"), base):
                    req[u] = None
    links.requisites = list(req)
    links.outlinks = list(out)
    return links


def extract_css(body: bytes, base: str) -> list[str]:
    """URLs a stylesheet pulls in: ``url(...)`` (fonts, images) and ``@import``."""
    found: dict[str, None] = {}
    for match in _CSS_URL.finditer(body):
        raw = match.group(2) or match.group(4)
        if raw is None:
            continue
        u = _clean(base, raw.decode("utf-8", "replace"))
        if u:
            found[u] = None
    return list(found)
