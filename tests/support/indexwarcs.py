"""Small, real WARCs for the index tests, written with attest's own writer.

:class:`WarcBuilder` writes request/response pairs exactly as the recorder does (the block is
the HTTP message as sent, the payload digest covers the body after chunking is undone, with
its Content-Encoding kept), plus the page ``metadata`` records and ``urn:text:`` resources the
browser capture adds. :func:`sample_warc` writes the one WARC most index tests read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import brotli

from archive.warc.write import Block, RecordSpec, WarcFileWriter, WrittenRecord, sha256_label

RUN_ID = "11111111-2222-4333-8444-555555555555"
SOURCE_ID = "src"
START = datetime(2026, 11, 28, 2, 45, 22, 123456, tzinfo=UTC)
SERVER_IP = "203.0.113.7"

#: A 1x1 PNG, as an image payload (binary, never text).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8ffff3f0005fe02fea7d6a8f30000000049454e44ae426082"
)


class CountingIds:
    """Valid, repeatable record ids derived from a name and a counter."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{self._name}-{self._count}')}>"


def encode(entity: bytes, encoding: str | None) -> bytes:
    """``entity`` as a server sends it with ``Content-Encoding: encoding``."""
    if encoding in (None, "identity"):
        return entity
    if encoding == "gzip":
        return gzip.compress(entity, mtime=0)
    if encoding == "br":
        out: bytes = brotli.compress(entity)
        return out
    if encoding == "deflate":
        return zlib.compress(entity)
    raise ValueError(encoding)


def chunk(body: bytes, size: int = 7) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@dataclass
class Exchange:
    """Where one request/response pair landed."""

    url: str
    request: WrittenRecord
    response: WrittenRecord
    entity: bytes
    body: bytes  # the HTTP body as stored (encoded, maybe chunked)


@dataclass
class WarcBuilder:
    path: Path
    name: str
    run_id: str | None = RUN_ID
    source: str | None = SOURCE_ID
    start: datetime = START
    records: list[WrittenRecord] = field(default_factory=list)
    #: More ``warcinfo`` fields (the Airflow ids of a DAG's capture, say).
    info: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = CountingIds(self.name)
        self.writer = WarcFileWriter(self.path, self.name, clock=self._clock, id_factory=self._ids)
        self._ticks = 0
        fields = [("software", "attest tests"), ("format", "WARC File Format 1.1")]
        if self.run_id is not None:
            fields.append(("attest-run-id", self.run_id))
        if self.source is not None:
            fields.append(("source-id", self.source))
        fields.extend(self.info)
        self.records.append(self.writer.write_warcinfo(fields))

    def _clock(self) -> datetime:
        self._ticks += 1
        return self.start + timedelta(milliseconds=250 * self._ticks)

    def exchange(
        self,
        url: str,
        entity: bytes,
        *,
        content_type: str = "text/html; charset=utf-8",
        status: int = 200,
        reason: str = "OK",
        encoding: str | None = None,
        chunked: bool = False,
        at: datetime | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> Exchange:
        host = url.split("/")[2]
        path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip, br\r\n\r\n"
        ).encode()
        sent = encode(entity, encoding)
        headers = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}"]
        if encoding:
            headers.append(f"Content-Encoding: {encoding}")
        headers.extend(f"{k}: {v}" for k, v in extra_headers)
        body = chunk(sent) if chunked else sent
        if chunked:
            headers.append("Transfer-Encoding: chunked")
        else:
            headers.append(f"Content-Length: {len(sent)}")
        message = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
        request_id = self._ids()
        response_id = self._ids()
        written = self.writer.write_group(
            [
                RecordSpec(
                    record_type="request",
                    block=Block.from_bytes(request, payload_is_block=False),
                    target_uri=url,
                    content_type="application/http; msgtype=request",
                    headers=[("WARC-Concurrent-To", response_id)],
                    record_id=request_id,
                    date=at,
                ),
                RecordSpec(
                    record_type="response",
                    block=Block(
                        length=len(message),
                        data=message,
                        block_digest=sha256_label(hashlib.sha256(message)),
                        payload_digest=sha256_label(hashlib.sha256(sent)),
                    ),
                    target_uri=url,
                    content_type="application/http; msgtype=response",
                    headers=[("WARC-IP-Address", SERVER_IP)],
                    record_id=response_id,
                    date=at,
                ),
            ]
        )
        self.records.extend(written)
        return Exchange(url, written[0], written[1], entity, body)

    def page_metadata(
        self, url: str, concurrent_to: str, data: dict[str, Any], *, at: datetime | None = None
    ) -> WrittenRecord:
        written = self.writer.write(
            RecordSpec(
                record_type="metadata",
                block=Block.from_bytes(json.dumps(data).encode()),
                target_uri=url,
                content_type="application/json; profile=attest-page",
                headers=[("WARC-Concurrent-To", concurrent_to)],
                date=at,
            )
        )
        self.records.append(written)
        return written

    def rendered_text(
        self, url: str, concurrent_to: str, text: str, *, at: datetime | None = None
    ) -> WrittenRecord:
        written = self.writer.write(
            RecordSpec(
                record_type="resource",
                block=Block.from_bytes(text.encode()),
                target_uri=f"urn:text:{url}",
                content_type="text/plain; charset=utf-8",
                headers=[("WARC-Concurrent-To", concurrent_to)],
                date=at,
            )
        )
        self.records.append(written)
        return written

    def close(self) -> Path:
        self.writer.close()
        return self.path


# --- the sample WARC --------------------------------------------------------------------------

GZIP_URL = "http://example.com/news/harbour.html"
BR_URL = "https://www.example.com/news/tanker.html?lang=en"
IMAGE_URL = "http://example.com/static/logo.png"
POST_URL = "https://social.example/@alice/42"
MISSING_URL = "http://example.com/gone.html"

GZIP_HTML = (
    b"<!doctype html><html><head><title>Harbour</title><style>p{color:red}</style>"
    b"<script>var hidden = 'scriptword';</script></head><body><h1>Oil spill reaches the "
    b"harbour</h1><p>Residents smelled <b>diesel</b> on Thursday.</p></body></html>"
)
BR_HTML = (
    "<html><body><article><h2>Tanker aground</h2><p>The tanker Ōtaki ran aground near the "
    "reef; crew evacuated.</p></article></body></html>"
).encode()
POST_HTML = b"<html><body><div id=app>Loading...</div><script>boot()</script></body></html>"
POST_TEXT = "alice:  Statement on the   referendum results\n posted 28 Nov"


@dataclass
class Sample:
    path: Path
    name: str
    html_gzip: Exchange
    html_br: Exchange
    image: Exchange
    post: Exchange
    missing: Exchange
    metadata: WrittenRecord
    text: WrittenRecord
    records: list[WrittenRecord]


def sample_warc(directory: Path, name: str = "sample-00000.warc.gz") -> Sample:
    """A WARC with warcinfo, HTML (gzip, br), an image, a 404, a post with metadata and text."""
    builder = WarcBuilder(directory / name, name)
    html_gzip = builder.exchange(GZIP_URL, GZIP_HTML, encoding="gzip")
    html_br = builder.exchange(BR_URL, BR_HTML, encoding="br", chunked=True)
    image = builder.exchange(IMAGE_URL, PNG, content_type="image/png")
    post = builder.exchange(POST_URL, POST_HTML)
    metadata = builder.page_metadata(
        POST_URL,
        post.response.record_id,
        {
            "url": POST_URL,
            "outlinks": ["https://social.example/@alice"],
            "post": {"platform": "mastodon", "account": "alice", "post_id": "42"},
        },
    )
    text = builder.rendered_text(POST_URL, post.response.record_id, POST_TEXT)
    missing = builder.exchange(
        MISSING_URL, b"<html><body>Not here</body></html>", status=404, reason="Not Found"
    )
    builder.close()
    return Sample(
        path=builder.path,
        name=name,
        html_gzip=html_gzip,
        html_br=html_br,
        image=image,
        post=post,
        missing=missing,
        metadata=metadata,
        text=text,
        records=builder.records,
    )


# --- a series of captures, for CDX queries ------------------------------------------------------

ROOT_A = b"<html><body>Version A of the front page</body></html>"
ROOT_B = b"<html><body>Version B of the front page</body></html>"
#: The front page's captures (UTC, body): A, A, B, A, so collapse=digest keeps three of four.
SERIES_ROOT = [
    ("2026-11-01T10:00:00.250000", ROOT_A),
    ("2026-11-01T10:30:00.250000", ROOT_A),
    ("2026-11-15T12:00:00.000000", ROOT_B),
    ("2026-11-28T02:45:22.123456", ROOT_A),
]
#: Other pages: (url, UTC time, mime, status).
SERIES_OTHERS = [
    ("http://example.com/path/a", "2026-11-02T00:00:00", "text/html", 200),
    ("http://example.com/path/b", "2026-11-03T00:00:00", "text/html", 200),
    ("http://example.com/pathology", "2026-11-04T00:00:00", "text/html", 200),
    ("https://www.example.com/logo.png", "2026-11-05T00:00:00", "image/png", 200),
    ("http://sub.example.com/y", "2026-11-06T00:00:00", "text/html", 200),
    ("http://example.com/gone", "2026-11-07T00:00:00", "text/html", 404),
    ("http://example-foo.com/", "2026-11-08T00:00:00", "text/html", 200),
    ("http://example.org/", "2026-11-09T00:00:00", "text/html", 200),
]
SERIES_KEYS = ("warcs/src/2026/11/01/a.warc.gz", "warcs/src/2026/11/15/b.warc.gz")
SERIES_RUN_IDS = ("33333333-2222-4333-8444-555555555555", "44444444-2222-4333-8444-555555555555")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def series_warcs(directory: Path) -> list[tuple[Path, str]]:
    """Two WARCs holding :data:`SERIES_ROOT` and :data:`SERIES_OTHERS`: (path, store key)."""
    first = WarcBuilder(
        directory / "a.warc.gz", "a.warc.gz", run_id=SERIES_RUN_IDS[0], start=utc("2026-11-01T09")
    )
    second = WarcBuilder(
        directory / "b.warc.gz", "b.warc.gz", run_id=SERIES_RUN_IDS[1], start=utc("2026-11-15T09")
    )
    for when, body in SERIES_ROOT:
        builder = first if when < "2026-11-10" else second
        builder.exchange("http://example.com/", body, at=utc(when))
    for url, when, mime, status in SERIES_OTHERS:
        body = PNG if mime == "image/png" else f"<p>{url}</p>".encode()
        first.exchange(url, body, content_type=mime, status=status, at=utc(when))
    return [(first.close(), SERIES_KEYS[0]), (second.close(), SERIES_KEYS[1])]
