"""The visible text of an archived HTML page, for full-text search.

The payload is decoded first (chunking, gzip/deflate/br), then parsed with lxml's HTML parser;
``script``, ``style``, ``noscript``, ``template`` and ``head`` content is dropped and runs of
whitespace are folded. Pages the browser rendered carry their own ``urn:text:`` record, which
the indexer prefers: it holds what was on screen after scripts ran.
"""

from __future__ import annotations

import logging

from lxml import etree, html

from archive.errors import AttestError
from archive.warc.decode import decode_body, decode_prefix

log = logging.getLogger(__name__)

#: Decoded bytes of a page read for its text when only a prefix of its payload was kept.
MAX_DECODED_HTML = 4 * 1024 * 1024

_DROP = ("script", "style", "noscript", "template", "head", "svg")
#: Elements that separate words when rendered (their text is not glued to the next).
_BLOCKS = (
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "main",
    "aside",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "td",
    "th",
    "tr",
    "table",
    "br",
    "hr",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "dt",
    "dd",
    "a",
    "span",
    "time",
    "button",
    "label",
    "option",
    "title",
)


def html_text(
    body: bytes,
    content_encoding: str | None,
    *,
    chunked: bool = False,
    charset: str | None = None,
    partial: bool = False,
) -> str:
    """Visible text, or "" when the payload cannot be decoded or parsed (logged, not raised).

    ``partial``: ``body`` is only the first part of the payload; its text is that part's."""
    try:
        if partial:
            document = decode_prefix(
                body, content_encoding, chunked=chunked, limit=MAX_DECODED_HTML
            )
        else:
            document = decode_body(body, content_encoding, chunked=chunked)
    except AttestError as exc:
        log.info("no text extracted: %s", exc)
        return ""
    if not document.strip():
        return ""
    try:
        parser = html.HTMLParser(encoding=charset) if charset else None
        root = html.document_fromstring(document, parser=parser)
    except (etree.ParserError, ValueError, LookupError):
        try:
            root = html.document_fromstring(document)
        except (etree.ParserError, ValueError):
            return ""
    etree.strip_elements(root, *_DROP, etree.Comment, with_tail=False)
    for element in root.iter(*_BLOCKS):
        element.tail = " " + (element.tail or "")
        element.text = " " + (element.text or "")
    text: str = root.text_content()
    return " ".join(text.split())
