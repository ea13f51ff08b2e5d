"""Writes the golden WARC files beside this script, byte for byte the same on every run.

    .venv/bin/python tests/golden/make_golden.py [OUTDIR]

The clock and the record ids are fixed (injected into :class:`archive.warc.write.WarcFileWriter`),
and the HTTP bodies are constants, so a rerun reproduces the committed files exactly;
``tests/archive/test_warc.py`` checks that. The files:

- ``good.warc.gz``: warcinfo, a request/response pair whose body has ``Content-Encoding: gzip``,
  a response with ``Transfer-Encoding: chunked``, and a metadata record.
- ``truncated.warc.gz``: ``good.warc.gz`` cut in the middle of its last record's gzip member.
- ``tampered.warc.gz``: one payload byte of the chunked response changed inside its gzip member,
  which is re-compressed, so the gzip is valid and only the digests fail.
- ``verdicts.json``: what :func:`archive.warc.read.verify_warc` must conclude for each file. It
  is derived from what was written here, never from the verifier itself.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.warc.write import (
    DEFAULT_GZIP_LEVEL,
    Block,
    RecordSpec,
    WarcFileWriter,
    WrittenRecord,
    sha256_label,
)

GOLDEN_DIR = Path(__file__).resolve().parent
GOOD = "good.warc.gz"
TRUNCATED = "truncated.warc.gz"
TAMPERED = "tampered.warc.gz"
VERDICTS = "verdicts.json"
FILES = (GOOD, TRUNCATED, TAMPERED, VERDICTS)

START = datetime(2026, 11, 27, 21, 25, 33, 123456, tzinfo=UTC)
_ID_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4c55-9a7e-2b1f0c9d4e11")

ARTICLE_URL = "http://news.example/2026/11/27/harbour-oil-spill.html"
FEED_URL = "http://news.example/live/harbour-feed.txt"
SERVER_IP = "203.0.113.7"

REQUEST = (
    b"GET /2026/11/27/harbour-oil-spill.html HTTP/1.1\r\n"
    b"Host: news.example\r\n"
    b"User-Agent: attest-golden/1.0\r\n"
    b"Accept: text/html\r\n"
    b"Accept-Encoding: gzip\r\n"
    b"\r\n"
)
ARTICLE_HTML = (
    b'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    b"<title>Oil spill reaches the harbour</title></head>\n<body><article>"
    b"<h1>Oil spill reaches the harbour</h1>\n"
    b"<p>Residents reported a strong smell of diesel on Thursday morning.</p>\n"
    b'<p><a href="/2026/11/26/tanker-aground.html">Earlier: tanker aground</a></p>\n'
    b"</article></body></html>\n"
)
#: The body as served: gzip with a zero mtime, so it is the same bytes on every run.
ARTICLE_GZIP = gzip.compress(ARTICLE_HTML, compresslevel=9, mtime=0)
ARTICLE_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Date: Fri, 27 Nov 2026 21:25:33 GMT\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Encoding: gzip\r\n"
    b"Content-Length: " + str(len(ARTICLE_GZIP)).encode("ascii") + b"\r\n"
    b"\r\n" + ARTICLE_GZIP
)

#: The entity of the chunked response, chunk by chunk.
FEED_CHUNKS = (
    b"21:20 Coastguard confirms a slick two kilometres long.\n",
    b"21:23 Harbour closed to small boats until further notice.\n",
    b"21:25 Volunteers asked to stay off the beaches.\n",
)
FEED_ENTITY = b"".join(FEED_CHUNKS)
FEED_CHUNKED_BODY = (
    b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in FEED_CHUNKS) + b"0\r\n\r\n"
)
FEED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Date: Fri, 27 Nov 2026 21:25:34 GMT\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n" + FEED_CHUNKED_BODY
)
#: The byte changed in tampered.warc.gz: "two kilometres" becomes "twa kilometres".
TAMPER_FROM = b"two kilometres"
TAMPER_TO = b"twa kilometres"

OUTLINKS = (
    "http://news.example/2026/11/26/tanker-aground.html",
    "http://news.example/",
    "http://news.example/live/harbour-feed.txt",
    "http://news.example/about/corrections.html",
    "http://news.example/static/site.css",
    "http://news.example/static/harbour-map.png",
)


class SteppingClock:
    """A clock that starts at :data:`START` and moves 1.5 ms per reading."""

    def __init__(self) -> None:
        self._readings = 0

    def __call__(self) -> datetime:
        moment = START + timedelta(microseconds=1500 * self._readings)
        self._readings += 1
        return moment


class CountingIds:
    """Record ids ``<urn:uuid:...>`` derived from a counter: valid UUIDs, the same every run."""

    def __init__(self) -> None:
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        return f"<urn:uuid:{uuid.uuid5(_ID_NAMESPACE, f'golden-record-{self._count}')}>"


def http_block(message: bytes, entity: bytes) -> Block:
    """A block holding an HTTP message; the payload digest is over ``entity``."""
    return Block(
        length=len(message),
        data=message,
        block_digest=sha256_label(hashlib.sha256(message)),
        payload_digest=sha256_label(hashlib.sha256(entity)),
    )


def write_good(path: Path) -> list[WrittenRecord]:
    """Write ``good.warc.gz`` at ``path`` and return where each record landed."""
    ids = CountingIds()
    writer = WarcFileWriter(path, GOOD, clock=SteppingClock(), id_factory=ids)
    try:
        records = [
            writer.write_warcinfo(
                [
                    ("software", "attest/0.1.0 (golden file generator)"),
                    ("format", "WARC File Format 1.1"),
                    (
                        "conformsTo",
                        "https://iipc.github.io/warc-specifications/"
                        "specifications/warc-format/warc-1.1/",
                    ),
                    ("source-id", "golden"),
                    ("attest-run-id", "00000000-0000-4000-8000-000000000000"),
                ]
            )
        ]
        request_id, response_id = ids(), ids()
        records += writer.write_group(
            [
                RecordSpec(
                    record_type="request",
                    block=http_block(REQUEST, b""),
                    target_uri=ARTICLE_URL,
                    content_type="application/http; msgtype=request",
                    headers=[("WARC-Concurrent-To", response_id)],
                    record_id=request_id,
                ),
                RecordSpec(
                    record_type="response",
                    block=http_block(ARTICLE_RESPONSE, ARTICLE_GZIP),
                    target_uri=ARTICLE_URL,
                    content_type="application/http; msgtype=response",
                    headers=[("WARC-IP-Address", SERVER_IP)],
                    record_id=response_id,
                ),
            ]
        )
        records.append(
            writer.write(
                RecordSpec(
                    record_type="response",
                    block=http_block(FEED_RESPONSE, FEED_ENTITY),
                    target_uri=FEED_URL,
                    content_type="application/http; msgtype=response",
                    headers=[("WARC-IP-Address", SERVER_IP)],
                )
            )
        )
        outlinks = "".join(f"outlink: {url} L a/@href\r\n" for url in OUTLINKS).encode()
        records.append(
            writer.write(
                RecordSpec(
                    record_type="metadata",
                    block=Block.from_bytes(outlinks, payload_is_block=False),
                    target_uri=ARTICLE_URL,
                    content_type="application/warc-fields",
                    headers=[("WARC-Concurrent-To", response_id)],
                )
            )
        )
    finally:
        writer.close()
    return records


def truncate(good: bytes, last: WrittenRecord) -> bytes:
    """``good`` cut in the middle of the gzip member of its last record."""
    return good[: last.offset + last.length // 2]


def tamper(good: bytes, record: WrittenRecord) -> bytes:
    """``good`` with one payload byte of ``record`` changed and its member re-compressed."""
    member = good[record.offset : record.offset + record.length]
    plain = zlib.decompress(member, wbits=31)
    if plain.count(TAMPER_FROM) != 1:
        raise RuntimeError(f"record {record.record_id} does not hold {TAMPER_FROM!r} once")
    changed = plain.replace(TAMPER_FROM, TAMPER_TO)
    compressor = zlib.compressobj(DEFAULT_GZIP_LEVEL, zlib.DEFLATED, 31)
    recompressed = compressor.compress(changed) + compressor.flush()
    return good[: record.offset] + recompressed + good[record.offset + record.length :]


def _problem(check: str, record: WrittenRecord) -> dict[str, Any]:
    return {"check": check, "record_id": record.record_id, "offset": record.offset}


def generate(outdir: Path) -> dict[str, Path]:
    """Write every golden file into ``outdir`` (replacing old ones); return their paths."""
    outdir.mkdir(parents=True, exist_ok=True)
    scratch = outdir / f".{GOOD}.{os.getpid()}.tmp"
    scratch.unlink(missing_ok=True)
    try:
        records = write_good(scratch)
        good = scratch.read_bytes()
    finally:
        scratch.unlink(missing_ok=True)
    feed = next(r for r in records if r.target_uri == FEED_URL)
    last = records[-1]
    verdicts = {
        GOOD: {"ok": True, "records": len(records), "problems": []},
        TRUNCATED: {
            "ok": False,
            "records": len(records) - 1,
            "problems": [_problem("truncated", last)],
        },
        TAMPERED: {
            "ok": False,
            "records": len(records),
            "problems": [_problem("block-digest", feed), _problem("payload-digest", feed)],
        },
    }
    contents = {
        GOOD: good,
        TRUNCATED: truncate(good, last),
        TAMPERED: tamper(good, feed),
        VERDICTS: (json.dumps(verdicts, indent=2, sort_keys=True) + "\n").encode("utf-8"),
    }
    paths: dict[str, Path] = {}
    for name, data in contents.items():
        paths[name] = outdir / name
        paths[name].write_bytes(data)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("outdir", nargs="?", type=Path, default=GOLDEN_DIR)
    args = parser.parse_args(argv)
    for path in generate(args.outdir).values():
        sys.stdout.write(f"{path} {path.stat().st_size} bytes\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
