"""Memento (RFC 7089) for the default collection, under pywb's URL scheme.

- URI-R: the original URL; URI-M: ``/web/<14 digits>/<url>``; TimeGate: ``/web/<url>``;
  TimeMap: ``/web/timemap/link/<url>`` (``application/link-format``, RFC 6690).
- ``/web/<14 digits>/<url>`` names a second, and is the first capture of that second; a later
  capture in the same second has the URI-M of its exact replay,
  ``/capture/<uuid>/web/<14 digits>/<url>`` (:mod:`archive.index.links`). The TimeMap lists
  every capture once, each with its own URI-M.
"""

from __future__ import annotations

from collections.abc import Sequence

from archive.dates import http_date, timestamp14
from archive.index.cdxj import IndexRow
from archive.index.links import CAPTURE_PREFIX, capture_uuid

PREFIX = "/web"


def memento_uri(base: str, row: IndexRow) -> str:
    """The per-second URI-M (the first capture of that second)."""
    return f"{base}{PREFIX}/{timestamp14(row.ts)}/{row.url}"


def exact_memento_uri(base: str, row: IndexRow) -> str:
    """The URI-M of exactly this capture (its exact replay's frame)."""
    return f"{base}{CAPTURE_PREFIX}{capture_uuid(row.record_id)}{memento_uri('', row)}"


def memento_uris(base: str, rows: Sequence[IndexRow]) -> list[tuple[IndexRow, str]]:
    """Every capture, oldest first, with its URI-M: the per-second one for the first of its
    second, the exact one for the others."""
    firsts = {id(r) for r in distinct_mementos(rows)}
    return [
        (row, memento_uri(base, row) if id(row) in firsts else exact_memento_uri(base, row))
        for row in sorted(rows, key=lambda r: r.ts)
    ]


def timegate_uri(base: str, url: str) -> str:
    return f"{base}{PREFIX}/{url}"


def timemap_uri(base: str, url: str) -> str:
    return f"{base}{PREFIX}/timemap/link/{url}"


def distinct_mementos(rows: Sequence[IndexRow]) -> list[IndexRow]:
    seen: set[str] = set()
    out = []
    for row in sorted(rows, key=lambda r: r.ts):
        stamp = timestamp14(row.ts)
        if stamp not in seen:
            seen.add(stamp)
            out.append(row)
    return out


def closest(rows: Sequence[IndexRow], target: int) -> IndexRow:
    """The capture nearest in time to ``target`` (microseconds); the earlier one on a tie."""
    return min(rows, key=lambda r: (abs(r.ts - target), r.ts))


def _quote(url: str) -> str:
    # A URI inside <...> of a link header cannot hold '>' or spaces.
    return url.replace(">", "%3E").replace(" ", "%20")


def link_header(
    base: str,
    url: str,
    *,
    memento: IndexRow | None = None,
    first: IndexRow | None = None,
    last: IndexRow | None = None,
    uri: str | None = None,
) -> str:
    """The Link header of a memento (``uri``: its URI-M, if not the per-second one) or a
    TimeGate's answer."""
    links = [
        f'<{_quote(url)}>; rel="original"',
        f'<{_quote(timegate_uri(base, url))}>; rel="timegate"',
        f'<{_quote(timemap_uri(base, url))}>; rel="timemap"; type="application/link-format"',
    ]
    if memento is not None:
        rels = ["memento"]
        if first is not None and timestamp14(first.ts) == timestamp14(memento.ts):
            rels.insert(0, "first")
        if last is not None and timestamp14(last.ts) == timestamp14(memento.ts):
            rels.insert(1 if rels[0] == "first" else 0, "last")
        links.append(
            f'<{_quote(uri or memento_uri(base, memento))}>; rel="{" ".join(rels)}"; '
            f'datetime="{http_date(memento.ts)}"'
        )
    return ", ".join(links)


def timemap(base: str, url: str, rows: Sequence[IndexRow]) -> str:
    mementos = memento_uris(base, rows)
    lines = [
        f'<{_quote(url)}>; rel="original"',
        f'<{_quote(timegate_uri(base, url))}>; rel="timegate"',
    ]
    self_link = f'<{_quote(timemap_uri(base, url))}>; rel="self"; type="application/link-format"'
    if mementos:
        self_link += (
            f'; from="{http_date(mementos[0][0].ts)}"; until="{http_date(mementos[-1][0].ts)}"'
        )
    lines.append(self_link)
    for i, (row, uri) in enumerate(mementos):
        rel = "memento"
        if i == 0:
            rel = "first memento"
        if i == len(mementos) - 1:
            rel = "last memento" if i else "first last memento"
        lines.append(f'<{_quote(uri)}>; rel="{rel}"; datetime="{http_date(row.ts)}"')
    return ",\n".join(lines) + "\n"
