"""Reading a finished WARC into index rows and a pywb-compatible CDXJ file.

One streaming pass over the file (:func:`archive.warc.read.iter_records`): every record is
inflated piece by piece, never held whole, and its block and payload digests are recomputed as
it goes; its WARC header is parsed, and for HTTP records the status line and the few headers
the index needs. Only the bytes the index uses are kept (a page's HTML for its text, up to
:data:`MAX_HTML_BYTES`; metadata records; ``warcinfo``), so memory stays bounded however large
a record is. A record whose digest fails, or that cannot be read whole, is not indexed: it is a
:class:`~archive.warc.read.Problem` of the WARC's index (with its offset), and the rest of the
file is still indexed (in a gzip WARC, past a damaged record to the next gzip member).

Rows keep every record type but ``warcinfo`` (whose fields become the WARC's run and source);
the CDXJ file beside the WARC lists what replays (``response``, ``revisit``, ``resource``), so
attest's JSON ``metadata`` records, which name the page's own URL, are never taken for the page.
A page's ``metadata`` record adds its platform ids (account, post id) to the response row it
names in ``WARC-Concurrent-To``; a ``urn:text:`` record (the text a browser showed) becomes the
searchable text of its page.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import surt as surtlib

from archive.dates import timestamp14, warc_date_micros
from archive.warc.read import Keep, Problem, RecordInfo, iter_records

_JSON = json.JSONEncoder(ensure_ascii=False)
#: Record types a replay tool serves; they go into the CDXJ file and the CDX API.
REPLAYABLE = ("response", "revisit", "resource")
#: Text kept per page for full-text search (characters).
MAX_TEXT = 200_000
_MAX_HEAD = 64 * 1024


@dataclass(slots=True)
class IndexRow:
    """One record of one WARC, as the index database holds it."""

    surt: str
    url: str
    ts: int  # microseconds since the epoch (UTC)
    status: int | None
    mime: str
    digest: str | None  # the WARC-Payload-Digest (sha256:<hex>), or the block digest for resources
    record_type: str
    record_id: str
    warc_key: str
    offset: int
    length: int
    source: str | None = None
    run_id: str | None = None
    ip: str | None = None
    concurrent_to: str | None = None
    platform: str | None = None
    account: str | None = None
    post_id: str | None = None
    block_digest: str | None = None
    #: The outcome the page's attest-page metadata record gives (a response of a page).
    outcome: str | None = None

    def cdxj_line(self) -> str:
        fields: dict[str, Any] = {"url": self.url, "mime": self.mime}
        if self.status is not None:
            fields["status"] = str(self.status)
        if self.digest:
            fields["digest"] = self.digest
        fields["length"] = str(self.length)
        fields["offset"] = str(self.offset)
        fields["filename"] = self.warc_key
        return f"{self.surt} {timestamp14(self.ts)} {_JSON.encode(fields)}"


@dataclass
class WarcIndex:
    """What one WARC yields: its rows, the texts of its pages, and its warcinfo."""

    key: str
    rows: list[IndexRow] = field(default_factory=list)
    #: record id of a response (or resource) -> visible text of the page
    texts: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    source: str | None = None
    warcinfo: dict[str, str] = field(default_factory=dict)
    #: Records left out of the index: a digest that does not hold, a record that cannot be read
    problems: list[Problem] = field(default_factory=list)

    def cdxj(self) -> bytes:
        lines = sorted(
            (row.surt, row.ts // 1_000_000, row.offset, row.cdxj_line())
            for row in self.rows
            if row.record_type in REPLAYABLE
        )
        return "".join(line + "\n" for *_, line in lines).encode("utf-8")


# A host name whose last label starts with a letter (never read as a number), or a dotted quad.
_SIMPLE_URL = re.compile(
    r"https?://((?:[a-z0-9-]+\.)*[a-z][a-z0-9-]*|"
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))"
    r"(?::([1-9][0-9]{0,4}))?((?:/[a-z0-9_~-][a-z0-9._~-]*)*/?)\Z",
    re.I,
)
_WWW = re.compile(r"www\d*\.")


def surt_key(url: str) -> str:
    """pywb's index key for a URL (SURT form, canonicalised, as ``surt.surt`` gives it).

    Plain URLs (http/https, a host name or IPv4 address, an optional non-default port, a path of
    unreserved characters, no query) take a fast path that gives the same key as the ``surt``
    library (checked against it in the tests); every other URL goes to the library.
    """
    match = _SIMPLE_URL.match(url)
    if match and match.group(2) not in ("80", "443"):
        host = match.group(1).lower()
        if www := _WWW.match(host):
            host = host[www.end() :]
        path = match.group(3).lower()
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        port = f":{match.group(2)}" if match.group(2) else ""
        return ",".join(reversed(host.split("."))) + port + ")" + (path or "/")
    try:
        key: str = surtlib.surt(url)
    except Exception:  # noqa: BLE001 - surt raises bare errors on odd URLs: keep them as given
        key = url.lower()
    return key


# --- reading records -------------------------------------------------------------------------

#: Bytes of a page's HTML payload (as sent: encoded, maybe chunked) read for its text: the
#: text of more HTML than this would be cut at MAX_TEXT characters anyway.
MAX_HTML_BYTES = 4 * 1024 * 1024
#: Bytes kept of a metadata record, a rendered-text resource, or a warcinfo record.
MAX_KEPT_BLOCK = 4 * 1024 * 1024
_TEXT_MIMES = ("text/html", "application/xhtml+xml", "text/plain")


class _IndexKeep(Keep):
    """What the index reads of each record besides its headers (see the module docstring)."""

    def __init__(self, texts: bool) -> None:
        self.texts = texts

    def block(self, headers: dict[str, str]) -> int:
        rtype = headers.get("warc-type", "")
        if rtype == "warcinfo":
            return MAX_KEPT_BLOCK
        if rtype == "metadata" and "attest-page" in headers.get("content-type", ""):
            return MAX_KEPT_BLOCK
        if (
            self.texts
            and rtype == "resource"
            and _target(headers.get("warc-target-uri", "")).startswith("urn:text:")
        ):
            return MAX_KEPT_BLOCK
        return 0

    def payload(self, headers: dict[str, str], status: int | None, http: dict[str, str]) -> int:
        if (
            self.texts
            and headers.get("warc-type") == "response"
            and status is not None
            and 200 <= status < 300
            and _mime(http.get("content-type")) in _TEXT_MIMES
        ):
            return MAX_HTML_BYTES
        return 0


def _target(url: str) -> str:
    return url[1:-1] if url.startswith("<") and url.endswith(">") else url


def parse_head(data: bytes) -> tuple[bytes, dict[str, str], int] | None:
    """A WARC or HTTP head: (first line, headers by lowercased name, length with the blank line).

    None when no blank line ends a head within the first 64 KB.
    """
    end = data.find(b"\r\n\r\n", 0, _MAX_HEAD)
    if end < 0:
        return None
    first_end = data.find(b"\r\n", 0, end)
    if first_end < 0:
        first_end = end
    return (
        data[:first_end],
        header_text_map(data[first_end + 2 : end].decode("utf-8", "replace")),
        end + 4,
    )


def header_text_map(text: str) -> dict[str, str]:
    # split/partition beat a regex here by 2-6x (measured on the benchmark's records).
    headers: dict[str, str] = {}
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            if key not in headers:
                headers[key] = value.strip()
    return headers


@dataclass(slots=True)
class HttpHead:
    status: int | None
    headers: dict[str, str]
    body_offset: int  # within the record block


def parse_http_head(block: bytes) -> HttpHead:
    head = parse_head(block)
    if head is None:
        return HttpHead(None, {}, len(block))
    first, headers, body_offset = head
    status = None
    parts = first.split(None, 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        status = int(parts[1])
    return HttpHead(status, headers, body_offset)


def _mime(content_type: str | None) -> str:
    if not content_type:
        return "unk"
    return content_type.split(";", 1)[0].strip().lower() or "unk"


def read_warc_index(
    path: Path,
    key: str,
    *,
    texts: bool = True,
    handle: BinaryIO | None = None,
    file_hash: list[str] | None = None,
    verify: bool = True,
) -> WarcIndex:
    """Every intact record of the WARC at ``path`` (stored under ``key``) as index rows and
    texts, and the problems of the others. ``handle``: read the WARC from it (at its start);
    ``file_hash``, ``verify``: as :func:`archive.warc.read.iter_records` (without ``verify``,
    the caller checks the whole file's hash instead)."""
    keep = _IndexKeep(texts)
    items = iter_records(
        path, handle=handle, keep=keep, resync=True, file_hash=file_hash, verify=verify
    )
    result = _index(items, key, keep)
    if not result.rows and not result.problems and not result.warcinfo:
        result.problems.append(Problem("format", key, 0, None, "file holds no WARC record"))
    return result


def index_bytes(data: bytes, key: str, *, texts: bool = True) -> WarcIndex:
    return read_warc_index(Path(key), key, texts=texts, handle=io.BytesIO(data))


def _index(items: Iterator[RecordInfo | Problem], key: str, keep: _IndexKeep) -> WarcIndex:
    result = WarcIndex(key=key)
    by_id: dict[str, IndexRow] = {}
    page_meta: list[tuple[str, dict[str, Any]]] = []
    html_texts: dict[str, str] = {}
    rendered: dict[str, str] = {}
    bad_at: int | None = None  # offset of the record whose problems were just reported
    # Pages' HTML waits in batches for its text: parsed together, faster than one at a time
    # between inflating records, and memory stays bounded by the batch.
    pages: list[tuple[str, bytes, dict[str, str], bool]] = []
    pages_bytes = 0
    for item in items:
        if isinstance(item, Problem):
            item.file = key
            result.problems.append(item)
            bad_at = item.offset
            continue
        if item.offset == bad_at:
            continue  # its digest does not hold: not indexed, its problem says why
        headers = item.fields
        rtype = headers.get("warc-type", "").lower()
        offset = item.offset
        if rtype == "warcinfo":
            info = _warc_fields(item.kept)
            result.warcinfo = info
            result.run_id = info.get("attest-run-id") or result.run_id
            result.source = info.get("source-id") or result.source
            continue
        url = _target(headers.get("warc-target-uri", ""))
        try:
            ts = warc_date_micros(headers.get("warc-date", ""))
        except ValueError:
            result.problems.append(
                Problem(
                    "format",
                    key,
                    offset,
                    headers.get("warc-record-id"),
                    f"bad WARC-Date {headers.get('warc-date')!r}",
                    rtype,
                    url,
                )
            )
            continue
        record_id = headers.get("warc-record-id", "")
        content_type = headers.get("content-type")
        status = None
        mime = _mime(content_type)
        http_headers: dict[str, str] | None = None
        if rtype in ("response", "revisit") and (content_type or "").startswith("application/http"):
            http_headers = item.http_fields or {}
            status = item.http_status
            mime = "warc/revisit" if rtype == "revisit" else _mime(http_headers.get("content-type"))
        elif rtype == "metadata":
            mime = (content_type or "unk").strip().lower()
        row = IndexRow(
            surt=surt_key(url),
            url=url,
            ts=ts,
            status=status,
            mime=mime,
            digest=headers.get("warc-payload-digest")
            or (headers.get("warc-block-digest") if rtype == "resource" else None),
            record_type=rtype,
            record_id=record_id,
            warc_key=key,
            offset=offset,
            length=item.length,
            source=result.source,
            run_id=result.run_id,
            ip=headers.get("warc-ip-address"),
            concurrent_to=headers.get("warc-concurrent-to") or headers.get("warc-refers-to"),
            block_digest=headers.get("warc-block-digest"),
        )
        result.rows.append(row)
        by_id[record_id] = row
        if rtype == "metadata" and "attest-page" in mime:
            # Platform ids are row columns: read them whether or not texts are wanted.
            with contextlib.suppress(ValueError):
                page_meta.append((row.concurrent_to or "", json.loads(item.kept)))
            continue
        if not keep.texts:
            continue
        if http_headers is not None and item.kept and rtype == "response":
            pages.append((record_id, item.kept, http_headers, item.kept_cut))
            pages_bytes += len(item.kept)
            if pages_bytes >= _TEXT_BATCH:
                _page_texts(pages, html_texts)
                pages, pages_bytes = [], 0
        elif rtype == "resource" and url.startswith("urn:text:") and row.concurrent_to:
            rendered[row.concurrent_to] = item.kept.decode("utf-8", "replace")
    _page_texts(pages, html_texts)
    for concurrent_to, meta in page_meta:
        target = by_id.get(concurrent_to)
        if target is None or not isinstance(meta, dict):
            continue
        target.outcome = _text(meta.get("outcome"))
        post = meta.get("post")
        if isinstance(post, dict):
            target.platform = _text(post.get("platform"))
            target.account = _text(post.get("account"))
            target.post_id = _text(post.get("post_id"))
    if keep.texts:
        for record_id, text in html_texts.items():
            if record_id not in rendered:
                result.texts[record_id] = text
        for record_id, text in rendered.items():
            if record_id in by_id:
                result.texts[record_id] = " ".join(text.split())[:MAX_TEXT]
    return result


#: Bytes of pages' HTML read before their texts are extracted together.
_TEXT_BATCH = 16 * 1024 * 1024


def _page_texts(pages: list[tuple[str, bytes, dict[str, str], bool]], into: dict[str, str]) -> None:
    """The visible text of each page's HTML, as record id -> text (cut at MAX_TEXT)."""
    from archive.warc.text import html_text

    for record_id, body, http_headers, cut in pages:
        text = html_text(
            body,
            http_headers.get("content-encoding"),
            chunked="chunked" in http_headers.get("transfer-encoding", "").lower(),
            charset=_charset(http_headers.get("content-type")),
            # A cut payload, or a large one (its decoding is then bounded: a bomb in a
            # hostile page cannot inflate without limit), decodes as far as it goes.
            partial=cut or len(body) > 1024 * 1024,
        )
        if text:
            into[record_id] = text[:MAX_TEXT]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _charset(content_type: str | None) -> str | None:
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", re.I)
    return match.group(1) if match else None


def _warc_fields(block: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            fields.setdefault(name.strip(), value.strip())
    return fields
